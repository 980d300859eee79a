"""A distilled first pass, loaded as the service loads it: only beside the cross-encoder it was
distilled from. The shipped cross-encoder stands in as its own first pass (the wiring is under test,
not a student's quality)."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import uuid
from pathlib import Path

import pytest

from app.cache.onnx_models import DEFAULT_VERIFIER_DIR
from app.cache.service import load_cross_encoder, load_first_pass
from app.cache.verifier import FIRST_PASS, Candidate, FirstPassBand, VerifierPolicy, build_verifier
from app.settings import CacheSettings
from tests.integration.test_cache_api import NOTES

QUERY = "how do I reset my vpn password"
# Worded apart enough to need a model: "How can I ..." would be the same request unread (`folded`).
PARAPHRASE = "I need to reset the password for my VPN"


def _first_pass_dir(tmp_path: Path, cross_encoder_sha256: str) -> Path:
    directory = tmp_path / "first-pass"
    directory.mkdir()
    for name in ("model.onnx", "tokenizer.json"):
        shutil.copyfile(DEFAULT_VERIFIER_DIR / name, directory / name)
    band = {"cross_encoder_sha256": cross_encoder_sha256, "reject_below": 0.05, "serve_above": 0.8}
    (directory / "band.json").write_text(json.dumps(band), encoding="utf-8")
    return directory


def test_a_first_pass_beside_its_cross_encoder_settles_what_it_is_sure_of(tmp_path: Path) -> None:
    sha = hashlib.sha256((DEFAULT_VERIFIER_DIR / "model.onnx").read_bytes()).hexdigest()
    settings = CacheSettings(verifier_first_pass_dir=_first_pass_dir(tmp_path, sha))
    cross_encoder = load_cross_encoder(settings)
    stage = load_first_pass(settings, cross_encoder)
    assert stage is not None
    assert stage.band == FirstPassBand(reject_below=0.05, serve_above=0.8)
    verdict = build_verifier(cross_encoder, first_pass=stage).decide(
        QUERY, [Candidate(uuid.uuid4(), PARAPHRASE, 0.93)], VerifierPolicy()
    )
    assert verdict.hit
    assert verdict.reports[0].settled_by == FIRST_PASS
    assert set(verdict.reports[0].scores) == {"similarity", FIRST_PASS}


def test_a_first_pass_leaves_pairs_over_one_pasted_text_to_their_own_cross_encoder(tmp_path: Path) -> None:
    sha = hashlib.sha256((DEFAULT_VERIFIER_DIR / "model.onnx").read_bytes()).hexdigest()
    settings = CacheSettings(verifier_first_pass_dir=_first_pass_dir(tmp_path, sha))
    cross_encoder = load_cross_encoder(settings)
    stage = load_first_pass(settings, cross_encoder)
    assert stage is not None
    stored = f"Write a two-line summary of these notes for the executive team: {NOTES}"
    query = f"{NOTES}\nCondense this for the executives in two lines."
    verdict = build_verifier(cross_encoder, first_pass=stage).decide(
        query, [Candidate(uuid.uuid4(), stored, 0.96)], VerifierPolicy()
    )
    # The first pass (here the general cross-encoder, which scores this rewording 0.28 and would
    # refuse it) does not read the pair: the cross-encoder for pasted texts does, and serves it.
    assert verdict.hit
    assert verdict.reports[0].settled_by != FIRST_PASS
    assert FIRST_PASS not in verdict.reports[0].scores


def test_a_first_pass_distilled_from_another_cross_encoder_is_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = _first_pass_dir(tmp_path, "0" * 64)
    settings = CacheSettings(verifier_first_pass_dir=directory)
    with caplog.at_level(logging.WARNING):
        assert load_first_pass(settings) is None
    assert "the cross-encoder reads every pair" in caplog.text
    # A band.json that is not one: not used either.
    (directory / "band.json").write_text('{"reject_below": 0.1}', encoding="utf-8")
    assert load_first_pass(settings) is None
    # None configured (none is shipped): none used, nothing said.
    caplog.clear()
    assert load_first_pass(CacheSettings()) is None
    assert caplog.text == ""
