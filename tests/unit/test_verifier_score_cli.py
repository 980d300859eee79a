"""`deja verifier score`: one pair read as a lookup reads it, to see why it hits or misses."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from app.cache.onnx_models import DEFAULT_VERIFIER_DIR
from app.cli import cli


def test_a_pair_is_shown_with_its_cosine_its_verdict_and_each_probability() -> None:
    runner = CliRunner()
    swapped = runner.invoke(cli, ["verifier", "score", "convert 5 km to miles", "convert 5 miles to km"])
    assert swapped.exit_code == 0, swapped.output
    assert "at the default settings: refused by rules: direction" in swapped.output
    cosine = float(re.search(r"cosine (\d\.\d{3})", swapped.output).group(1))  # type: ignore[union-attr]
    assert 0.8 < cosine <= 1.0

    same = runner.invoke(
        cli,
        [
            *(
                "verifier",
                "score",
                "How do I undo the last git commit?",
                "how can I undo my last commit in git",
            ),
            *("--previous-dir", str(DEFAULT_VERIFIER_DIR)),
        ],
    )
    assert same.exit_code == 0, same.output
    assert "at the default settings: served" in same.output
    # One probability for each model named, the same model twice here: the same score.
    scores = [float(p) for p in re.findall(r"(?:verifier|previous): (\d\.\d{3})", same.output)]
    assert len(scores) == 2
    assert scores[0] == scores[1] > 0.7  # above the usual threshold: served at cosine 0.98


def test_two_long_prompts_are_read_cut_to_where_they_differ() -> None:
    report = "The quarterly report covers revenue, churn and hiring across every region. " * 60
    result = CliRunner().invoke(
        cli, ["verifier", "score", f"Translate into French:\n{report}", f"Translate into German:\n{report}"]
    )
    assert result.exit_code == 0, result.output
    # The models read the two instructions and the start of the text, not the text whole.
    cut = re.search(
        r"read cut to where the prompts differ: ([\d,]+) and ([\d,]+) of their ([\d,]+)", result.output
    )
    assert cut is not None, result.output
    read, whole = (int(cut.group(i).replace(",", "")) for i in (1, 3))
    assert 0 < read < whole / 2
    assert "at the default settings: refused by" in result.output


def test_the_report_names_the_rules_when_asked_to_decide_without_one_that_does_not_exist() -> None:
    result = CliRunner().invoke(
        cli, ["verifier", "report", "--disable-rule", "negation", "--disable-rule", "tone"]
    )
    assert result.exit_code == 2
    # The message as one line, whatever width the error box wraps it to.
    message = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())
    assert (
        "no rule named tone; the rules: direction, number, time, negation, antonym, entity, order, code"
        in message
    )
