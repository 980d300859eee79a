"""Send a labelled stream through `/v1/chat/completions` in file order and count what was
served: hits, wrong hits (served content differs from the prompt's own answer), explored
requests, tokens and cost, with the cumulative curves."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec

from app.cache.bound.judges import answer_text
from app.toolkit.files import decode_json, prompt_problem

WINDOW = 200


@dataclass(frozen=True, slots=True)
class Labelled:
    prompt: str
    answer: str


@dataclass(slots=True)
class Replay:
    """One run of the stream against one tenant."""

    label: str
    requests: int = 0
    hits: int = 0
    wrong_hits: int = 0
    explored: int = 0
    tokens: int = 0
    explored_tokens: int = 0
    # Upstream cost at the model's price (None when no price was read: no admin key).
    cost_usd: Decimal | None = None
    explored_cost_usd: Decimal | None = None
    seconds: float = 0.0
    # Per request, in stream order: 1 when it was a hit, 1 when it was a wrong hit, 1 when explored.
    hit_flags: list[int] = field(default_factory=list)
    wrong_flags: list[int] = field(default_factory=list)
    explored_flags: list[int] = field(default_factory=list)

    @property
    def wrong_per_request(self) -> float:
        return self.wrong_hits / self.requests if self.requests else 0.0

    @property
    def wrong_per_hit(self) -> float:
        return self.wrong_hits / self.hits if self.hits else 0.0

    def max_window_wrong_rate(self, window: int = WINDOW) -> float | None:
        """The worst wrong-hit rate over any `window` consecutive requests after the first `window`."""
        flags = self.wrong_flags
        if len(flags) < 2 * window:
            return None
        running = sum(flags[window : 2 * window])
        worst = running
        for end in range(2 * window, len(flags)):
            running += flags[end] - flags[end - window]
            worst = max(worst, running)
        return worst / window

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "requests": self.requests,
            "hits": self.hits,
            "wrong_hits": self.wrong_hits,
            "wrong_per_request": round(self.wrong_per_request, 4),
            "wrong_per_hit": round(self.wrong_per_hit, 4),
            "max_window_wrong_rate": self.max_window_wrong_rate(),
            "explored": self.explored,
            "tokens": self.tokens,
            "explored_tokens": self.explored_tokens,
            "cost_usd": None if self.cost_usd is None else float(round(self.cost_usd, 6)),
            "explored_cost_usd": None
            if self.explored_cost_usd is None
            else float(round(self.explored_cost_usd, 6)),
            "seconds": round(self.seconds, 1),
        }

    def to_json(self) -> dict[str, Any]:
        data = self.summary()
        data["curves"] = {k: v for k, v in asdict(self).items() if k.endswith("_flags")}
        return data


class _Line(msgspec.Struct):
    prompt: str
    answer: str


def read_stream(path: Path) -> list[Labelled]:
    """The labelled stream: `{"prompt": text, "answer": text}` per line; ValueError naming the
    first line that is not one, or whose prompt the service cannot take."""
    lines: list[Labelled] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item: _Line = decode_json(line, _Line)
        except ValueError as exc:
            raise ValueError(f'{path}:{number}: expected {{"prompt": text, "answer": text}}: {exc}') from None
        if (problem := prompt_problem(item.prompt)) is not None:
            raise ValueError(f"{path}:{number}: its prompt {problem}")
        lines.append(Labelled(item.prompt, item.answer))
    return lines


@dataclass(frozen=True, slots=True)
class Price:
    input_per_mtok: Decimal
    output_per_mtok: Decimal

    def cost(self, usage: dict[str, Any]) -> Decimal:
        prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        return (prompt * self.input_per_mtok + completion * self.output_per_mtok) / 1_000_000


async def read_price(client: httpx.AsyncClient, admin_key: str, model: str) -> Price | None:
    """The model's newest price (admin API), or None when it has none."""
    response = await client.get("/admin/prices", headers={"Authorization": f"Bearer {admin_key}"})
    response.raise_for_status()
    prices = [p for p in response.json() if p["model"] == model]
    if not prices:
        return None
    newest = max(prices, key=lambda p: str(p["effective_from"]))
    return Price(Decimal(str(newest["input_per_mtok"])), Decimal(str(newest["output_per_mtok"])))


