"""The embedder and the cross-encoder verifier, served on ONNX Runtime.

Serving imports only onnxruntime, tokenizers and numpy: PyTorch is needed to export and
train (`app.toolkit.ml`), never to answer a request. Both models are MiniLM-L6 BERT graphs, fused
and quantised to dynamic int8 per channel, shipped in `app/cache/models/`.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Encoding, Tokenizer

MODELS_DIR: Final = Path(__file__).resolve().parent / "models"
DEFAULT_EMBEDDER_DIR: Final = MODELS_DIR / "minilm-l6-v2-int8"
DEFAULT_VERIFIER_DIR: Final = MODELS_DIR / "verifier-minilm-int8"

MAX_TOKENS: Final = 256
# Every input is cut to this many characters before the tokenizer sees it, so the work per request
# is bounded whatever a client sends. A WordPiece token is rarely longer than 8 characters, so
# MAX_TOKENS tokens fit; what the cut drops, truncation would have dropped anyway.
MAX_CHARS: Final = MAX_TOKENS * 8
# Sorting a batch by length and running it in small groups pads less; groups of 8 measured
# as fast as one big batch at 8 and faster at 32.
GROUP_SIZE: Final = 8

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


@cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux lists them; empty where they cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def int8_products_saturate(machine: str | None = None, flags: frozenset[str] | None = None) -> bool:
    """Whether ONNX Runtime's fast int8 matrix products lose precision on this CPU.

    On x86-64 without VNNI, the u8 x s8 kernels add each two neighbouring products into a 16-bit
    lane (`vpmaddubsw`), which saturates. The models' scores then move (a pair's cosine by up to
    0.05, a cross-encoder probability by up to 0.58: `python -m app.toolkit.ml.measure` with
    `--arithmetic fast --arithmetic exact`) and the hit decisions are no longer those measured in
    docs/quality.md. An x86-64 CPU whose flags cannot be read counts as one without VNNI; other
    architectures have no such kernel.
    """
    machine = (platform.machine() if machine is None else machine).lower()
    if machine not in {"x86_64", "amd64", "x64"}:
        return False
    flags = cpu_flags() if flags is None else flags
    return not flags & {"avx512_vnni", "avx_vnni"}


def _session(model_path: Path, threads: int, exact_int8: bool) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    # One request is one small graph run: parallel branches only add scheduling cost.
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if exact_int8:
        # u8 x u8 products, which do not saturate: the scores of a CPU with VNNI, a little slower.
        # ONNX Runtime rewrites the int8 weights as unsigned in a graph optimisation of level 2
        # (extended) or more, which the level above includes.
        options.add_session_config_entry("session.x64quantprecision", "1")
    return ort.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])


PAD_TOKEN: Final = "[PAD]"  # noqa: S105 - a vocabulary entry, not a secret


def _tokenizer(model_dir: Path) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    # The upstream tokenizer.json pads every input to 128 tokens, which costs 2-4x the
    # compute: pad only to the longest input of the batch.
    tokenizer.enable_padding(pad_id=_pad_id(tokenizer), pad_token=PAD_TOKEN)
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    return tokenizer


def _pad_id(tokenizer: Tokenizer) -> int:
    pad_id = tokenizer.token_to_id(PAD_TOKEN)
    return 0 if pad_id is None else pad_id


def _capped(text: str, limit: int = MAX_CHARS) -> str:
    return text if len(text) <= limit else text[:limit]


def _cut(text: str, token_ends: Sequence[int], keep: int) -> str:
    """`text` up to the end of its `keep`-th token."""
    if keep >= len(token_ends):
        return text
    return text[: token_ends[keep - 1]] if keep > 0 else ""


def _read_name(model_dir: Path, default: str) -> str:
    for file_name in ("info.json", "metrics.json"):
        path = model_dir / file_name
        if path.is_file():
            name = json.loads(path.read_text(encoding="utf-8")).get("name")
            if isinstance(name, str) and name:
                return name
    return default


def _groups(lengths: Sequence[int]) -> list[list[int]]:
    """Indices sorted by token length, in groups of GROUP_SIZE."""
    order = sorted(range(len(lengths)), key=lambda index: lengths[index])
    return [order[start : start + GROUP_SIZE] for start in range(0, len(order), GROUP_SIZE)]


class _OnnxBert:
    """One BERT session with its tokenizer; `run` feeds a list of encodings padded alike."""

    def __init__(self, model_dir: Path, threads: int, exact_int8: bool | None) -> None:
        self.model_dir = model_dir
        # None: exact where the fast int8 products saturate (`int8_products_saturate`).
        self.exact_int8 = int8_products_saturate() if exact_int8 is None else exact_int8
        self._tokenizer = _tokenizer(model_dir)
        # The same vocabulary without padding or truncation: measures one side of a pair.
        self._counter = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._counter.no_padding()
        self._counter.no_truncation()
        self._pad_id = _pad_id(self._tokenizer)
        self._session = _session(model_dir / "model.onnx", threads, self.exact_int8)
        self._input_names = {node.name for node in self._session.get_inputs()}
        output = self._session.get_outputs()[0]
        self.output_name: str = output.name
        self.output_width: int = int(output.shape[-1])

    def encode(self, texts: Sequence[str]) -> list[Encoding]:
        encodings: list[Encoding] = self._tokenizer.encode_batch([_capped(text) for text in texts])
        return encodings

    def encode_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[Encoding]:
        """Encodes each pair, both sides cut to fit MAX_TOKENS together where they do not.

        Truncating a pair that is too long makes the tokenizer build one copy per overflow
        window of each side (work and memory grow with the product of the two lengths). So each
        pair is encoded whole, without truncation, which costs one pass over its text; only a
        pair longer than MAX_TOKENS has its sides cut, in characters and then at a token boundary
        (`_fit`), and is encoded again.
        """
        capped = [(_capped(first), _capped(second)) for first, second in pairs]
        encodings: list[Encoding] = self._counter.encode_batch(capped)
        too_long = [index for index, encoding in enumerate(encodings) if len(encoding.ids) > MAX_TOKENS]
        if too_long:
            fitted = self._tokenizer.encode_batch([self._fit(*capped[index]) for index in too_long])
            for index, encoding in zip(too_long, fitted, strict=True):
                encodings[index] = encoding
        return encodings

    def _fit(self, first: str, second: str) -> tuple[str, str]:
        # [CLS] first [SEP] second [SEP]
        budget = MAX_TOKENS - 3
        ends = [
            [end for _, end in encoding.offsets]
            for encoding in self._counter.encode_batch([first, second], add_special_tokens=False)
        ]
        if len(ends[0]) + len(ends[1]) <= budget:
            return first, second
        # The shorter side keeps all its tokens if it takes at most half; the other gets the rest.
        short = min(len(ends[0]), len(ends[1]), budget // 2)
        keep_first = short if len(ends[0]) <= len(ends[1]) else budget - short
        return _cut(first, ends[0], keep_first), _cut(second, ends[1], budget - keep_first)

    def _feeds(self, encodings: Sequence[Encoding]) -> dict[str, IntArray]:
        # A group is cut to its own longest: the tokenizer pads a batch together, and a group drawn
        # from it needs no more. An unpadded encoding (`encode_pairs`) is padded to it.
        width = max(sum(encoding.attention_mask) for encoding in encodings)
        for encoding in encodings:
            if len(encoding.ids) < width:
                encoding.pad(width, pad_id=self._pad_id, pad_token=PAD_TOKEN)
        feeds = {
            "input_ids": np.array([e.ids[:width] for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask[:width] for e in encodings], dtype=np.int64),
        }
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.array([e.type_ids[:width] for e in encodings], dtype=np.int64)
        return feeds

    def run(self, encodings: Sequence[Encoding]) -> tuple[FloatArray, IntArray]:
        feeds = self._feeds(encodings)
        (result,) = self._session.run([self.output_name], feeds)
        return np.asarray(result, dtype=np.float32), feeds["attention_mask"]


class OnnxEmbedder:
    """Sentence embeddings of all-MiniLM-L6-v2: masked mean pooling, L2-normalised.

    Safe to call from several threads: ONNX Runtime sessions and the tokenizer are
    read-only after construction.
    """

    def __init__(
        self, model_dir: Path = DEFAULT_EMBEDDER_DIR, *, threads: int = 1, exact_int8: bool | None = None
    ) -> None:
        self._bert = _OnnxBert(model_dir, threads, exact_int8)
        self.exact_int8 = self._bert.exact_int8
        # Stable: cache entries record which embedder made their vector.
        self.name: str = _read_name(model_dir, model_dir.name)
        self.dimension: int = self._bert.output_width

    def embed(self, texts: Sequence[str]) -> FloatArray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encodings = self._bert.encode(texts)
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        for group in _groups([sum(e.attention_mask) for e in encodings]):
            tokens, mask = self._bert.run([encodings[i] for i in group])
            weights = mask[:, :, None].astype(np.float32)
            pooled = (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            vectors[group] = pooled
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        normalised: FloatArray = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
        return normalised


class OnnxCrossEncoder:
    """Reads two prompts together and gives the probability they need the same answer."""

    def __init__(
        self, model_dir: Path = DEFAULT_VERIFIER_DIR, *, threads: int = 1, exact_int8: bool | None = None
    ) -> None:
        self._bert = _OnnxBert(model_dir, threads, exact_int8)
        self.exact_int8 = self._bert.exact_int8
        self.name: str = _read_name(model_dir, model_dir.name)

    def score(self, pairs: Sequence[tuple[str, str]]) -> FloatArray:
        if not pairs:
            return np.zeros((0,), dtype=np.float32)
        encodings = self._bert.encode_pairs(pairs)
        logits = np.empty(len(pairs), dtype=np.float32)
        for group in _groups([sum(e.attention_mask) for e in encodings]):
            result, _ = self._bert.run([encodings[i] for i in group])
            logits[group] = result.reshape(len(group), -1)[:, 0]
        probabilities: FloatArray = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
        return probabilities
