"""Imports every table model, so that `Base.metadata` is complete (Alembic reads it)."""

from app.admin.models import AuditLog
from app.cache.bound.models import CacheLabel
from app.cache.models import CacheAlias, CacheEntry
from app.db.base import Base
from app.ledger.models import LedgerEntry, Price, Quota, UsageCounter
from app.tenants.models import ApiKey, Tenant

__all__ = [
    "ApiKey",
    "AuditLog",
    "Base",
    "CacheAlias",
    "CacheEntry",
    "CacheLabel",
    "LedgerEntry",
    "Price",
    "Quota",
    "Tenant",
    "UsageCounter",
]
