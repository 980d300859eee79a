"""The benchmark's report: markdown tables, the same figures on the terminal, and PNG plots."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from app.cache.onnx_models import int8_products_saturate
from app.toolkit.bench.http import ClassResult
from app.toolkit.bench.load import LoadResult
from app.toolkit.bench.server_side import ServerSideResult
from app.toolkit.bench.stats import SUMMARY_HEADER, Summary, ms


@dataclass
class Machine:
    cores_logical: int
    cores_physical: int | None
    cpu_model: str
    memory_gb: float
    python: str
    postgres: str = ""
    pgvector: str = ""
    load_start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_end: tuple[float, float, float] = (0.0, 0.0, 0.0)
    # The int8 instructions the models' speed depends on most; "" unknown.
    int8_instructions: str = ""

    @classmethod
    def detect(cls) -> Machine:
        model = platform.processor() or platform.machine()
        flags: set[str] = set()
        try:
            first_cpu = Path("/proc/cpuinfo").read_text().split("\n\n", 1)[0]
        except OSError:
            first_cpu = ""
        for line in first_cpu.splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
        return cls(
            cores_logical=psutil.cpu_count(logical=True) or 0,
            cores_physical=psutil.cpu_count(logical=False),
            cpu_model=model,
            memory_gb=psutil.virtual_memory().total / 2**30,
            python=platform.python_version(),
            load_start=os.getloadavg(),
            int8_instructions=_int8_instructions(flags),
        )


def _int8_instructions(flags: set[str]) -> str:
    if not flags:
        return ""
    if "avx512_vnni" in flags or "avx_vnni" in flags:
        return "AVX-512 VNNI" if "avx512_vnni" in flags else "AVX-VNNI"
    kind = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    if int8_products_saturate(flags=frozenset(flags)):
        # The models then run their exact, slower u8 x u8 products.
        kind += "; exact u8 x u8 products"
    return f"no VNNI ({kind})"


@dataclass
class BenchConfig:
    command: str
    entries: int
    tenants: int
    real_per_tenant: int
    concurrency: int
    seconds: float
    warmup_s: float
    fake_latency_ms: float
    seed: int
    quick: bool
    database: str  # description, no paths
    server: str  # how Déjà was run
    embedder: str = ""
    top_k: int = 0
    ef_search: int = 0


@dataclass
class BenchResult:
    config: BenchConfig
    machine: Machine
    load: LoadResult
    server_side: ServerSideResult
    http: list[ClassResult] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)  # paths relative to the report

    def http_class(self, name: str) -> ClassResult | None:
        return next((c for c in self.http if c.name == name), None)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _rate(rows: int, seconds: float | None) -> str:
    if not seconds:
        return "n/a"
    return f"{rows / seconds:,.0f} rows/s"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}%"


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} MB"


def targets(result: BenchResult) -> list[list[str]]:
    side = result.server_side
    exact = Summary.of(side.exact_ms)
    semantic = Summary.of(side.semantic_ms)
    rows: list[list[str]] = []

    def row(name: str, target: str, measured: str, met: bool | None) -> None:
        rows.append([name, target, measured, "n/a" if met is None else ("met" if met else "not met")])

    row("exact hit, lookup p50", "<= 2 ms", f"{ms(exact.p50)} ms", exact.p50 <= 2)
    row("semantic lookup p50", "<= 12 ms", f"{ms(semantic.p50)} ms", semantic.p50 <= 12)
    row("semantic lookup p99", "<= 40 ms", f"{ms(semantic.p99)} ms", semantic.p99 <= 40)
    for r in side.recall_sets:
        row(f"recall@1, {r.name}, service query", ">= 0.98", f"{r.recall:.3f}", r.recall >= 0.98)
        row(f"recall@1, {r.name}, HNSW index only", ">= 0.98", f"{r.recall_hnsw:.3f}", r.recall_hnsw >= 0.98)
    for suffix, where in (("", f"concurrency {result.config.concurrency}"), (", 1 client", "1 client")):
        miss, direct = result.http_class("miss" + suffix), result.http_class("model direct" + suffix)
        if miss and direct and miss.latencies_ms and direct.latencies_ms:
            overhead = Summary.of(miss.latencies_ms).p50 - Summary.of(direct.latencies_ms).p50
            row(f"miss overhead p50, {where}", "<= 10 ms", f"{ms(overhead)} ms", overhead <= 10)
    for name, lookup in (("exact hit, 1 client", exact), ("semantic hit, 1 client", semantic)):
        http = result.http_class(name)
        if http and http.latencies_ms:
            over = Summary.of(http.latencies_ms).p50 - lookup.p50
            row(f"{name} over HTTP, p50 above the lookup's own", "<= 10 ms", f"{ms(over)} ms", over <= 10)
    for name, rate in (("exact hit", 1500), ("semantic hit", 300)):
        http = best_within(result.http, name, p99_ms=50) or result.http_class(name)
        if http is None or not http.latencies_ms:
            continue
        p99 = Summary.of(http.latencies_ms).p99
        at = "" if http.name == name else f", {http.name.removeprefix(name + ', ')}"
        row(
            f"{name} throughput with p99 <= 50 ms",
            f">= {rate:,}/s",
            f"{http.throughput:,.0f}/s at p99 {ms(p99)} ms{at}",
            http.throughput >= rate and p99 <= 50 and not http.errors,
        )
    return rows


def best_within(classes: Sequence[ClassResult], name: str, *, p99_ms: float) -> ClassResult | None:
    """Of the runs of class `name` without errors (at the configured concurrency, or at fewer
    connections), the one with the highest rate whose p99 is within `p99_ms`; None when none is."""
    within = [
        c
        for c in classes
        if c.latencies_ms
        and not c.errors
        and (c.name == name or (c.name.startswith(name + ", ") and c.name.endswith(" connections")))
        and Summary.of(c.latencies_ms).p99 <= p99_ms
    ]
    return max(within, key=lambda c: c.throughput, default=None)


def render_markdown(result: BenchResult, *, images: bool = True) -> str:
    config, machine, load, side = result.config, result.machine, result.load, result.server_side
    out: list[str] = ["# Benchmarks", ""]
    out += [
        "Figures from `deja bench`; rerun it to reproduce them (fixed seeds, warm-up before each "
        "measurement). Quiet machines still vary by 10-30% between runs: read ratios and orders "
        "of magnitude more than the last digit.",
        "",
        "```",
        config.command,
        "```",
        "",
        "## Machine and setup",
        "",
    ]
    out.append(
        _table(
            ["", ""],
            [
                [
                    "CPU",
                    f"{machine.cpu_model}, {machine.cores_logical} logical cores"
                    + (f" ({machine.cores_physical} physical)" if machine.cores_physical else ""),
                ],
                ["int8 dot products (the models' speed)", machine.int8_instructions or "unknown"],
                ["memory", f"{machine.memory_gb:.1f} GB"],
                ["load average (1/5/15 min) at start", " / ".join(f"{v:.2f}" for v in machine.load_start)],
                ["load average (1/5/15 min) at end", " / ".join(f"{v:.2f}" for v in machine.load_end)],
                ["Python", machine.python],
                ["Postgres / pgvector", f"{machine.postgres} / {machine.pgvector}"],
                ["database", config.database],
                ["Déjà server", config.server],
                ["embedder", config.embedder],
                ["verifier stages", ", ".join(side.verifier_stages)],
                [
                    "HNSW",
                    f"m = 16, ef_construction = 64, ef_search = {config.ef_search}, "
                    f"top k = {config.top_k}, iterative scan relaxed_order",
                ],
                ["entries / tenants", f"{load.total_entries:,} / {config.tenants}"],
                [
                    "traffic",
                    f"concurrency {config.concurrency}, {config.warmup_s:g} s warm-up + "
                    f"{config.seconds:g} s measured per class, fake model latency {config.fake_latency_ms:g} ms",
                ],
                ["seed", str(config.seed) + (" (quick mode)" if config.quick else "")],
            ],
        )
    )
    out += ["", "## 1. Load", ""]
    groups = len(load.groups)
    out.append(
        f"{load.bulk_rows:,} synthetic rows over {config.tenants} tenants × 3 namespaces × 2 scopes "
        f"({groups} groups), vectors drawn around real prompt embeddings; then "
        f"{len(load.real):,} real prompts ({config.real_per_tenant} per tenant) stored through "
        f"`CacheService.store`. HNSW index: "
        + (
            "dropped before the bulk and built after it."
            if load.index_mode == "rebuilt"
            else "kept live; the bulk went into it."
        )
    )
    out.append("")
    bulk_total = load.copy_s + load.insert_s + (load.index_build_s or 0.0)
    rows = [
        ["binary COPY into a temp table", f"{load.copy_s:.1f} s", _rate(load.bulk_rows, load.copy_s)],
        [
            "INSERT ... SELECT into cache_entries" + (" (live index)" if load.index_mode == "live" else ""),
            f"{load.insert_s:.1f} s",
            _rate(load.bulk_rows, load.insert_s),
        ],
    ]
    if load.index_build_s is not None:
        rows.append(
            ["HNSW index build", f"{load.index_build_s:.1f} s", _rate(load.bulk_rows, load.index_build_s)]
        )
    rows.append(["bulk total", f"{bulk_total:.1f} s", _rate(load.bulk_rows, bulk_total)])
    rows.append(
        [
            "real prompts via CacheService.store (embed + insert)",
            f"{load.real_store_s:.1f} s",
            _rate(len(load.real), load.real_store_s),
        ]
    )
    rows.append(
        [
            "single-row inserts into the live HNSW index",
            f"{load.live_insert_s:.1f} s",
            _rate(load.live_insert_rows, load.live_insert_s),
        ]
    )
    out.append(_table(["step", "time", "rate"], rows))
    out += [
        "",
        f"Table {load.table_bytes / 2**20:,.0f} MB, HNSW index {load.index_bytes / 2**20:,.0f} MB.",
        "",
    ]

    out += ["## 2. Server-side cache figures", ""]
    out.append(
        "One `CacheService.lookup` at a time, in-process, on the warm database (after warm-up "
        'lookups); "in transaction" adds opening the transaction, the tenant context and the commit. '
        "The one-round-trip probes are what the request path runs: for the exact tier one statement "
        "outside any transaction that sets the tenant context itself; for the semantic tier the "
        "embedding, one such statement for the HNSW top-k, and the verifier. "
        "The parts are timed in separate calls of the same code."
    )
    out.append("")
    out.append(
        _table(
            ["measure", *SUMMARY_HEADER],
            [
                ["exact hit: lookup", *Summary.of(side.exact_ms).cells()],
                ["exact hit: in transaction", *Summary.of(side.exact_tx_ms).cells()],
                [
                    "exact hit: one-round-trip probe (the request path)",
                    *Summary.of(side.exact_probe_ms).cells(),
                ],
                ["semantic: lookup (embed + search + verify)", *Summary.of(side.semantic_ms).cells()],
                ["semantic: in transaction", *Summary.of(side.semantic_tx_ms).cells()],
                [
                    "semantic: one-round-trip probe (the request path)",
                    *Summary.of(side.semantic_probe_ms).cells(),
                ],
                ["part: embedding", *Summary.of(side.embed_ms).cells()],
                ["part: SQL (HNSW top-k)", *Summary.of(side.sql_ms).cells()],
                ["part: verifier", *Summary.of(side.verify_ms).cells()],
            ],
        )
    )
    out.append("")
    if side.semantic_queries:
        out.append(
            f"Paraphrase lookups: {side.semantic_hits}/{side.semantic_queries} hits "
            f"({side.semantic_hits / side.semantic_queries:.0%}); {side.semantic_intended} served the entry "
            "the paraphrase was written for."
        )
        out.append("")
    out.append(
        "Recall@1 against exact search (the same SQL with `enable_indexscan = off`), within a tenant "
        "and scope: of the service's query as planned, and of the HNSW index alone (every other plan "
        "disabled; on small scopes the planner may prefer an exact scan by itself)."
    )
    out.append("")
    recall_rows = []
    for r in side.recall_sets:
        for search, recall, plan_name, samples in (
            ("service query", f"{r.recall:.3f}", r.plan_service, r.service_sql_ms),
            ("HNSW index only", f"{r.recall_hnsw:.3f}", r.plan_hnsw, r.hnsw_sql_ms),
            ("exact search", "1", r.plan_exact, r.exact_sql_ms),
        ):
            summary = Summary.of(samples)
            recall_rows.append(
                [r.name, search, str(r.queries), recall, plan_name, ms(summary.p50), ms(summary.p99)]
            )
    out.append(
        _table(
            ["query set", "search", "queries", "recall@1", "plan", "SQL p50 ms", "SQL p99 ms"], recall_rows
        )
    )
    out.append("")
    sweep_values = sorted({ef for r in side.recall_sets for ef in r.sweep_agree} | {config.ef_search})
    if side.recall_sets and side.recall_sets[0].sweep_agree:
        out.append("The HNSW index alone at other `hnsw.ef_search` values (recall@1 / SQL p50 ms):")
        out.append("")
        sweep_rows = []
        for r in side.recall_sets:
            cells = [r.name]
            for ef in sweep_values:
                if ef == config.ef_search and ef not in r.sweep_agree:
                    cells.append(f"{r.recall_hnsw:.3f} / {ms(Summary.of(r.hnsw_sql_ms).p50)} (configured)")
                elif ef in r.sweep_agree:
                    share = r.sweep_agree[ef] / r.queries if r.queries else float("nan")
                    cells.append(f"{share:.3f} / {ms(Summary.of(r.sweep_ms[ef]).p50)}")
                else:
                    cells.append("n/a")
            sweep_rows.append(cells)
        out.append(_table(["query set", *(f"ef_search {ef}" for ef in sweep_values)], sweep_rows))
    out += ["", "## 3. HTTP figures", ""]
    by_wrk = any(c.generator == "wrk" for c in result.http)
    out.append(
        (
            "Closed loop through `POST /v1/chat/completions`: the classes at full concurrency driven by "
            "`wrk` (C; each connection sends its next request when the answer arrives; its latency "
            "percentiles; client CPU is wrk's), the 1-client classes by httpx; class after class, at concurrency "
            if by_wrk
            else "Closed loop through `POST /v1/chat/completions` with httpx, class after class, at concurrency "
        )
        + f'{config.concurrency} (the "1 client" classes send one request at a time, for half as long: '
        "the cost of a request without queueing). Latency is "
        "per request as the client sees it; throughput counts completions in the measured window. "
        "CPU is a share of one core (200% = both cores of a 2-core machine); RSS is the server's "
        "(process and children). Exact hits resend stored prompts; semantic hits send the paraphrases "
        "the in-process phase saw served (aliases are off in the benchmark, in-process and in the server, so that "
        "they go through the semantic tier every time; an alias hit costs an exact hit's probe); misses carry "
        "a ticket number no entry has. "
        '"model direct" sends the same kind of miss requests straight to the fake model.'
        + (
            " With wrk, the exact and semantic hit classes also run at fewer connections (2, 4, ... up to "
            "half the concurrency; half as long each; not plotted): the throughput targets below take the "
            "highest rate, without errors, whose p99 is within their bound, as a rate at a latency bound is "
            "measured."
            if by_wrk
            else ""
        )
    )
    out.append("")
    http_rows = []
    for c in result.http:
        summary = Summary.of(c.latencies_ms)
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(c.cache_status.items()))
        http_rows.append(
            [
                c.name,
                f"{c.throughput:,.1f}",
                ms(summary.p50),
                ms(summary.p95),
                ms(summary.p99),
                str(c.errors),
                statuses,
                _pct(c.server_cpu_pct),
                _mb(c.server_rss_peak_mb),
                _pct(c.postgres_cpu_pct),
                _pct(c.client_cpu_pct),
                f"{c.machine_cpu_pct:.0f}%",
            ]
        )
    out.append(
        _table(
            [
                "class",
                "req/s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "errors",
                "X-Cache",
                "server CPU",
                "server RSS",
                "Postgres CPU",
                "client CPU",
                "machine busy",
            ],
            http_rows,
        )
    )
    out.append("")
    overhead_rows = []
    for suffix in ("", ", 1 client"):
        miss, direct = result.http_class("miss" + suffix), result.http_class("model direct" + suffix)
        if miss and direct and miss.latencies_ms and direct.latencies_ms:
            m, d = Summary.of(miss.latencies_ms), Summary.of(direct.latencies_ms)
            overhead_rows.append(
                [f"Déjà miss − model direct{suffix}"]
                + [f"{ms(a - b)} ms" for a, b in ((m.p50, d.p50), (m.p95, d.p95), (m.p99, d.p99))]
            )
            overhead_rows.append(
                [f"Déjà miss / model direct{suffix}"]
                + [f"{a / b:.3f}" for a, b in ((m.p50, d.p50), (m.p95, d.p95), (m.p99, d.p99))]
            )
    if overhead_rows:
        out.append(_table(["miss overhead", "p50", "p95", "p99"], overhead_rows))
        out.append("")
    out += ["## 4. Targets", ""]
    out.append(_table(["target", "goal", "measured", ""], targets(result)))
    out.append("")
    busiest = max(machine.load_start[0], machine.load_end[0])
    if busiest > 0.75 * machine.cores_logical:
        out.append(
            f"The machine was busy with other work during this run (1-minute load average up to "
            f"{busiest:.1f} on {machine.cores_logical} cores): the latencies are higher and the rates "
            "lower than the same code reaches on a quiet machine."
        )
        out.append("")
    if images and result.plots:
        out += ["## Plots", ""]
        out += [f"![{Path(p).stem}]({p})" for p in result.plots]
        out.append("")
    if images:
        out += METHOD
    return "\n".join(out)


METHOD = [
    "## How it is measured",
    "",
    "- **Load.** Synthetic 384-d unit vectors are drawn around real embeddings of template work prompts "
    "(cosine about 0.85 to their prompt, so they cluster as prompts do), binary-COPYed into a temporary "
    "table and moved into `cache_entries` with one `INSERT ... SELECT` under the right embedder name, so "
    "the partial HNSW index covers them. On a fresh database the index is dropped first and built after "
    "the bulk (`--database temp`, the default); on a configured one rows go into the live index. Per "
    "tenant, a few hundred real prompts are then stored through `CacheService.store`, and single-row "
    "inserts measure what a miss's write costs against the live index.",
    "- **In-process figures.** `CacheService.lookup` is called one at a time after warm-up lookups: "
    "stored prompts sent again (exact tier) and paraphrases of them (embedding, HNSW top-k, verifier). "
    "The parts are timed in separate calls of the same code. Recall@1 runs the service's own "
    "nearest-neighbour query and the same query with index scans disabled, and compares the top ids.",
    "- **HTTP figures.** `deja serve` runs as a subprocess (its CPU and memory are its own; the load "
    "generator does not share its interpreter), calling the project's fake model on loopback. Each "
    "class is a closed loop of httpx clients with a warm-up; the same miss traffic goes straight to the "
    "fake model in the same run, and the difference is Déjà's miss overhead. Everything runs on this one "
    "machine, client included: on 2 cores the client and Postgres take CPU from the server.",
    "- Options: `deja bench --help`. `--quick` is the smoke-sized run; `--target-url` and `--fake-url` "
    "drive running servers (with `--database configured`, the database that server uses).",
    "",
]


def plot(result: BenchResult, directory: Path, relative_to: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    directory.mkdir(parents=True, exist_ok=True)
    side = result.server_side
    paths: list[str] = []

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, samples in (
        ("exact hit (lookup)", side.exact_ms),
        ("semantic (lookup)", side.semantic_ms),
        ("embedding", side.embed_ms),
        ("SQL top-k", side.sql_ms),
        ("verifier", side.verify_ms),
    ):
        _cdf(left, name, samples)
    left.set_title("In-process: one lookup at a time")
    plotted = [c for c in result.http if not c.name.endswith(" connections")]  # swept runs: the table's
    for c in plotted:
        # One colour per class; dashed: one client at a time.
        _cdf(
            right,
            f"{c.name} ({c.throughput:,.0f}/s)",
            c.latencies_ms,
            colour=_colour(c.name),
            dashed=c.name.endswith(", 1 client"),
        )
    right.set_title(f"HTTP /v1/chat/completions, concurrency {result.config.concurrency} (dashed: 1 client)")
    for axis in (left, right):
        axis.set_xscale("log")
        axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.set_xlabel("latency (ms, log scale)")
        axis.set_ylabel("share of requests at or below")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    cdf_path = directory / "latency-cdf.png"
    fig.savefig(cdf_path, dpi=110)
    plt.close(fig)
    paths.append(os.path.relpath(cdf_path, relative_to))

    fig, axis = plt.subplots(figsize=(11, 4.8))
    names = [c.name for c in plotted]
    rates = [c.throughput for c in plotted]
    bars = axis.bar(names, rates, color=[_colour(n) for n in names])
    for bar, rate in zip(bars, rates, strict=True):
        axis.annotate(
            f"{rate:,.0f}/s",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=9,
        )
    axis.set_ylabel("requests per second")
    axis.tick_params(axis="x", labelrotation=15)
    axis.set_title(f'Throughput per class, concurrency {result.config.concurrency} ("1 client" classes: 1)')
    axis.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    rate_path = directory / "throughput.png"
    fig.savefig(rate_path, dpi=110)
    plt.close(fig)
    paths.append(os.path.relpath(rate_path, relative_to))
    return paths


def _colour(name: str) -> str:
    for word, value in (("exact", "#2a9d8f"), ("semantic", "#457b9d"), ("miss", "#e76f51")):
        if name.startswith(word):
            return value
    return "#999999"


def _cdf(
    axis: Any, name: str, samples: list[float], *, colour: str | None = None, dashed: bool = False
) -> None:
    if not samples:
        return
    values = np.sort(np.asarray(samples))
    shares = np.arange(1, len(values) + 1) / len(values)
    axis.step(values, shares, where="post", label=name, color=colour, linestyle="--" if dashed else "-")
