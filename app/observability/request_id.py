"""Every response carries `X-Request-Id`: the client's own when it sent a sane one, else a new one."""

from __future__ import annotations

import re
import uuid

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

HEADER = "x-request-id"
_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def request_id_of(scope: Scope) -> str:
    """The request's id, chosen once per request (the first caller decides)."""
    state = scope.setdefault("state", {})
    request_id: str | None = state.get("request_id")
    if request_id is None:
        sent = next((v.decode() for k, v in scope.get("headers", []) if k == HEADER.encode()), "")
        request_id = sent if _SANE.match(sent) else uuid.uuid4().hex
        state["request_id"] = request_id
    return request_id


async def add_request_id(message: Message, scope: Scope) -> None:
    """`before_send` hook: runs for every response, the router's own 404s and 405s too."""
    if message["type"] == "http.response.start":
        MutableScopeHeaders.from_message(message)[HEADER] = request_id_of(scope)
