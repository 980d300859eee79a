"""Bodies a decoder or Postgres would choke on are refused at the door with a problem detail,
before any handler parses them.

- A compressed body (`Content-Encoding: gzip`, ...): 415, naming the encoding.
- Bytes that are not UTF-8: 400 (JSON is UTF-8; a lenient decoder would store mojibake).
- JSON nested deeper than `MAX_JSON_DEPTH`: 400. Decoders recurse: about 1,000 levels raise
  RecursionError (a 500) in every JSON library Python has, and nothing Déjà reads is deeper
  than a tool's JSON schema.
- `\\u0000` (NUL) and unpaired UTF-16 surrogates (`\\ud800`): 422. Python decodes both, Postgres
  rejects both in text and jsonb. Both can only arrive as `\\u` escapes, so bodies without one
  pass after a byte search.

The body is read once: Litestar caches it for the handler, within a deadline of its own
(`body_timeout_s`: a client that sends a MiB a byte a second would hold a connection, and the
part of the body it sent, for days), else 408; a client that leaves before its body is complete
is a 499 (a problem detail nobody reads), not a traceback in the error log.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import numpy as np
from litestar import Request
from litestar.exceptions import InternalServerException

from app.errors import BadRequest, ClientClosedRequest, RequestTimeout, Unprocessable, UnsupportedMediaType

MAX_JSON_DEPTH = 64
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
# A string, or what is left of the body after a quote that never closes (the decoder refuses
# such a body later): every match that starts ends, so no quote is tried twice and the scan is
# linear. A pattern that must find the closing quote tries again from each escaped quote of an
# unclosed string: 32 KB of them held the event loop for 3 s.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_DEPTH_STEP = np.zeros(256, dtype=np.int8)
_DEPTH_STEP[[ord("["), ord("{")]] = 1
_DEPTH_STEP[[ord("]"), ord("}")]] = -1


def json_depth(body: bytes) -> int:
    """How deep the brackets of a JSON text nest (strings skipped), without recursing."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return 0  # too few brackets to go deeper than the limit: the common case costs two scans
    steps = _DEPTH_STEP[np.frombuffer(_STRING.sub(b'""', body), dtype=np.uint8)]
    return int(np.cumsum(steps, dtype=np.int64).max(initial=0))


def _has_unstorable(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item) is not None:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def body_guard(timeout_s: float) -> Callable[[Request[Any, Any, Any]], Awaitable[None]]:
    """The `before_request` hook, reading each body within `timeout_s`."""

    async def guard_body(request: Request[Any, Any, Any]) -> None:
        if request.method not in _WITH_BODY:
            return
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            # Read as it came, a compressed body is bytes that are not UTF-8: a 400 that named a byte.
            raise UnsupportedMediaType(
                f"Content-Encoding {encoding[:40]!r} is not supported: send the body uncompressed."
            )
        try:
            async with asyncio.timeout(timeout_s):
                body = await request.body()
        except TimeoutError:
            raise RequestTimeout(f"The request body did not arrive within {timeout_s:g} s.") from None
        except InternalServerException:
            # Litestar's word for a disconnect while the body was being read.
            raise ClientClosedRequest("The client closed the connection before its body arrived.") from None
        check_body(body)

    return guard_body


def check_body(body: bytes) -> None:
    """400 or 422 for a body no decoder, or Postgres, can take (the module's docstring)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"The body is not valid UTF-8 (byte {exc.start}).") from None
    if json_depth(body) > MAX_JSON_DEPTH:
        raise BadRequest(f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels.")
    if b"\\u" not in body:
        return
    try:
        decoded = msgspec.json.decode(body)
    except msgspec.DecodeError:
        # msgspec refuses an unpaired surrogate escape ("Input data was truncated"); Python's
        # decoder reads it, so that such a body gets the 422 that says what is wrong.
        try:
            decoded = json.loads(body)
        except ValueError:
            return  # not JSON: the handler's own decoding answers with a 400
    if _has_unstorable(decoded):
        raise Unprocessable("Text must not contain NUL characters (\\u0000) or unpaired surrogates.")
