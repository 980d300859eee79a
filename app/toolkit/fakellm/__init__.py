"""An OpenAI-compatible stand-in model server for tests, benchmarks and trying Déjà without a key."""

from app.toolkit.fakellm.app import FAULT_HEADER, create_fake_llm_app
from app.toolkit.fakellm.config import FAULT_KINDS, FakeLLMConfig, FaultKind, parse_fault
from app.toolkit.fakellm.server import FakeLLMServer

__all__ = [
    "FAULT_HEADER",
    "FAULT_KINDS",
    "FakeLLMConfig",
    "FakeLLMServer",
    "FaultKind",
    "create_fake_llm_app",
    "parse_fault",
]