async def replay(
    client: httpx.AsyncClient,
    stream: Sequence[Labelled],
    key: str,
    *,
    label: str,
    model: str,
    price: Price | None = None,
    progress: Callable[[int], None] | None = None,
) -> Replay:
    """Send the stream one request at a time (order matters: the bound learns as it goes)."""
    run = Replay(label)
    if price is not None:
        run.cost_usd = run.explored_cost_usd = Decimal(0)
    headers = {"Authorization": f"Bearer {key}"}
    started = time.monotonic()
    for index, item in enumerate(stream):
        response = await client.post(
            "/v1/chat/completions",
            headers=headers,
            json={"model": model, "messages": [{"role": "user", "content": item.prompt}]},
        )
        response.raise_for_status()
        completion = response.json()
        hit = response.headers.get("X-Cache") == "HIT"
        wrong = hit and answer_text(completion).strip() != item.answer.strip()
        explored = response.headers.get("X-Cache-Explored") == "true"
        usage = completion.get("usage") or {}
        tokens = int(usage.get("total_tokens") or 0)
        if price is not None and run.cost_usd is not None and run.explored_cost_usd is not None:
            cost = price.cost(usage)
            run.cost_usd += cost
            run.explored_cost_usd += cost if explored else 0
        run.requests += 1
        run.hits += hit
        run.wrong_hits += wrong
        run.explored += explored
        run.tokens += tokens
        run.explored_tokens += tokens if explored else 0
        run.hit_flags.append(int(hit))
        run.wrong_flags.append(int(wrong))
        run.explored_flags.append(int(explored))
        if progress is not None:
            progress(index + 1)
    run.seconds = time.monotonic() - started
    return run


async def fresh_tenant(client: httpx.AsyncClient, admin_key: str, settings: dict[str, Any]) -> str:
    """A new tenant (admin API) with these settings; its key."""
    response = await client.post(
        "/admin/tenants",
        headers={"Authorization": f"Bearer {admin_key}"},
        json={"name": f"replay-{uuid.uuid4().hex[:10]}", "settings": settings},
    )
    response.raise_for_status()
    return str(response.json()["api_key"]["api_key"])


def plot(runs: Sequence[Replay], path: Path, *, max_error_rate: float | None) -> Path:
    """Cumulative wrong hits per request and hit rate over the stream, one line per run."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in CI
    import matplotlib.pyplot as plt
    import numpy as np

    figure, (wrong_axes, hit_axes) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    for run in runs:
        n = np.arange(1, run.requests + 1)
        wrong = np.cumsum(run.wrong_flags) / n
        hits = np.cumsum(run.hit_flags) / n
        (line,) = wrong_axes.plot(n, wrong, label=f"{run.label}: cumulative", linewidth=1.6)
        if run.requests >= WINDOW:
            window = np.convolve(run.wrong_flags, np.ones(WINDOW) / WINDOW, mode="valid")
            wrong_axes.plot(
                np.arange(WINDOW, run.requests + 1),
                window,
                linewidth=0.8,
                alpha=0.6,
                color=line.get_color(),
                linestyle="--",
                label=f"{run.label}: last {WINDOW}",
            )
        hit_axes.plot(n, hits, label=run.label, linewidth=1.6, color=line.get_color())
        if run.explored:
            hit_axes.plot(
                n,
                np.cumsum(run.explored_flags) / n,
                linewidth=0.8,
                linestyle=":",
                color=line.get_color(),
                label=f"{run.label}: explored",
            )
    if max_error_rate is not None:
        # The first few requests swing the cumulative rate anywhere: keep the scale on the bound.
        wrong_axes.set_ylim(0.0, max(4 * max_error_rate, 0.05))
        wrong_axes.axhline(
            max_error_rate, color="black", linewidth=0.8, linestyle="-.", label="max_error_rate"
        )
    wrong_axes.set_xlabel("requests")
    wrong_axes.set_ylabel("wrong hits per request")
    wrong_axes.set_title("Wrong answers served")
    wrong_axes.grid(True, alpha=0.3)
    wrong_axes.legend(fontsize=7)
    hit_axes.set_xlabel("requests")
    hit_axes.set_ylabel("share of requests")
    hit_axes.set_title("Hit rate (and explored share)")
    hit_axes.grid(True, alpha=0.3)
    hit_axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
