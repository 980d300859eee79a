"""GET /metrics over real HTTP: Prometheus text with every family Déjà exports."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

FAMILIES = {
    "ai_requests": "counter",
    "ai_request_duration_seconds": "histogram",
    "ai_active_requests": "gauge",
    "deja_cache_lookups": "counter",
    "deja_cache_similarity": "histogram",
    "deja_embedding_seconds": "histogram",
    "deja_lookup_seconds": "histogram",
    "deja_upstream_seconds": "histogram",
    "deja_cost_usd": "counter",
    "deja_avoided_cost_usd": "counter",
    "deja_quota_rejections": "counter",
    "deja_upstream_retries": "counter",
    "deja_upstream_fallbacks": "counter",
    "deja_circuit_breaker_open": "gauge",
}


async def test_metrics_are_scraped_over_http(http: httpx.AsyncClient) -> None:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert response.headers["x-request-id"]
    families = {f.name: f.type for f in text_string_to_metric_families(response.text)}
    for name, kind in FAMILIES.items():
        assert families.get(name) == kind, name


async def test_metrics_stay_out_of_the_api_schema(http: httpx.AsyncClient) -> None:
    schema = (await http.get("/schema/openapi.json")).json()
    assert "/metrics" not in schema["paths"]
    assert "/health" in schema["paths"]
