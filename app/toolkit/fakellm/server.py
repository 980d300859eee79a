"""Run the fake server in a background thread: for tests and benchmarks in the same process."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from app.toolkit.fakellm.app import create_fake_llm_app
from app.toolkit.fakellm.config import FakeLLMConfig


class FakeLLMServer:
    """A fake model server on a free loopback port, served by uvicorn in a daemon thread.

    Use as a context manager, or call `start()` and `stop()`. `base_url` ends in `/v1`, ready for
    `openai.AsyncOpenAI(base_url=...)`.
    """

    def __init__(self, config: FakeLLMConfig | None = None, *, host: str = "127.0.0.1") -> None:
        self.config = config or FakeLLMConfig()
        self.host = host
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def start(self, timeout_s: float = 10.0) -> FakeLLMServer:
        # Bind first so the port is known and taken before the thread starts.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_fake_llm_app(self.config),
            log_level="warning",
            access_log=False,
            lifespan="on",
            # Requests hanging in a `timeout` fault must not hold shutdown up.
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"fake-llm-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake model server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server, self._thread = None, None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
