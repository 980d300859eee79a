"""The embedder and the cross-encoder verifier, served on ONNX Runtime.

Serving imports only onnxruntime, tokenizers and numpy: PyTorch is needed to export and
train (`app.toolkit.ml`), never to answer a request. Both models are MiniLM-L6 BERT graphs, fused
and quantised to dynamic int8 per channel, shipped in `app/cache/models/`.
"""

from __future__ import annotations

import json
import platform
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Encoding, Tokenizer

from app.cache.verifier.base import shared_ends
from app.cache.verifier.texts import shared_end, shared_start

MODELS_DIR: Final = Path(__file__).resolve().parent / "models"
DEFAULT_EMBEDDER_DIR: Final = MODELS_DIR / "minilm-l6-v2-int8"
DEFAULT_VERIFIER_DIR: Final = MODELS_DIR / "verifier-minilm-int8"
# The cross-encoder that reads the pairs whose prompts paste one text (`shares_text`).
DEFAULT_OVER_TEXT_DIR: Final = MODELS_DIR / "verifier-over-text-int8"

MAX_TOKENS: Final = 256
# Every input is cut to this many characters before the tokenizer sees it, so the work per request
# is bounded whatever a client sends. A WordPiece token is rarely longer than 8 characters, so
# MAX_TOKENS tokens fit; what the cut drops, truncation would have dropped anyway.
MAX_CHARS: Final = MAX_TOKENS * 8
# The cross-encoder reads up to PAIR_CHARS characters of each prompt: all the cache hands it
# (app.cache.verifier.texts.MODEL_INPUT_CHARS: two longer prompts are first cut to where they differ).
PAIR_CHARS: Final = 4096
# The longest pair the cross-encoder is trained on, in tokens with its three markers
# (`TrainConfig.max_tokens`, recorded in its metrics.json). It never reads a longer one.
PAIR_TOKENS: Final = 128
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


def _word_range(text: str, encoding: Encoding, start: int, stop: int) -> tuple[int, int]:
    """Where in `text` tokens `start` to `stop` (excluded) lie, widened to whole words; an empty
    range where they begin when there are none."""
    if start >= stop:
        at = encoding.offsets[start][0] if start < len(encoding.offsets) else len(text)
        return at, at
    words = encoding.word_ids
    while start > 0 and words[start] is not None and words[start - 1] == words[start]:
        start -= 1
    while stop < len(words) and words[stop] is not None and words[stop] == words[stop - 1]:
        stop += 1
    return encoding.offsets[start][0], encoding.offsets[stop - 1][1]


# The end of a sentence or clause: a stop, question or exclamation mark, colon or semicolon, then a
# space or a CJK character (NFKC, which prompts go through, turns the full-width marks into these),
# or an ideographic full stop.
_CLAUSE_END = re.compile(r"[.!?:;](?=\s|[\u3000-\u9fff\uac00-\ud7af\uff00-\uffef])|[。！？；：]")
# A differing part without a letter or digit (nothing, or only punctuation) adds or drops words
# rather than changing them.
_WORD = re.compile(r"\w")
# A differing part of fewer words than this is read within its sentence: "risks" and "benefits"
# alone say little; "List the risks in these notes." and "List the benefits in these notes." say
# what each prompt asks.
_FEWEST_WORDS = 3


def _sentence_range(text: str, start: int, stop: int) -> tuple[int, int]:
    """The sentences of `text` that hold characters `start` to `stop`."""
    before = [match.end() for match in _CLAUSE_END.finditer(text, 0, start)]
    after = _CLAUSE_END.search(text, stop)
    return (before[-1] if before else 0), (after.end() if after else len(text))


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


def counting_tokenizer(model_dir: Path) -> Tokenizer:
    """The model's tokenizer without padding or truncation: what `pair_window` measures with."""
    counter = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    counter.no_padding()
    counter.no_truncation()
    return counter


def pair_window(counter: Tokenizer, first: str, second: str) -> tuple[str, str] | None:
    """What the cross-encoder reads of two prompts too long to read together: the words where they
    differ, or the sentences that hold them when those words are fewer than _FEWEST_WORDS on
    either side. None when that does not fit PAIR_TOKENS (widened to whole words or sentences, a
    window may no longer fit), or when one prompt has no differing words (it only adds words to
    the other, perhaps with other punctuation, or differs only in what the tokenizer does not
    keep: case, accents). `counter` is the model's tokenizer without padding or truncation. A
    long text with another question after it reads as the two questions; the same text with a
    reworded instruction before it, as the two instructions. The rest of the text they share
    tells the model nothing about whether one answer serves both, and left in, it sways the
    model towards "the same" (docs/quality.md, long prompts). Training reads its long pairs the
    same way (`TrainConfig.read_as_served`)."""
    texts = (first, second)
    sides = counter.encode_batch(list(texts), add_special_tokens=False)
    shared_start, shared_end = shared_ends(sides[0].ids, sides[1].ids)
    differing = len(sides[0].ids) + len(sides[1].ids) - 2 * (shared_start + shared_end)
    if differing > PAIR_TOKENS - 3:  # [CLS] first [SEP] second [SEP]
        return None
    ranges = [
        _word_range(text, side, shared_start, len(side.ids) - shared_end)
        for text, side in zip(texts, sides, strict=True)
    ]
    words = [text[start:stop] for text, (start, stop) in zip(texts, ranges, strict=True)]
    if not all(_WORD.search(part) for part in words):
        return None
    if min(len(part.split()) for part in words) < _FEWEST_WORDS:
        sentences = [
            text[slice(*_sentence_range(text, start, stop))].strip()
            for text, (start, stop) in zip(texts, ranges, strict=True)
        ]
        if len(counter.encode(sentences[0], sentences[1]).ids) <= PAIR_TOKENS:
            return sentences[0], sentences[1]
    if len(counter.encode(words[0], words[1]).ids) <= PAIR_TOKENS:
        return words[0], words[1]
    return None


