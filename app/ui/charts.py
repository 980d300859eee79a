"""Small server-drawn bar charts: geometry here, `<svg>` in the templates; no script, no library."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

WIDTH = 720
HEIGHT = 180
LEFT = 56  # room for the axis labels
BOTTOM = 20


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    css_class: str  # colour, from the stylesheet
    values: Sequence[float]


@dataclass(frozen=True, slots=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    css_class: str
    title: str


@dataclass(frozen=True, slots=True)
class BarChart:
    title: str
    top_label: str  # the value of the highest gridline
    series: Sequence[Series]
    rects: list[Rect] = field(default_factory=list)
    labels: list[tuple[float, str]] = field(default_factory=list)  # x, text under the axis
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    plot_bottom: int = HEIGHT - BOTTOM


def number(value: float) -> str:
    """Whole numbers as such, others to the millionth without trailing zeros (never 5e-05)."""
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.6f}".rstrip("0").rstrip(".")


def _nice_top(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above `value`."""
    if value <= 0:
        return 1.0
    magnitude = 1.0
    while magnitude * 10 <= value:
        magnitude *= 10
    while magnitude > value:
        magnitude /= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str = "",
    stacked: bool = True,
    label_every: int = 1,
) -> BarChart:
    """Bars per label, the series stacked (counts) or side by side (money against money)."""
    count = len(labels)
    totals = [
        sum(s.values[i] for s in series) if stacked else max((s.values[i] for s in series), default=0.0)
        for i in range(count)
    ]
    top = _nice_top(max(totals, default=0.0))
    chart = BarChart(title=title, top_label=number(top), series=series)
    plot_height = chart.plot_bottom - 8
    slot = (WIDTH - LEFT) / max(count, 1)
    bar_width = max(slot * 0.8, 1.0)
    for i, label in enumerate(labels):
        x = LEFT + i * slot + (slot - bar_width) / 2
        base = float(chart.plot_bottom)
        for k, s in enumerate(series):
            value = float(s.values[i])
            height = plot_height * value / top
            tooltip = f"{label}: {s.name} {number(value)}{unit}"
            if stacked:
                base -= height
                rect = Rect(x, base, bar_width, height, s.css_class, tooltip)
            else:
                width = bar_width / len(series)
                rect = Rect(
                    x + k * width,
                    chart.plot_bottom - height,
                    width,
                    height,
                    s.css_class,
                    tooltip,
                )
            if value > 0:
                chart.rects.append(rect)
        if i % label_every == 0:
            chart.labels.append((x + bar_width / 2, label))
    return chart
