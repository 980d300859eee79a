"""`deja bench --quick` end to end, in a subprocess: it loads, measures, serves traffic and
writes a report with every section filled in. Speed targets are the report's business, not
the test's: only the presence of numbers is checked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"\d[\d,]*(?:\.\d+)?"


def _row(report: str, label: str) -> list[str]:
    for line in report.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == label:
            return cells
    raise AssertionError(f"no row {label!r} in the report:\n{report}")


def test_quick_bench_writes_every_section(tmp_path: Path) -> None:
    report_path = tmp_path / "bench.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEJA_")}
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "bench",
            "--quick",
            "--entries",
            "600",
            "--tenants",
            "2",
            "--real-per-tenant",
            "20",
            "--seconds",
            "1",
            "--warmup",
            "0.3",
            "--fake-latency-ms",
            "50",
            "--report",
            str(report_path),
        ],
        cwd=ROOT,
        env={**env, "DEJA_DATA_DIR": str(tmp_path / "state"), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    report = report_path.read_text()

    for heading in (
        "## Machine and setup",
        "## 1. Load",
        "## 2. Server-side cache figures",
        "## 3. HTTP figures",
        "## 4. Targets",
    ):
        assert heading in report
    assert re.search(rf"load average \(1/5/15 min\) at start \| {NUMBER} / ", report)

    assert re.fullmatch(rf"{NUMBER} rows/s", _row(report, "bulk total")[2])
    assert re.fullmatch(rf"{NUMBER} rows/s", _row(report, "single-row inserts into the live HNSW index")[2])

    for label in (
        "exact hit: lookup",
        "semantic: lookup (embed + search + verify)",
        "part: embedding",
        "part: SQL (HNSW top-k)",
        "part: verifier",
    ):
        cells = _row(report, label)
        assert int(cells[1]) > 0, cells
        assert all(re.fullmatch(NUMBER, cell) for cell in cells[2:5]), cells
    recall = _row(report, "paraphrases of stored prompts")
    assert 0.0 <= float(recall[3]) <= 1.0

    for name in ("exact hit", "semantic hit", "miss", "model direct"):
        cells = _row(report, name)
        assert float(cells[1].replace(",", "")) > 0, cells  # req/s
        assert all(re.fullmatch(NUMBER, cell) for cell in cells[2:5]), cells
    assert "HIT" in _row(report, "exact hit")[6]
    assert "MISS" in _row(report, "miss")[6]
    assert re.fullmatch(rf"-?{NUMBER} ms", _row(report, "Déjà miss − model direct")[1])
    assert re.fullmatch(r"\d+%", _row(report, "exact hit")[7])  # the server's CPU

    for plot in ("latency-cdf.png", "throughput.png"):
        path = tmp_path / "bench" / plot
        assert path.stat().st_size > 1000
        assert f"bench/{plot}" in report
    # The same figures reach the terminal.
    assert "HTTP figures" in completed.stdout
