"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.di import NamedDependency

from app.db.migrate import head_revision, schema_revision
from app.problems import problem
from app.services import Services


@get("/health", summary="Liveness: the process answers", tags=["health"], include_in_schema=True)
async def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/ready", summary="Readiness: database reachable and schema at head", tags=["health"])
async def ready(services: NamedDependency[Services]) -> Response[dict[str, Any]]:
    head = head_revision()
    try:
        current = await schema_revision(services.engine)
    except Exception as exc:  # any failure to reach the database means "not ready"
        return problem(503, "Not ready", f"Database unreachable: {type(exc).__name__}", slug="not-ready")
    if current != head:
        return problem(
            503,
            "Not ready",
            f"Schema at {current or 'nothing'}, expected {head}; run `deja migrate`.",
            slug="not-ready",
            extra={"schema": current, "expected_schema": head},
        )
    return Response({"status": "ready", "database": "ok", "schema": current})
