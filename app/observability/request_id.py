"""Request ids. Every request gets one of Déjà's own (`X-Request-Id` on every response): it is the
ledger's unique key, so nothing a client sends can merge, drop or overwrite another request's
row. A client's own id (`X-Client-Request-Id`, or `X-Request-Id` as older clients send it) is
kept beside it, untrusted and not unique: echoed back, logged and stored in the ledger."""

from __future__ import annotations

import re
import uuid

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

HEADER = "x-request-id"
CLIENT_HEADER = "x-client-request-id"
CLIENT_ID_MAX = 128
# Printable ASCII only: the id goes back out in a header and into logs.
_SANE = re.compile(rb"^[\x21-\x7e]{1,128}$")


def request_id_of(scope: Scope) -> str:
    """Déjà's id for this request, made once per request."""
    state = scope.setdefault("state", {})
    request_id: str | None = state.get("request_id")
    if request_id is None:
        request_id = state["request_id"] = uuid.uuid4().hex
    return request_id


def client_request_id_of(scope: Scope) -> str | None:
    """The client's own id for this request when it sent a printable one (bytes are never
    decoded as UTF-8: a header is not required to be)."""
    headers = dict(scope.get("headers", []))
    sent = headers.get(CLIENT_HEADER.encode(), headers.get(HEADER.encode()))
    if sent is None or not _SANE.match(sent):
        return None
    return sent.decode("ascii")


async def add_request_id(message: Message, scope: Scope) -> None:
    """`before_send` hook: runs for every response, the router's own 404s and 405s too."""
    if message["type"] == "http.response.start":
        headers = MutableScopeHeaders.from_message(message)
        headers[HEADER] = request_id_of(scope)
        if (client_id := client_request_id_of(scope)) is not None:
            headers[CLIENT_HEADER] = client_id
