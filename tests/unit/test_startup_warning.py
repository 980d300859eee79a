"""Start-up says when no upstream key is configured, instead of failing at the first miss."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from app.services import warn_without_upstream_keys
from app.upstream.config import config_from_env


def test_warns_when_the_upstream_key_is_missing(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with caplog.at_level(logging.WARNING, logger="app.services"):
        warn_without_upstream_keys(SimpleNamespace(config=config_from_env({})))  # type: ignore[arg-type]
    assert "OPENAI_API_KEY is not set" in caplog.text


def test_quiet_when_the_key_is_there(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with caplog.at_level(logging.WARNING, logger="app.services"):
        warn_without_upstream_keys(SimpleNamespace(config=config_from_env({})))  # type: ignore[arg-type]
    assert caplog.text == ""
