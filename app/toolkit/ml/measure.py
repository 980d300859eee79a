"""Latency of the shipped models as the cache calls them: `python -m app.toolkit.ml.measure`.

Per semantic lookup the cache embeds one prompt, and the cross-encoder scores one pair per run for
each candidate it reads (nearest first); five pairs in one run are timed for comparison. Medians
after warm-up, one process, models measured side by side so their ratio holds even when the
machine is busy. `--arithmetic` times
the exact int8 products a CPU without VNNI runs beside the fast ones that saturate there
(`app.cache.onnx_models.int8_products_saturate`), one kind after the other in the order given:
repeat them alternately (`fast exact fast exact`) to see the spread between runs.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from app.cache.onnx_models import DEFAULT_EMBEDDER_DIR, DEFAULT_VERIFIER_DIR, OnnxCrossEncoder, OnnxEmbedder
from app.toolkit.ml.pairs import generate

console = Console()
app = typer.Typer(add_completion=False)


def _median_ms(call: Callable[[int], object], rounds: int, warmup: int = 20) -> float:
    for index in range(warmup):
        call(index)
    timings = []
    for index in range(rounds):
        started = time.perf_counter()
        call(index)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


class Arithmetic(StrEnum):
    """The int8 products a session runs: what the service picks here, exact, or fast."""

    AUTO = "auto"
    EXACT = "exact"
    FAST = "fast"


EXACT_INT8: dict[Arithmetic, bool | None] = {
    Arithmetic.AUTO: None,
    Arithmetic.EXACT: True,
    Arithmetic.FAST: False,
}


def measure(
    embedder_dir: Path,
    verifier_dir: Path,
    threads: tuple[int, ...],
    rounds: int,
    seed: int,
    arithmetic: tuple[Arithmetic, ...] = (Arithmetic.AUTO,),
) -> list[dict[str, Any]]:
    # Work prompts the model never trained on (held-out intents), as the stored and new prompts.
    pairs = [(pair.first, pair.second) for pair in generate(max(rounds, 50), seed, validation=True)]
    return [
        _measure_threads(embedder_dir, verifier_dir, count, pairs, rounds, EXACT_INT8[kind])
        for count in threads
        for kind in arithmetic
    ]


def _measure_threads(
    embedder_dir: Path,
    verifier_dir: Path,
    threads: int,
    pairs: list[tuple[str, str]],
    rounds: int,
    exact_int8: bool | None,
) -> dict[str, Any]:
    embedder = OnnxEmbedder(embedder_dir, threads=threads, exact_int8=exact_int8)
    verifier = OnnxCrossEncoder(verifier_dir, threads=threads, exact_int8=exact_int8)
    embed_ms = _median_ms(lambda i: embedder.embed([pairs[i % len(pairs)][0]]), rounds)
    one_ms = _median_ms(lambda i: verifier.score([pairs[i % len(pairs)]]), rounds)
    five_ms = _median_ms(lambda i: verifier.score([pairs[(i + j) % len(pairs)] for j in range(5)]), rounds)
    return {
        "threads": threads,
        "int8_products": "exact" if embedder.exact_int8 else "fast",
        "embed_ms_p50": round(embed_ms, 2),
        "cross_encoder_1_pair_ms_p50": round(one_ms, 2),
        "cross_encoder_5_pairs_ms_p50": round(five_ms, 2),
    }


def drift(embedder_dir: Path, verifier_dir: Path, rounds: int, seed: int) -> dict[str, Any]:
    """How far the fast int8 products' scores are from the exact ones, on the measured pairs (all
    zero on a CPU with VNNI, where the fast products are exact)."""
    pairs = [(pair.first, pair.second) for pair in generate(max(rounds, 50), seed, validation=True)]
    texts = sorted({text for pair in pairs for text in pair})
    vectors = {}
    for exact in (True, False):
        embedder = OnnxEmbedder(embedder_dir, exact_int8=exact)
        vectors[exact] = {text: embedder.embed([text])[0] for text in texts}
    same_prompt = np.array([float(vectors[True][text] @ vectors[False][text]) for text in texts])
    cosine = {
        exact: np.array([float(vectors[exact][a] @ vectors[exact][b]) for a, b in pairs]) for exact in vectors
    }
    probability = {}
    for exact in (True, False):
        verifier = OnnxCrossEncoder(verifier_dir, exact_int8=exact)
        probability[exact] = np.array([verifier.score([pair])[0] for pair in pairs])
    moved_cosine = np.abs(cosine[True] - cosine[False])
    moved_probability = np.abs(probability[True] - probability[False])
    return {
        "prompts": len(texts),
        "pairs": len(pairs),
        "prompt_vector_cosine_min": round(float(same_prompt.min()), 4),
        "prompt_vector_cosine_median": round(float(np.median(same_prompt)), 4),
        "pair_cosine_moved_median": round(float(np.median(moved_cosine)), 4),
        "pair_cosine_moved_max": round(float(moved_cosine.max()), 4),
        "probability_moved_median": round(float(np.median(moved_probability)), 4),
        "probability_moved_max": round(float(moved_probability.max()), 4),
        "pairs_probability_moved_over_0.1": round(float((moved_probability > 0.1).mean()), 4),
    }


@app.command()
def main(
    embedder_dir: Annotated[Path, typer.Option()] = DEFAULT_EMBEDDER_DIR,
    verifier_dir: Annotated[Path, typer.Option()] = DEFAULT_VERIFIER_DIR,
    threads: Annotated[list[int] | None, typer.Option(help="Thread counts to try (repeatable).")] = None,
    rounds: Annotated[int, typer.Option(min=10)] = 200,
    seed: Annotated[int, typer.Option()] = 7,
    arithmetic: Annotated[
        list[Arithmetic] | None,
        typer.Option(
            help="int8 products to time (repeatable): auto (what the service runs here), exact "
            "(u8 x u8, which never saturate) or fast (u8 x s8, which saturate without VNNI)."
        ),
    ] = None,
    json_out: Annotated[Path | None, typer.Option(help="Also write the figures as JSON here.")] = None,
) -> None:
    """Median latency of one embedding and of the cross-encoder on 1 and 5 pairs."""
    kinds = tuple(arithmetic or (Arithmetic.AUTO,))
    rows = measure(embedder_dir, verifier_dir, tuple(threads or (1, 2)), rounds, seed, kinds)
    table = Table(
        "threads", "int8 products", "embed 1 prompt", "cross-encoder 1 pair", "cross-encoder 5 pairs"
    )
    for row in rows:
        table.add_row(
            str(row["threads"]),
            row["int8_products"],
            f"{row['embed_ms_p50']:.2f} ms",
            f"{row['cross_encoder_1_pair_ms_p50']:.2f} ms",
            f"{row['cross_encoder_5_pairs_ms_p50']:.2f} ms",
        )
    console.print(table)
    report: dict[str, Any] = {"latency": rows}
    if {Arithmetic.EXACT, Arithmetic.FAST} <= set(kinds):
        moved = drift(embedder_dir, verifier_dir, rounds, seed)
        report["fast_against_exact"] = moved
        console.print(
            f"fast against exact int8 products, {moved['prompts']} prompts and {moved['pairs']} pairs: "
            f"a prompt's two vectors at cosine {moved['prompt_vector_cosine_min']} "
            f"(median {moved['prompt_vector_cosine_median']}); a pair's cosine moved by up to "
            f"{moved['pair_cosine_moved_max']} (median {moved['pair_cosine_moved_median']}); the "
            f"cross-encoder's probability by up to {moved['probability_moved_max']} (median "
            f"{moved['probability_moved_median']}; over 0.1 for "
            f"{moved['pairs_probability_moved_over_0.1']:.1%} of the pairs)"
        )
    if json_out is not None:
        json_out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    app()
