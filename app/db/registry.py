"""Imports every table model, so that `Base.metadata` is complete (Alembic reads it)."""

from app.admin.models import AuditLog
from app.cache.bound.models import CacheLabel
from app.cache.models import CacheAlias, CacheEntry
from app.completions.models import InflightMiss
from app.db.base import Base
from app.ledger.models import (
    LedgerEntry,
    LedgerHourly,
    LedgerRollupMark,
    Price,
    Quota,
    QuotaReservation,
    UsageCounter,
)
from app.tenants.models import ApiKey, Tenant
from app.ui.models import SignedOut

__all__ = [
    "ApiKey",
    "AuditLog",
    "Base",
    "CacheAlias",
    "CacheEntry",
    "CacheLabel",
    "InflightMiss",
    "LedgerEntry",
    "LedgerHourly",
    "LedgerRollupMark",
    "Price",
    "Quota",
    "QuotaReservation",
    "SignedOut",
    "Tenant",
    "UsageCounter",
]
