"""`deja eval` on a small labelled file, through the service's own store-and-lookup path."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

PAIRS = [
    ("How do I reset my VPN password?", "how can I reset my VPN password", 1),
    ("convert 5 km to miles", "convert 5 miles to km", 0),
    ("close 5 tickets in the queue", "close 50 tickets in the queue", 0),
    ("What is the capital of France?", "What is the capital of France?", 1),
    ("export the report to PDF", "import the report from PDF", 0),
    ("Summarise this contract in three bullet points", "summarize this contract in 3 bullets", 1),
]
KINDS = ["paraphrase", "look-alike", "look-alike", "identical", "look-alike", "paraphrase"]


def test_eval_reports_precision_recall_and_writes_the_plot(database_url: str, tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "\n".join(
            json.dumps({"a": a, "b": b, "label": y, "kind": k})
            for (a, b, y), k in zip(PAIRS, KINDS, strict=True)
        )
    )
    plot = tmp_path / "curve.png"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "eval",
            "--pairs",
            str(pairs),
            "--plot",
            str(plot),
            "--json",
            "--compare",
        ],
        env={**os.environ, "DEJA_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    runs = {run["name"].split(": ", 1)[1]: run for run in report["runs"]}
    assert set(runs) == {"deja", "rules, no cross-encoder"}
    for run in runs.values():
        assert run["pairs"] == len(PAIRS)
        # The three look-alikes (direction, number, antonym) must not be served.
        assert run["deja"]["false_hits"] == 0
        assert run["deja"]["true_hits"] >= 1  # the identical pair at least
        assert set(run["deja"]) >= {"precision", "recall", "false_hit_rate", "hit_rate"}
        assert "cosine_0.9" in run
        # The figures kind by kind, in the file's order.
        by_kind = run["by_kind"]
        assert list(by_kind) == ["paraphrase", "look-alike", "identical"]
        assert [by_kind[k]["pairs"] for k in by_kind] == [2, 3, 1]
        assert (by_kind["look-alike"]["hits"], by_kind["identical"]["true_hits"]) == (0, 1)
    assert plot.stat().st_size > 10_000


def test_eval_rejects_a_broken_file(database_url: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.csv"
    broken.write_text("sentence1,sentence2,label\nonly two,columns\n")
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "eval", "--pairs", str(broken)],
        env={**os.environ, "DEJA_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "error:" in result.stderr


def run_eval(database_url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "eval", *args],
        env={**os.environ, "DEJA_DATABASE_URL": database_url},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_missing_pairs_file_says_where_the_public_pairs_come_from(database_url: str, tmp_path: Path) -> None:
    result = run_eval(database_url, tmp_path, "--pairs", "../shared/data/langcache_chat_pairs.csv")
    assert result.returncode == 2
    assert "no pairs file at ../shared/data/langcache_chat_pairs.csv" in result.stderr
    assert "shared data folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_identical_input_gives_identical_figures_and_no_plot_unless_asked(
    database_url: str, tmp_path: Path
) -> None:
    pairs = tmp_path / "pairs.jsonl"
    # Enough pairs that concurrent lookups would have shared embedding batches.
    rows = (
        [(a, b, y) for a, b, y in PAIRS]
        + [(f"{a} please", f"{b} now", y) for a, b, y in PAIRS]
        + [(f"quick question: {a}", b.upper(), y) for a, b, y in PAIRS]
    )
    pairs.write_text("\n".join(json.dumps({"a": a, "b": b, "label": y}) for a, b, y in rows))
    first = run_eval(database_url, tmp_path, "--pairs", str(pairs), "--json")
    second = run_eval(database_url, tmp_path, "--pairs", str(pairs), "--json")
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert json.loads(first.stdout) == json.loads(second.stdout)
    assert "plot" not in json.loads(first.stdout)
    assert list(tmp_path.glob("*.png")) == []


DEEP = "[" * 200_000 + "]" * 200_000


def test_files_no_prompt_can_come_from_are_a_message_naming_the_line_never_a_traceback(
    database_url: str, tmp_path: Path
) -> None:
    """Each used to end in a traceback: RecursionError, csv's field limit, asyncpg's refusal of a
    NUL, the cache's NothingToLookUp, a UnicodeEncodeError."""
    cases = {
        "deep.jsonl": '{"a": "x", "b": "y", "label": 1, "z": ' + DEEP + "}\n",
        "long.csv": "sentence1,sentence2,label\n" + "w " * 70_000 + ",short,1\n",
        "nul.jsonl": json.dumps({"a": "reset\u0000it", "b": "reset it", "label": 1}) + "\n",
        "blank.jsonl": json.dumps({"a": "\u200b", "b": "reset it", "label": 0}) + "\n",
        "surrogate.jsonl": '{"a": "\\ud800 x", "b": "y", "label": 1}\n',
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        result = run_eval(database_url, tmp_path, "--pairs", str(path))
        assert result.returncode == 2, (name, result.stderr[-500:])
        assert "Traceback" not in result.stderr, (name, result.stderr[-800:])
        assert f"error: {name}" in result.stderr, (name, result.stderr[-300:])
    deep_settings = "[" * 20_000 + "]" * 20_000  # as deep as a command line holds
    settings = run_eval(
        database_url, tmp_path, "--pairs", str(tmp_path / "deep.jsonl"), "--settings", deep_settings
    )
    assert settings.returncode == 2
    assert "Traceback" not in settings.stderr

    stream = tmp_path / "stream.jsonl"
    for content in (
        '{"prompt": "x", "answer": "y", "z": ' + DEEP + "}\n",
        '{"prompt": 1e400, "answer": null}\n',
    ):
        stream.write_text(content)
        for command in (
            ["replay", str(stream), "--key", "dj_unused"],
            ["fake-llm", "--answers", str(stream)],
        ):
            result = subprocess.run(
                [sys.executable, "-m", "app.cli", *command],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 2, (command, result.stderr[-500:])
            assert "Traceback" not in result.stderr, (command, result.stderr[-800:])
            # The message names the line (typer's box may wrap it).
            assert "stream.jsonl:1" in re.sub(r"[\s│]", "", result.stderr), (command, result.stderr[-500:])
