"""How likely a stored answer is right for a new prompt, learned from labels, and the
serve-or-explore rule that keeps the chance of a wrong answer within a bound.

The method follows vCache (arXiv 2502.03771): the probability that a candidate's answer is
right is modelled as a logistic curve of the hit decision's score, the curve is learnt from
labelled decisions, and a request is served from the cache with a probability chosen so that
serving a wrong answer stays within `delta`:

    P(wrong answer served) = P(serve) * P(wrong | served) <= (1 - tau) * (1 - alpha) = delta

where `alpha` is a lower confidence bound on the probability of being right at this score and
`tau` the probability of sending the request to the model instead (exploring). The
implementation here is the project's own: the curve is fitted as a Bayesian logistic
regression (Gaussian prior, Laplace approximation), on the log-odds of the score, and `alpha`
is taken over a grid of confidence levels eps, as `(1 - eps) * sigmoid(lower eps-quantile of
the log-odds)`: with posterior probability at least 1 - eps the true curve is above the
quantile, so the expected probability of being right is at least alpha.

Pure: numpy only, no I/O. docs/error-bound.md says what this does and does not guarantee.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

# Scores are probabilities (cross-encoder) or cosines; the curve is fitted on their log-odds,
# clipped so that a score of exactly 0 or 1 stays finite.
_SCORE_CLIP = 1e-4
# Confidence levels eps tried for the lower bound; the best (largest alpha) is used.
_EPS_GRID = np.linspace(0.005, 0.5, 100)
_Z = np.array([NormalDist().inv_cdf(1.0 - eps) for eps in _EPS_GRID])
# The prior before any label: intercept and slope centred on 0 (a coin flip at every score),
# wide enough that a few dozen labels dominate it.
_PRIOR_SD = 4.0
# Below this lower bound on being right, a candidate is never served (explore_probability).
MIN_SERVED_ALPHA = 0.5


def feature(score: float) -> float:
    """The log-odds of a score in [0, 1]."""
    p = min(max(score, _SCORE_CLIP), 1.0 - _SCORE_CLIP)
    return math.log(p / (1.0 - p))


@dataclass(frozen=True, slots=True)
class CorrectnessModel:
    """P(right | score) = sigmoid(intercept + slope * logit(score)), with the posterior's
    mean and covariance of (intercept, slope) and the number of labels behind it."""

    mean: npt.NDArray[np.float64]
    cov: npt.NDArray[np.float64]
    labels: int

    @classmethod
    def prior(cls) -> CorrectnessModel:
        return cls(np.zeros(2), np.eye(2) * _PRIOR_SD**2, 0)

    def log_odds(self, score: float) -> tuple[float, float]:
        """Posterior mean and standard deviation of the log-odds of being right at `score`."""
        x = np.array([1.0, feature(score)])
        return float(x @ self.mean), math.sqrt(max(float(x @ self.cov @ x), 0.0))

    def point(self, score: float) -> float:
        """The fitted probability of being right at `score` (no confidence margin)."""
        return _sigmoid(self.log_odds(score)[0])

    def lower_bound(self, score: float) -> float:
        """alpha: a lower bound on the expected probability of being right at `score`."""
        mean, sd = self.log_odds(score)
        bounds = (1.0 - _EPS_GRID) / (1.0 + np.exp(-(mean - _Z * sd)))
        return float(bounds.max())


def fit(
    scores: Sequence[float],
    correct: Sequence[bool],
    prior: CorrectnessModel | None = None,
    *,
    iterations: int = 50,
) -> CorrectnessModel:
    """The posterior after `prior` has seen these labels (Newton's method to the mode, then the
    inverse Hessian there as covariance: the Laplace approximation)."""
    prior = prior or CorrectnessModel.prior()
    if len(scores) != len(correct):
        raise ValueError("scores and labels differ in length")
    if not scores:
        return prior
    design = np.column_stack([np.ones(len(scores)), [feature(s) for s in scores]])
    y = np.asarray(correct, dtype=np.float64)
    precision = np.linalg.inv(prior.cov)

    def log_posterior(beta: npt.NDArray[np.float64]) -> float:
        eta = design @ beta
        offset = beta - prior.mean
        return float(y @ eta - np.logaddexp(0.0, eta).sum() - 0.5 * offset @ precision @ offset)

    def hessian_at(beta: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        return design.T @ (design * (p * (1.0 - p))[:, None]) + precision

    beta = prior.mean.copy()
    current = log_posterior(beta)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        gradient = design.T @ (y - p) - precision @ (beta - prior.mean)
        step = np.linalg.solve(hessian_at(beta), gradient)
        # Damped: far from the mode a full Newton step on a logistic likelihood can overshoot.
        size = 1.0
        while size > 1e-6 and log_posterior(beta + size * step) < current:
            size /= 2
        beta = beta + size * step
        current = log_posterior(beta)
        if float(np.abs(size * step).max()) < 1e-8:
            break
    covariance = np.asarray(np.linalg.inv(hessian_at(beta)), dtype=np.float64)
    return CorrectnessModel(beta, covariance, prior.labels + len(scores))


def for_entry(
    tenant: CorrectnessModel, scores: Sequence[float], correct: Sequence[bool], *, spread: float
) -> CorrectnessModel:
    """An entry's curve: the tenant's, shifted by an offset b of the entry's own (its prompt may
    have look-alikes that score high, or none), with prior b ~ N(0, spread^2) and the posterior
    mean taken from the entry's labels. The tenant's curve is already the average over entries,
    so without labels b = 0 and the entry gets the tenant's curve and uncertainty unchanged; each
    label moves b, shrunk toward zero, so no label ever widens an entry's interval by itself."""
    if len(scores) != len(correct):
        raise ValueError("scores and labels differ in length")
    if not scores:
        return tenant
    eta = np.array([tenant.mean[0] + tenant.mean[1] * feature(s) for s in scores])
    y = np.asarray(correct, dtype=np.float64)
    precision = 1.0 / spread**2

    def log_posterior(b: float) -> float:
        return float(y @ (eta + b) - np.logaddexp(0.0, eta + b).sum() - 0.5 * precision * b * b)

    offset, current = 0.0, log_posterior(0.0)
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(eta + offset)))
        step = float((y - p).sum() - precision * offset) / float((p * (1.0 - p)).sum() + precision)
        size = 1.0
        while size > 1e-6 and log_posterior(offset + size * step) < current:
            size /= 2
        offset += size * step
        current = log_posterior(offset)
        if abs(size * step) < 1e-9:
            break
    return CorrectnessModel(tenant.mean + np.array([offset, 0.0]), tenant.cov, tenant.labels + len(scores))


def explore_probability(model: CorrectnessModel, score: float, max_error_rate: float) -> float:
    """tau: the probability of asking the model instead of serving, so that the probability of
    serving a wrong answer, (1 - tau) * (1 - alpha), is at most `max_error_rate`.

    A candidate more likely wrong than right (alpha below one half) is never served: the bound
    would allow it now and then, but such a hit is mostly a wrong answer, and asking the model
    is always within the bound."""
    if not 0.0 < max_error_rate < 1.0:
        raise ValueError("max_error_rate must be between 0 and 1")
    alpha = model.lower_bound(score)
    if alpha < MIN_SERVED_ALPHA:
        return 1.0
    return min(max(1.0 - max_error_rate / max(1.0 - alpha, 1e-12), 0.0), 1.0)


def _sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-value)) if value >= 0 else math.exp(value) / (1.0 + math.exp(value))
