"""The error bound's estimator: the fitted curve, its lower bound and the exploration rule."""

from __future__ import annotations

import random

import pytest

from app.cache.bound.estimator import CorrectnessModel, explore_probability, fit, for_entry
from app.cache.bound.judges import ExactJudge


def _labels(count: int, threshold: float, seed: int = 0) -> tuple[list[float], list[bool]]:
    """Scores uniform in [0.5, 1]; right above `threshold`, wrong below (with 2% noise)."""
    rng = random.Random(seed)
    scores = [rng.uniform(0.5, 1.0) for _ in range(count)]
    correct = [(s >= threshold) != (rng.random() < 0.02) for s in scores]
    return scores, correct


def test_without_labels_every_candidate_is_explored() -> None:
    # Nothing known: the prior is a coin flip at every score, so alpha = 0.5 * 0.5 (the median
    # of a coin flip, at confidence 0.5): more likely wrong than right, never served.
    assert CorrectnessModel.prior().lower_bound(0.99) == pytest.approx(0.25)
    assert explore_probability(CorrectnessModel.prior(), 0.99, 0.02) == 1.0


def test_serving_probability_spends_exactly_the_budget() -> None:
    # Where right answers are likely but not certain, serve just often enough that
    # P(serve) * P(wrong | served) = delta.
    model = fit(*_labels(2000, threshold=0.8))
    for score in (0.8, 0.82, 0.85):
        alpha = model.lower_bound(score)
        tau = explore_probability(model, score, 0.02)
        if 0.5 <= alpha < 0.98:
            assert (1 - tau) * (1 - alpha) == pytest.approx(0.02)


def test_a_learnt_curve_serves_high_scores_and_explores_low_ones() -> None:
    model = fit(*_labels(2000, threshold=0.8))
    assert model.point(0.95) > 0.95
    assert model.point(0.6) < 0.1
    assert explore_probability(model, 0.97, 0.02) == 0.0
    assert explore_probability(model, 0.6, 0.02) > 0.97


def test_the_lower_bound_tightens_with_more_labels() -> None:
    few = fit(*_labels(40, threshold=0.8))
    many = fit(*_labels(4000, threshold=0.8))
    assert few.lower_bound(0.95) < many.lower_bound(0.95)
    assert explore_probability(few, 0.95, 0.02) > explore_probability(many, 0.95, 0.02)


def test_wrong_answers_served_stay_within_delta_where_the_model_holds() -> None:
    # Simulate: labels come from the true curve; every request is served with 1 - tau.
    # The expected wrong-served rate sum((1 - tau) * (1 - p)) / n stays under delta.
    rng = random.Random(1)
    delta = 0.02
    scores, correct = _labels(300, threshold=0.85, seed=2)
    model = fit(scores, correct)
    expected_wrong = 0.0
    queries = [rng.uniform(0.5, 1.0) for _ in range(2000)]
    for score in queries:
        p_right = 0.98 if score >= 0.85 else 0.02
        expected_wrong += (1 - explore_probability(model, score, delta)) * (1 - p_right)
    assert expected_wrong / len(queries) <= delta


def test_an_entry_learns_against_the_tenant_curve() -> None:
    tenant = fit(*_labels(3000, threshold=0.8))
    # Without labels an entry has the tenant's curve.
    assert for_entry(tenant, [], [], spread=1.5) is tenant
    # This entry's look-alikes score high: wrong answers at 0.95 pull its curve down.
    once = for_entry(tenant, [0.95], [False], spread=1.5)
    twice = for_entry(tenant, [0.95, 0.96], [False, False], spread=1.5)
    assert twice.point(0.95) < once.point(0.95) < tenant.point(0.95)
    assert explore_probability(twice, 0.95, 0.02) > explore_probability(tenant, 0.95, 0.02)
    # Right answers never make an entry stricter than the tenant.
    right = for_entry(tenant, [0.95, 0.9, 0.97], [True, True, True], spread=1.5)
    assert explore_probability(right, 0.95, 0.02) <= explore_probability(tenant, 0.95, 0.02)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="length"):
        fit([0.9], [True, False])
    with pytest.raises(ValueError, match="length"):
        for_entry(CorrectnessModel.prior(), [0.9], [], spread=1.0)
    with pytest.raises(ValueError, match="max_error_rate"):
        explore_probability(CorrectnessModel.prior(), 0.9, 0.0)


async def test_the_exact_judge_compares_normalised_answers() -> None:
    judge = ExactJudge()
    assert await judge.same("q", "Use the  VPN portal.", "use the vpn portal")
    assert not await judge.same("q", "Use the VPN portal.", "Use the Okta portal.")
