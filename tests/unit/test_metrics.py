"""The metrics API, each test on a fresh registry; and the multiprocess exposition in a child process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from app.observability.metrics import OTHER, Metrics, PrometheusRouterEvents, prepare_multiprocess_dir
from app.upstream.breaker import BreakerState
from app.upstream.events import Outcome


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(registry, models=["gpt-4o", "gpt-4o-mini"])


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    sample = registry.get_sample_value(name, labels)
    return 0.0 if sample is None else sample


def test_observe_request_counts_by_model_and_status(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.observe_request("gpt-4o-mini", 200, "HIT", 0.004)  # as Outcome.cache_status says it
    metrics.observe_request("gpt-4o-mini", 200, "miss", 1.2)
    metrics.observe_request("gpt-4o-mini", 502, "error", 3.0)

    assert value(registry, "ai_requests_total", model="gpt-4o-mini", status="200") == 2
    assert value(registry, "ai_requests_total", model="gpt-4o-mini", status="502") == 1
    assert value(registry, "ai_request_duration_seconds_count", cache="hit") == 1
    assert value(registry, "ai_request_duration_seconds_bucket", cache="hit", le="0.005") == 1
    assert value(registry, "ai_request_duration_seconds_bucket", cache="miss", le="1.0") == 0


def test_track_active_goes_back_down_on_errors(metrics: Metrics, registry: CollectorRegistry) -> None:
    with metrics.track_active():
        assert value(registry, "ai_active_requests") == 1
    with pytest.raises(RuntimeError), metrics.track_active():
        raise RuntimeError("boom")
    assert value(registry, "ai_active_requests") == 0


def test_cache_lookup_and_similarity(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.cache_lookup("exact_hit", 1.0, 0.001)
    metrics.cache_lookup("semantic_hit", 0.93, 0.004)
    metrics.cache_lookup("miss", 0.71, 0.004)
    metrics.cache_lookup("miss", None, 0.003)  # an empty scope: no nearest candidate
    metrics.cache_lookup("bypass")

    for result, count in [("exact_hit", 1), ("semantic_hit", 1), ("miss", 2), ("bypass", 1)]:
        assert value(registry, "deja_cache_lookups_total", result=result) == count
    # Exact hits are always 1.0: not observed, so the histogram shows the semantic decisions only.
    assert value(registry, "deja_cache_similarity_count", result="exact_hit") == 0
    assert value(registry, "deja_cache_similarity_bucket", result="semantic_hit", le="0.94") == 1
    assert value(registry, "deja_cache_similarity_bucket", result="semantic_hit", le="0.92") == 0
    assert value(registry, "deja_cache_similarity_count", result="miss") == 1
    assert value(registry, "deja_lookup_seconds_count", result="miss") == 2
    assert value(registry, "deja_lookup_seconds_count", result="bypass") == 0


def test_time_embedding(metrics: Metrics, registry: CollectorRegistry) -> None:
    with metrics.time_embedding():
        pass
    assert value(registry, "deja_embedding_seconds_count") == 1


def test_money_is_converted_only_at_the_metric(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.add_cost("gpt-4o", Decimal("0.000150"))
    metrics.add_cost("gpt-4o", Decimal("0.000250"))
    metrics.add_cost("gpt-4o", Decimal(0))  # nothing to add: no series either
    metrics.add_avoided_cost("gpt-4o-mini", Decimal("0.0012"))

    assert value(registry, "deja_cost_usd_total", model="gpt-4o") == pytest.approx(0.0004)
    assert value(registry, "deja_avoided_cost_usd_total", model="gpt-4o-mini") == pytest.approx(0.0012)


def test_quota_rejections(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.quota_rejected("day", "requests")
    metrics.quota_rejected("month", "cost")
    assert value(registry, "deja_quota_rejections_total", period="day", limit="requests") == 1
    assert value(registry, "deja_quota_rejections_total", period="month", limit="cost") == 1


def test_only_configured_model_names_become_labels(registry: CollectorRegistry) -> None:
    metrics = Metrics(registry, models=["a"])
    metrics.model_label.allow(["b"])  # as start-up adds the price list's models
    for model in ["a", "b", "c", "another-tenants-secret-model", "a", "x" * 500]:
        metrics.observe_request(model, 200, "miss", 0.1)
    metrics.observe_request(None, 422, "error", 0.1)

    assert value(registry, "ai_requests_total", model="a", status="200") == 2
    assert value(registry, "ai_requests_total", model="b", status="200") == 1
    assert value(registry, "ai_requests_total", model=OTHER, status="200") == 3
    assert value(registry, "ai_requests_total", model="c", status="200") == 0
    assert value(registry, "ai_requests_total", model="unknown", status="422") == 1


def test_router_events(metrics: Metrics, registry: CollectorRegistry) -> None:
    events = PrometheusRouterEvents(metrics)
    events.attempt("openai", "gpt-4o", Outcome.SERVER_ERROR, 0.3)
    events.retry("openai", "gpt-4o", 1, Outcome.SERVER_ERROR, 0.25)
    events.attempt("openai", "gpt-4o", Outcome.TIMEOUT, 60.0)
    events.fallback("openai", "azure", "gpt-4o", Outcome.TIMEOUT)
    events.queued("azure", 5, 0.0)
    events.attempt("azure", "gpt-4o", Outcome.OK, 0.8)
    events.breaker_changed("openai", "gpt-4o", BreakerState.OPEN)

    labels = {"upstream": "openai", "model": "gpt-4o"}
    assert value(registry, "deja_upstream_seconds_count", **labels, outcome="server_error") == 1
    assert value(registry, "deja_upstream_seconds_count", **labels, outcome="timeout") == 1
    assert value(registry, "deja_upstream_seconds_count", upstream="azure", model="gpt-4o", outcome="ok") == 1
    assert value(registry, "deja_upstream_retries_total", upstream="openai") == 1
    assert value(registry, "deja_upstream_fallbacks_total", from_upstream="openai", to_upstream="azure") == 1
    assert value(registry, "deja_upstream_queue_seconds_count", upstream="azure") == 1
    assert value(registry, "deja_circuit_breaker_open", upstream="openai") == 1

    # One gauge per upstream: 1 while the breaker of any of its models is not closed.
    events.breaker_changed("openai", "o3", BreakerState.OPEN)
    events.breaker_changed("openai", "gpt-4o", BreakerState.HALF_OPEN)
    assert value(registry, "deja_circuit_breaker_open", upstream="openai") == 1
    events.breaker_changed("openai", "gpt-4o", BreakerState.CLOSED)
    assert value(registry, "deja_circuit_breaker_open", upstream="openai") == 1
    events.breaker_changed("openai", "o3", BreakerState.CLOSED)
    assert value(registry, "deja_circuit_breaker_open", upstream="openai") == 0


def test_prepare_multiprocess_dir_removes_old_files(tmp_path: Path) -> None:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    (directory / "counter_123.db").write_bytes(b"old")
    (directory / "keep.txt").write_text("not ours")
    assert prepare_multiprocess_dir(directory) == str(directory)
    assert sorted(p.name for p in directory.iterdir()) == ["keep.txt"]
    assert prepare_multiprocess_dir(tmp_path / "new" / "dir") == str(tmp_path / "new" / "dir")


WORKER = textwrap.dedent(
    """
    import sys
    from decimal import Decimal
    from app.observability import metrics
    metrics.METRICS.model_label.allow(["gpt-4o-mini"])  # as start-up does with the configured models
    metrics.observe_request("gpt-4o-mini", 200, "hit", 0.01)
    metrics.add_avoided_cost("gpt-4o-mini", Decimal("0.5"))
    metrics.PrometheusRouterEvents().breaker_changed("openai", "gpt-4o", metrics.BreakerState.OPEN)
    with metrics.track_active():
        if sys.argv[1] == "exit":
            metrics.worker_exiting()  # as a worker's lifespan ends: its live gauges go
    """
)
SCRAPE = "from app.observability import metrics; import sys; sys.stdout.write(metrics.exposition().decode())"


def test_multiprocess_mode_adds_up_the_workers(tmp_path: Path) -> None:
    """Two worker processes write; a third one (the scraped worker) sees their sum."""
    directory = prepare_multiprocess_dir(tmp_path / "prometheus")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": directory}
    for mode in ("stay", "exit"):
        subprocess.run([sys.executable, "-c", WORKER, mode], env=env, check=True, timeout=120)
    text = subprocess.run(
        [sys.executable, "-c", SCRAPE], env=env, check=True, timeout=120, capture_output=True, text=True
    ).stdout

    assert 'ai_requests_total{model="gpt-4o-mini",status="200"} 2.0' in text
    assert 'deja_avoided_cost_usd_total{model="gpt-4o-mini"} 1.0' in text
    # livemax: the process that left removed its series; the other still says open.
    assert 'deja_circuit_breaker_open{upstream="openai"} 1.0' in text
    assert "ai_active_requests 0.0" in text
