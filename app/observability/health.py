"""Liveness and readiness, for GET and for HEAD (what many load balancers' checks send)."""

from __future__ import annotations

from typing import Any

from litestar import Response, get, head
from litestar.di import NamedDependency

from app.db.migrate import head_revision, schema_revision
from app.problems import problem
from app.services import Services


@get("/health", summary="Liveness: the process answers", tags=["health"], include_in_schema=True)
async def health() -> dict[str, str]:
    return {"status": "ok"}


@head("/health", summary="Liveness, status only", tags=["health"])
async def health_head() -> None:
    return None


@get("/ready", summary="Readiness: database reachable and schema at head", tags=["health"])
async def ready(services: NamedDependency[Services]) -> Response[dict[str, Any]]:
    return await _readiness(services)


@head("/ready", summary="Readiness, status only", tags=["health"])
async def ready_head(services: NamedDependency[Services]) -> Response[None]:
    return Response(None, status_code=(await _readiness(services)).status_code)


async def _readiness(services: Services) -> Response[dict[str, Any]]:
    head_rev = head_revision()
    try:
        current = await schema_revision(services.engine)
    except Exception as exc:  # any failure to reach the database means "not ready"
        return problem(503, "Not ready", f"Database unreachable: {type(exc).__name__}", slug="not-ready")
    if current != head_rev:
        return problem(
            503,
            "Not ready",
            f"Schema at {current or 'nothing'}, expected {head_rev}; run `deja migrate`.",
            slug="not-ready",
            extra={"schema": current, "expected_schema": head_rev},
        )
    return Response({"status": "ready", "database": "ok", "schema": current})
