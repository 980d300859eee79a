"""Text Postgres cannot store is refused at the door (422), not discovered at INSERT (500).

JSON may carry `\\u0000` (NUL) and unpaired UTF-16 surrogates (`\\ud800`); Python decodes both,
Postgres rejects both in text and jsonb. Both can only arrive as `\\u` escapes, so bodies
without one pass after a byte search; the others are decoded and their strings checked. The
body is read once: Litestar caches it for the handler.
"""

from __future__ import annotations

import json
import re
from typing import Any

from litestar import Request

from app.errors import Unprocessable

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def _has_unstorable(value: Any) -> bool:
    if isinstance(value, str):
        return _UNSTORABLE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_unstorable(k) or _has_unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_unstorable(v) for v in value)
    return False


async def refuse_unstorable_text(request: Request[Any, Any, Any]) -> None:
    """`before_request` hook."""
    if request.method not in _WITH_BODY:
        return
    body = await request.body()
    if b"\\u" not in body:
        return
    try:
        decoded = json.loads(body)
    except ValueError:
        return  # not JSON: the handler's own decoding answers with a 400
    if _has_unstorable(decoded):
        raise Unprocessable("Text must not contain NUL characters (\\u0000) or unpaired surrogates.")
