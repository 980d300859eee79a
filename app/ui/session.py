"""The dashboard's sign-in: a signed, expiring, HttpOnly cookie that names the credential used,
never the credential itself.

The cookie holds the SHA-256 of the API key (what the database stores, useless against the API)
or, for the admin token, an HMAC of it; every page resolves it again, so a revoked key, a
suspended tenant or a changed admin token ends the session at the next click.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.exceptions import NotAuthorizedException
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import transaction
from app.services import Services
from app.settings import Settings
from app.tenants.auth import Principal
from app.tenants.keys import hash_key
from app.tenants.models import KeyRole, TenantStatus
from app.tenants.repository import KeyRepository
from app.ui.repository import SignedOutRepository

# The session key's derivation from the admin token: 16 MiB of memory (128 * r * n bytes) and
# slow by design, once per process.
SCRYPT: dict[str, int] = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
COOKIE_NAME = "deja_session"
CSRF_COOKIE_NAME = "deja_csrf"
COOKIE_PATH = "/ui"


class SessionPayload(msgspec.Struct, frozen=True):
    kind: str  # "admin-token" | "key"
    credential: str  # hex: HMAC of the admin token, or the key's SHA-256
    expires_at: float  # Unix time; checked here, whatever the browser keeps
    # Random, per sign-in: signing out records it (`SignedOut`), and the cookie then signs no one
    # in, a copy of it included. A cookie from before sessions had one reads as none.
    session_id: str


class SignInThrottle:
    """Failed dashboard sign-ins per client address, counted in this process: past `most` within
    `window_s`, that client waits until the oldest of them is that old (a 429). Online guessing
    of a token or key went as fast as the server answered, unlogged."""

    # Addresses remembered at most (a flood of addresses forgets them all, never grows memory).
    MAX_CLIENTS = 10_000

    def __init__(self, most: int = 10, window_s: float = 60.0) -> None:
        self.most = most
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}

    def wait_s(self, client: str) -> float:
        """How long `client` must wait before it may try again (0: it may)."""
        failures = self._failures.get(client)
        if failures is None or len(failures) < self.most:
            return 0.0
        return max(0.0, failures[0] + self.window_s - time.monotonic())

    def failed(self, client: str) -> None:
        if len(self._failures) >= self.MAX_CLIENTS:
            self._failures.clear()
        failures = self._failures.setdefault(client, deque(maxlen=self.most))
        failures.append(time.monotonic())


class LoginRequired(NotAuthorizedException):
    """No valid dashboard session: the UI answers with the sign-in page (an expected 401, not
    an error to log)."""


@dataclass(frozen=True, slots=True)
class SessionSigner:
    secret: bytes
    ttl_s: int
    secure: bool
    admin_token: bytes | None

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionSigner:
        admin_token = settings.admin_token.get_secret_value().encode() if settings.admin_token else None
        if settings.ui.session_secret is not None:
            secret = hashlib.sha256(settings.ui.session_secret.get_secret_value().encode()).digest()
        elif admin_token is not None:
            # Every worker and pod shares the admin token, so they agree on the key; the
            # derivation is one-way, so a leaked cookie key never reveals the token. And slow: a
            # tenant's own session cookie is signed with it, and each guess of the token tried
            # against it offline costs a derivation (one SHA-256 made guessing cheap).
            secret = hashlib.scrypt(admin_token, salt=b"deja-ui-session", **SCRYPT)
        else:
            secret = secrets.token_bytes(32)
        return cls(
            secret=secret,
            ttl_s=settings.ui.session_ttl_s,
            secure=settings.ui.secure_cookies,
            admin_token=admin_token,
        )

    @property
    def csrf_secret(self) -> str:
        return hmac.new(self.secret, b"csrf", hashlib.sha256).hexdigest()

    def admin_fingerprint(self) -> str | None:
        if self.admin_token is None:
            return None
        return hmac.new(self.secret, b"admin-token\x00" + self.admin_token, hashlib.sha256).hexdigest()

    def payload_for(self, principal: Principal, token: str) -> SessionPayload:
        expires_at = time.time() + self.ttl_s
        session_id = secrets.token_hex(16)
        if principal.key_id is None:
            return SessionPayload("admin-token", self.admin_fingerprint() or "", expires_at, session_id)
        return SessionPayload("key", hash_key(token).hex(), expires_at, session_id)

    def cookie(self, payload: SessionPayload) -> Cookie:
        body = base64.urlsafe_b64encode(msgspec.json.encode(payload)).decode().rstrip("=")
        return Cookie(
            key=COOKIE_NAME,
            value=f"{body}.{self._sign(body)}",
            path=COOKIE_PATH,
            max_age=self.ttl_s,
            httponly=True,
            secure=self.secure,
            samesite="strict",
        )

    def cleared_cookie(self) -> Cookie:
        return Cookie(
            key=COOKIE_NAME,
            value="",
            path=COOKIE_PATH,
            max_age=0,
            httponly=True,
            secure=self.secure,
            samesite="strict",
        )

    def read(self, value: str | None) -> SessionPayload | None:
        """The payload of a cookie this process's key signed and that has not expired."""
        # A cookie this process signed is ASCII (base64 and hex): anything else is a forgery.
        if not value or "." not in value or not value.isascii():
            return None
        body, _, signature = value.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            payload = msgspec.json.decode(
                base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)), type=SessionPayload
            )
        except (ValueError, msgspec.DecodeError):
            return None
        return payload if payload.expires_at > time.time() else None

    def _sign(self, body: str) -> str:
        return hmac.new(self.secret, body.encode(), hashlib.sha256).hexdigest()


