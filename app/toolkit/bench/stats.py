"""Latency summaries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Summary:
    """Milliseconds."""

    count: int
    p50: float
    p95: float
    p99: float
    mean: float
    max: float

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> Summary:
        if not len(samples_ms):
            nan = float("nan")
            return cls(0, nan, nan, nan, nan, nan)
        values = np.asarray(samples_ms, dtype=np.float64)
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        return cls(len(values), float(p50), float(p95), float(p99), float(values.mean()), float(values.max()))

    def cells(self) -> list[str]:
        return [f"{self.count}", ms(self.p50), ms(self.p95), ms(self.p99), ms(self.mean), ms(self.max)]


SUMMARY_HEADER = ["n", "p50 ms", "p95 ms", "p99 ms", "mean ms", "max ms"]


def ms(value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"
