"""An OpenAI-compatible stand-in model server for tests, benchmarks and trying Déjà without a key.

The names below load their module on first use: `deja` imports this package for its command's
options, and the server's web framework would add half a second to every `deja` command.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.toolkit.fakellm.app import FAULT_HEADER, create_fake_llm_app
    from app.toolkit.fakellm.config import FAULT_KINDS, FakeLLMConfig, FaultKind, parse_fault
    from app.toolkit.fakellm.server import FakeLLMServer

_HOMES = {
    "FAULT_HEADER": "app.toolkit.fakellm.app",
    "create_fake_llm_app": "app.toolkit.fakellm.app",
    "FAULT_KINDS": "app.toolkit.fakellm.config",
    "FakeLLMConfig": "app.toolkit.fakellm.config",
    "FaultKind": "app.toolkit.fakellm.config",
    "parse_fault": "app.toolkit.fakellm.config",
    "FakeLLMServer": "app.toolkit.fakellm.server",
}

__all__ = [
    "FAULT_HEADER",
    "FAULT_KINDS",
    "FakeLLMConfig",
    "FakeLLMServer",
    "FaultKind",
    "create_fake_llm_app",
    "parse_fault",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