async def resolve(
    signer: SessionSigner, sessionmaker: async_sessionmaker[AsyncSession], payload: SessionPayload
) -> Principal | None:
    """Who the session speaks for now, or None if it was signed out or its credential no longer
    works."""
    async with transaction(sessionmaker, system=True) as session:
        if await SignedOutRepository(session).signed_out(payload.session_id):
            return None
        if payload.kind == "admin-token":
            fingerprint = signer.admin_fingerprint()
            ok = fingerprint is not None and hmac.compare_digest(payload.credential, fingerprint)
            return Principal(role=KeyRole.ADMIN, key_id=None) if ok else None
        try:
            key_hash = bytes.fromhex(payload.credential)
        except ValueError:
            return None
        owner = await KeyRepository(session).find_owner(key_hash)
    # The same rule as the API's authentication: a tenant key works while its tenant is active.
    if owner is None or (owner.role == KeyRole.TENANT and owner.tenant_status != TenantStatus.ACTIVE):
        return None
    return Principal(
        role=owner.role,
        key_id=owner.key_id,
        tenant_id=owner.tenant_id,
        tenant_name=owner.tenant_name,
        tenant_settings=owner.tenant_settings or {},
    )


async def sign_out(
    signer: SessionSigner, sessionmaker: async_sessionmaker[AsyncSession], value: str | None
) -> None:
    """End the session of the cookie `value` for good (until it would have expired anyway)."""
    payload = signer.read(value)
    if payload is None:
        return
    async with transaction(sessionmaker, system=True) as session:
        expires_at = datetime.fromtimestamp(payload.expires_at, UTC)
        await SignedOutRepository(session).sign_out(payload.session_id, expires_at)


async def signed_in(
    connection: ASGIConnection[Any, Any, Any, Any], services: Services, signer: SessionSigner
) -> Principal:
    """The signed-in principal of a dashboard page; LoginRequired sends the browser to sign in."""
    payload = signer.read(connection.cookies.get(COOKIE_NAME))
    principal = await resolve(signer, services.sessionmaker, payload) if payload else None
    if principal is None:
        raise LoginRequired
    return principal


def tenant_scope(viewer: Principal, requested: uuid.UUID | None) -> uuid.UUID | None:
    """The tenant a page shows: a tenant sees only its own; an admin the one asked for, or all."""
    return viewer.tenant_id if viewer.role == "tenant" else requested
