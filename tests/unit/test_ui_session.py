"""The dashboard's session cookie: signed, expiring, and never the credential itself."""

from __future__ import annotations

import time
import uuid

import pytest
from pydantic import ValidationError

from app.settings import Settings, UISettings
from app.tenants.auth import Principal
from app.ui.session import SessionPayload, SessionSigner, SignInThrottle

KEY = "dj_" + "k" * 43


def signer(**ui: object) -> SessionSigner:
    return SessionSigner.from_settings(Settings(admin_token="the-admin-token-1", ui=UISettings(**ui)))  # type: ignore[arg-type]


def test_a_cookie_reads_back_and_holds_no_credential() -> None:
    s = signer()
    payload = s.payload_for(Principal(role="tenant", key_id=uuid.uuid4()), KEY)
    cookie = s.cookie(payload)
    assert s.read(cookie.value) == payload
    assert KEY not in str(cookie.value)
    assert (cookie.httponly, cookie.secure, cookie.samesite, cookie.path) == (True, True, "strict", "/ui")
    admin = s.cookie(s.payload_for(Principal(role="admin", key_id=None), "the-admin-token-1"))
    assert "the-admin-token-1" not in str(admin.value)


def test_tampered_expired_or_foreign_cookies_are_refused() -> None:
    s = signer()
    value = str(s.cookie(s.payload_for(Principal(role="admin", key_id=None), "the-admin-token-1")).value)
    body, _, signature = value.rpartition(".")
    assert s.read(body[:-2] + "xx." + signature) is None
    assert s.read(value[:-1] + ("0" if value[-1] != "0" else "1")) is None
    assert s.read("") is None
    assert s.read("no-dot") is None
    expired = s.cookie(SessionPayload("admin-token", s.admin_fingerprint() or "", time.time() - 1, "s1"))
    assert s.read(str(expired.value)) is None
    other = signer(session_secret="another secret of at least thirty-two characters")
    assert other.read(value) is None


def test_every_worker_derives_the_same_key_from_the_admin_token() -> None:
    assert signer().secret == signer().secret
    assert (
        signer(secure_cookies=False).cookie(SessionPayload("key", "00", time.time() + 60, "s2")).secure
        is False
    )


def test_an_admin_token_too_short_to_guess_slowly_is_refused_without_being_echoed() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(admin_token="hunter2")  # type: ignore[arg-type]
    assert "admin_token" in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_failed_sign_ins_past_the_limit_wait_for_the_window() -> None:
    throttle = SignInThrottle(most=3, window_s=60)
    for _ in range(3):
        assert throttle.wait_s("203.0.113.7") == 0
        throttle.failed("203.0.113.7")
    assert 59 < throttle.wait_s("203.0.113.7") <= 60
    assert throttle.wait_s("198.51.100.1") == 0  # another address tries on


def test_an_empty_admin_token_variable_is_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """compose.yaml passes DEJA_ADMIN_TOKEN empty when it is not exported: that refused to start
    (too short) once admin tokens needed 16 characters."""
    monkeypatch.setenv("DEJA_ADMIN_TOKEN", "")
    assert Settings().admin_token is None
