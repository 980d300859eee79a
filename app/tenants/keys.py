"""API keys: random, shown once, stored only as a SHA-256 hash plus a short display prefix."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

KEY_PREFIX = "dj_"
DISPLAY_PREFIX_LENGTH = 11  # "dj_" and 8 random characters: enough to tell keys apart in a list


@dataclass(frozen=True, slots=True)
class NewKey:
    key: str
    prefix: str
    key_hash: bytes


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def generate_key() -> NewKey:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return NewKey(key=key, prefix=key[:DISPLAY_PREFIX_LENGTH], key_hash=hash_key(key))
