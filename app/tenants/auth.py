"""Who is calling: `Authorization: Bearer <key>` resolved to a principal.

A resolved key is remembered for a few seconds per process, so a hit costs no extra round
trip for authentication. Every process forgets the keys it remembers as soon as a key or a tenant
changes anywhere (`forget_on_change`: the database notifies it on commit), so a revocation takes
effect at once everywhere; while that notice cannot be received (the database unreachable), within
the few seconds a key is remembered.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import transaction
from app.db.errors import is_database_outage
from app.errors import Forbidden, ServiceUnavailable, Unauthorized
from app.tenants.keys import hash_key
from app.tenants.models import KeyRole, TenantStatus
from app.tenants.repository import KeyRepository

log = logging.getLogger(__name__)

ADMIN_TOKEN_ACTOR = "admin-token"  # noqa: S105 (a label in the audit log, not a secret)
# The channel a key or tenant change is announced on (migration 0230's triggers).
KEYS_CHANNEL = "deja_keys"


@dataclass(frozen=True, slots=True)
class Principal:
    role: KeyRole
    key_id: uuid.UUID | None  # None for the configured admin token
    tenant_id: uuid.UUID | None = None
    tenant_name: str | None = None
    # The tenant's settings as stored (cache policy, quotas policy); parsed where used.
    tenant_settings: dict[str, Any] = field(default_factory=dict)

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}" if self.key_id else ADMIN_TOKEN_ACTOR

    def require_tenant(self) -> uuid.UUID:
        if self.role != KeyRole.TENANT or self.tenant_id is None:
            raise Forbidden("This route needs a tenant key.")
        return self.tenant_id


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("Missing Authorization header; send 'Authorization: Bearer <key>'.")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Malformed Authorization header; send 'Authorization: Bearer <key>'.")
    return token


# How often a key is read again when a change was announced while it was read.
READS_WHILE_CHANGING = 3


class Authenticator:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        admin_token: str | None,
        *,
        ttl_s: float = 10.0,
        max_entries: int = 10_000,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._admin_token = admin_token.encode() if admin_token else None
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._known: dict[bytes, tuple[float, Principal | None]] = {}
        # Moves at each `forget`: a key read while it moved may be what a change just undid.
        self._generation = 0

    async def authenticate(self, authorization: str | None) -> Principal:
        token = bearer_token(authorization)
        if self._admin_token is not None and hmac.compare_digest(token.encode(), self._admin_token):
            return Principal(role=KeyRole.ADMIN, key_id=None)
        key_hash = hash_key(token)
        now = time.monotonic()
        known = self._known.get(key_hash)
        if known is not None and known[0] > now:
            principal = known[1]
        else:
            try:
                principal, current = await self._load_current(key_hash)
            except Exception as exc:
                if not is_database_outage(exc):
                    raise
                if known is None:
                    raise ServiceUnavailable(
                        "The database is unreachable and this key has not been seen recently; retry shortly.",
                        headers={"Retry-After": "5"},
                    ) from exc
                # A key seen before keeps working through an outage (revocations wait for the database).
                principal, current = known[1], True
            if len(self._known) >= self._max_entries:
                self._known.clear()
            if current:
                self._known[key_hash] = (now + self._ttl_s, principal)
        if principal is None:
            raise Unauthorized("Unknown or revoked API key.")
        return principal

    def forget(self) -> None:
        """Drop remembered keys (after a revocation or tenant change in this process)."""
        self._generation += 1
        self._known.clear()

    async def _load_current(self, key_hash: bytes) -> tuple[Principal | None, bool]:
        """The key's owner, and whether no change was announced while it was read. A read can
        see a key as it was before a revocation and end after the revocation's notice arrived
        (its `touch` waits for the revoking transaction's row lock): remembered, it would work
        for another TTL. Read again, the revocation shows; past a few tries, answered unremembered."""
        for _ in range(READS_WHILE_CHANGING):
            generation = self._generation
            principal = await self._load(key_hash)
            if generation == self._generation:
                return principal, True
        return principal, False

    async def _load(self, key_hash: bytes) -> Principal | None:
        async with transaction(self._sessionmaker, system=True) as session:
            keys = KeyRepository(session)
            owner = await keys.find_owner(key_hash)
            if owner is None:
                return None
            if owner.role == KeyRole.TENANT and owner.tenant_status != TenantStatus.ACTIVE:
                return None
            # Written at most once per TTL per key and process: cheap, and good enough to
            # tell which keys are still in use.
            await keys.touch(owner.key_id, datetime.now(UTC))
        return Principal(
            role=owner.role,
            key_id=owner.key_id,
            tenant_id=owner.tenant_id,
            tenant_name=owner.tenant_name,
            tenant_settings=owner.tenant_settings or {},
        )


async def forget_on_change(
    dsn: str, authenticator: Authenticator, *, check_s: float = 30.0, retry_s: float = 5.0
) -> None:
    """Listen on KEYS_CHANNEL for as long as the process runs, and forget the remembered keys at
    each notice: the database sends one when a transaction that changed keys or tenants commits.
    Keys are forgotten too whenever listening starts again (a notice may have been missed while it
    was not), and the connection is checked every `check_s`; while it is down, remembered keys run
    out as before."""
    while True:
        connection: asyncpg.Connection | None = None
        try:
            connection = await asyncpg.connect(
                dsn, timeout=retry_s, server_settings={"application_name": "deja-keys"}
            )
            await connection.add_listener(KEYS_CHANNEL, lambda *_: authenticator.forget())
            authenticator.forget()
            while True:
                await asyncio.sleep(check_s)
                await connection.fetchval("SELECT 1", timeout=retry_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure: listen again after a pause
            log.warning("not listening for key changes, retrying in %.0f s: %s", retry_s, type(exc).__name__)
        finally:
            if connection is not None:
                connection.terminate()
        await asyncio.sleep(retry_s)
