"""The dashboard's session cookie: signed, expiring, and never the credential itself."""

from __future__ import annotations

import time
import uuid

from app.settings import Settings, UISettings
from app.tenants.auth import Principal
from app.ui.session import SessionPayload, SessionSigner

KEY = "dj_" + "k" * 43


def signer(**ui: object) -> SessionSigner:
    return SessionSigner.from_settings(Settings(admin_token="the-admin-token", ui=UISettings(**ui)))  # type: ignore[arg-type]


def test_a_cookie_reads_back_and_holds_no_credential() -> None:
    s = signer()
    payload = s.payload_for(Principal(role="tenant", key_id=uuid.uuid4()), KEY)
    cookie = s.cookie(payload)
    assert s.read(cookie.value) == payload
    assert KEY not in str(cookie.value)
    assert (cookie.httponly, cookie.secure, cookie.samesite, cookie.path) == (True, True, "strict", "/ui")
    admin = s.cookie(s.payload_for(Principal(role="admin", key_id=None), "the-admin-token"))
    assert "the-admin-token" not in str(admin.value)


def test_tampered_expired_or_foreign_cookies_are_refused() -> None:
    s = signer()
    value = str(s.cookie(s.payload_for(Principal(role="admin", key_id=None), "the-admin-token")).value)
    body, _, signature = value.rpartition(".")
    assert s.read(body[:-2] + "xx." + signature) is None
    assert s.read(value[:-1] + ("0" if value[-1] != "0" else "1")) is None
    assert s.read("") is None
    assert s.read("no-dot") is None
    expired = s.cookie(SessionPayload("admin-token", s.admin_fingerprint() or "", time.time() - 1))
    assert s.read(str(expired.value)) is None
    other = signer(session_secret="another secret of at least thirty-two characters")
    assert other.read(value) is None


def test_every_worker_derives_the_same_key_from_the_admin_token() -> None:
    assert signer().secret == signer().secret
    assert signer(secure_cookies=False).cookie(SessionPayload("key", "00", time.time() + 60)).secure is False
