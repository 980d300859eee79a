"""Whether the client of a miss is still there while its model call runs, until its response
starts.

Once a request's body has been read, the ASGI server's next `receive` message is
`http.disconnect`, sent when the client closes the connection (or when the response is
complete). A stream that has started is watched by the response itself; before that (a
non-streamed answer, a stream's first byte) only by this, so that a miss whose client gave up
first is booked as left (499), not as delivered or as the model's failure.
"""

from __future__ import annotations

import asyncio

from litestar.types import Receive


async def _until_disconnect(receive: Receive) -> bool:
    """True once the server reports the client gone; False if `receive` cannot tell (it fails,
    or answers with anything else: the body is read, so only a server that does not wait would)."""
    try:
        return (await receive())["type"] == "http.disconnect"
    except Exception:  # a server that cannot say: the client is taken as present
        return False


class ClientWatch:
    """Watches one request's connection from `start` to `stop`."""

    __slots__ = ("_task",)

    def __init__(self, receive: Receive) -> None:
        self._task = asyncio.create_task(_until_disconnect(receive))

    @property
    def left(self) -> bool:
        """The client closed its connection before the answer was sent."""
        return self._task.done() and not self._task.cancelled() and self._task.result()

    def stop(self) -> None:
        """Stop watching (the server's own watch takes over once the response starts)."""
        self._task.cancel()