def requests_around(counter: Tokenizer, first: str, second: str) -> tuple[str, str] | None:
    """The two requests around a text both prompts paste (`around_shared_text`), when there are
    such and they fit PAIR_TOKENS (measured with `counter`); None otherwise."""
    requests = around_shared_text(first, second)
    if requests is None or len(counter.encode(*requests).ids) > PAIR_TOKENS:
        return None
    return requests


# The name under which an error bound learns the scores of the cross-encoder for pairs over one
# pasted text (the general model's are the cross-encoder stage's own, "cross_encoder").
OVER_TEXT_SCORER: Final = "cross_encoder_over_text"

# A text two prompts both paste is read around only when it is this many characters or more, and
# at least half of the shorter prompt: below that, what they share is no pasted text.
SHARED_TEXT_CHARS: Final = 200
# Where the search for that text starts: this many characters of the first prompt at its middle
# (then at a quarter and three quarters), looked for in the second.
_PROBE_CHARS = 64


def around_shared_text(first: str, second: str) -> tuple[str, str] | None:
    """Two prompts without the longest text they both hold, when that text is most of each: one
    pasted text with a request before it in one prompt and after it in the other ("Summarise
    this: TEXT" / "TEXT Give me a summary."). They share neither their start nor their end, so
    `pair_window` finds no place where they differ; what tells them apart is their two requests.
    None when they share no such text, when they start or end with it (`pair_window` reads
    those), or when one of them is only that text (it adds nothing to it, or only punctuation).
    The text is found from a probe of the first prompt and widened on both sides as far as the
    two agree (slices compared in C), then cut back to whole words."""
    shorter = min(len(first), len(second))
    if shorter < SHARED_TEXT_CHARS:
        return None
    opening = shared_start(first, second)
    if max(opening, shared_end(first, second, shorter - opening)) >= SHARED_TEXT_CHARS:
        return None
    # Runs of text both hold, around a probe found in the second (its first and last occurrence: a
    # text that repeats itself may be found out of step): where each starts in the first and in
    # the second, and its length.
    runs = []
    for fraction in (0.5, 0.25, 0.75):
        at = int(len(first) * fraction)
        probe = first[at : at + _PROBE_CHARS]
        for found in {second.find(probe), second.rfind(probe)} - {-1}:
            before = shared_end(first[:at], second[:found], min(at, found))
            runs.append((at - before, found - before, before + shared_start(first[at:], second[found:])))
    if not runs:
        return None
    start, found, length = max(runs, key=lambda run: run[2])
    if length < max(SHARED_TEXT_CHARS, shorter // 2):
        return None
    # The shared text in each: [start, stop) in the first, shifted by `shift` in the second,
    # narrowed to whole words of both.
    stop, shift = start + length, start - found
    while start < stop and not (_between_words(first, start) and _between_words(second, start - shift)):
        start += 1
    while stop > start and not (_between_words(first, stop) and _between_words(second, stop - shift)):
        stop -= 1
    requests = (
        f"{first[:start].strip()} {first[stop:].strip()}".strip(),
        f"{second[: start - shift].strip()} {second[stop - shift :].strip()}".strip(),
    )
    return requests if all(_WORD.search(request) for request in requests) else None


def shares_text(first: str, second: str) -> bool:
    """Whether two prompts paste one text (an email, a log, a clause, with a request before or after
    it): what they share at their start and end, or one run of text with their requests around it
    (`around_shared_text`), is SHARED_TEXT_CHARS or more and at least half of the shorter prompt."""
    shorter = min(len(first), len(second))
    if shorter < SHARED_TEXT_CHARS:
        return False
    opening = shared_start(first, second)
    if opening + shared_end(first, second, shorter - opening) >= max(SHARED_TEXT_CHARS, shorter // 2):
        return True
    return around_shared_text(first, second) is not None


def _between_words(text: str, index: int) -> bool:
    """Whether `index` in `text` cuts no word in two."""
    return index == 0 or index >= len(text) or not (text[index - 1].isalnum() and text[index].isalnum())


class _OnnxBert:
    """One BERT session with its tokenizer; `run` feeds a list of encodings padded alike."""

    def __init__(self, model_dir: Path, threads: int, exact_int8: bool | None) -> None:
        self.model_dir = model_dir
        # None: exact where the fast int8 products saturate (`int8_products_saturate`).
        self.exact_int8 = int8_products_saturate() if exact_int8 is None else exact_int8
        self._tokenizer = _tokenizer(model_dir)
        # The same vocabulary without padding or truncation: measures one side of a pair.
        self._counter = counting_tokenizer(model_dir)
        self._pad_id = _pad_id(self._tokenizer)
        self._session = _session(model_dir / "model.onnx", threads, self.exact_int8)
        self._input_names = {node.name for node in self._session.get_inputs()}
        output = self._session.get_outputs()[0]
        self.output_name: str = output.name
        self.output_width: int = int(output.shape[-1])

    def encode(self, texts: Sequence[str]) -> list[Encoding]:
        encodings: list[Encoding] = self._tokenizer.encode_batch([_capped(text) for text in texts])
        return encodings

    def encode_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[Encoding | None]:
        """Encodes each pair as the cross-encoder is trained to read it, in at most PAIR_TOKENS
        tokens where it can.

        Two prompts that paste one text with their requests on its two sides are read as those
        requests (`requests_around`). Otherwise a pair that fits is read whole, and a longer one
        where its two prompts differ (`pair_window`); when that cannot be done, a pair of up to
        MAX_TOKENS is read whole, as it fits the model, and a longer one not at all (None): the
        model would judge it without seeing what tells its prompts apart.
        """
        capped = [(_capped(first, PAIR_CHARS), _capped(second, PAIR_CHARS)) for first, second in pairs]
        around = [requests_around(self._counter, *pair) for pair in capped]
        # Encoded whole, without truncation: no overflow windows (which grow with the product of
        # the two lengths).
        whole: list[Encoding] = self._counter.encode_batch(capped)
        encodings: list[Encoding | None] = [
            e if len(e.ids) <= PAIR_TOKENS and requests is None else None
            for e, requests in zip(whole, around, strict=True)
        ]
        windows = {
            index: around[index] or pair_window(self._counter, *capped[index])
            for index, e in enumerate(encodings)
            if e is None
        }
        readable = [index for index, window in windows.items() if window is not None]
        read: list[Encoding] = self._tokenizer.encode_batch([windows[index] for index in readable])
        for index, encoding in zip(readable, read, strict=True):
            encodings[index] = encoding
        for index in windows:
            if encodings[index] is None and len(whole[index].ids) <= MAX_TOKENS:
                encodings[index] = whole[index]
        return encodings

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


class OverTextCrossEncoders:
    """Two cross-encoders, each reading the pairs it was chosen for: `over_text` those whose prompts
    paste one text (`shares_text`: two requests about one email, log or clause, which the model
    reads without the text), `general` every other pair. Both give the same probability, and every
    threshold applies to either; a pair costs one run of one model."""

    def __init__(self, general: OnnxCrossEncoder, over_text: OnnxCrossEncoder) -> None:
        self.general = general
        self.over_text = over_text
        self.exact_int8 = general.exact_int8
        self.name: str = f"{general.name} + {over_text.name}"

    @staticmethod
    def general_reads(first: str, second: str) -> bool:
        """Whether the general cross-encoder reads this pair (its prompts paste no one text)."""
        return not shares_text(first, second)

    @staticmethod
    def scorer_name(first: str, second: str) -> str | None:
        """OVER_TEXT_SCORER for a pair the model for prompts over one text reads, None for the
        general model's: an error bound learns each model's scores on a curve of their own."""
        return OVER_TEXT_SCORER if shares_text(first, second) else None

    def score(self, pairs: Sequence[tuple[str, str]]) -> FloatArray:
        over_text = np.array([shares_text(first, second) for first, second in pairs], dtype=bool)
        if not over_text.any():
            return self.general.score(pairs)
        probabilities = np.zeros(len(pairs), dtype=np.float32)
        for model, chosen in ((self.over_text, over_text), (self.general, ~over_text)):
            indices = np.flatnonzero(chosen)
            if len(indices):
                probabilities[indices] = model.score([pairs[int(index)] for index in indices])
        return probabilities


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
        """The probability of each pair; 0 for a pair of long prompts whose differing parts do not
        fit what the model reads (`_OnnxBert.encode_pairs`): it cannot tell them the same."""
        if not pairs:
            return np.zeros((0,), dtype=np.float32)
        probabilities = np.zeros(len(pairs), dtype=np.float32)
        readable = [(index, e) for index, e in enumerate(self._bert.encode_pairs(pairs)) if e is not None]
        for group in _groups([sum(encoding.attention_mask) for _, encoding in readable]):
            indices = [readable[position][0] for position in group]
            result, _ = self._bert.run([readable[position][1] for position in group])
            logits = result.reshape(len(group), -1)[:, 0]
            probabilities[indices] = 1.0 / (1.0 + np.exp(-logits))
        return probabilities
