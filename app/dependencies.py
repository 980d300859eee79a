"""Dependencies shared by the routes of every domain: services, caller, sessions.

Litestar resolves the dependencies a handler needs depth by depth, and runs those of one depth
concurrently in an anyio task group, a group and a task per dependency on every request
(litestar-org/litestar#4563). For two cheap providers side by side that was a fifth of an exact
lookup's server CPU (`scripts/exact_hit_cost.py`, docs/benchmarks.md). So on the hot routes (a
lookup, a chat completion) each provider depends on the one before, one per depth: `services`,
then `principal`, `tenant`, `policy`; a handler reaches a domain's service through `services`
(`services.cache`, `services.pipeline`) instead of a provider of its own beside `principal`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard
from sqlalchemy.ext.asyncio import AsyncSession

from app.bounds import only_authorization
from app.cache.policy import TenantCachePolicy, parse_policy
from app.db.engine import enter_system, enter_tenant
from app.errors import BadRequest, Forbidden
from app.services import Services
from app.tenants.auth import Principal
from app.tenants.models import KeyRole


def provide_services(state: State) -> Services:
    services: Services = state.services
    return services


async def provide_principal(
    request: Request[Any, Any, Any], services: NamedDependency[Services]
) -> Principal:
    return await services.authenticator.authenticate(
        only_authorization(request.headers.getall("authorization", []))
    )


async def provide_tenant(principal: NamedDependency[Principal]) -> Principal:
    principal.require_tenant()
    return principal


async def provide_admin(principal: NamedDependency[Principal]) -> Principal:
    if principal.role != KeyRole.ADMIN:
        raise Forbidden("This route needs an admin key.")
    return principal


def provide_policy(tenant: NamedDependency[Principal]) -> TenantCachePolicy:
    return parse_policy(tenant.tenant_settings)


async def provide_tenant_session(
    services: NamedDependency[Services], tenant: NamedDependency[Principal]
) -> AsyncGenerator[AsyncSession, None]:
    """One transaction per request, in which only the caller's rows are visible."""
    async with services.sessionmaker() as session, session.begin():
        await enter_tenant(session, tenant.require_tenant())
        yield session


async def provide_admin_session(
    services: NamedDependency[Services], admin: NamedDependency[Principal]
) -> AsyncGenerator[AsyncSession, None]:
    """One transaction per admin request, across tenants."""
    async with services.sessionmaker() as session, session.begin():
        await enter_system(session)
        yield session


BASE_DEPENDENCIES = {
    "services": Provide(provide_services, sync_to_thread=False),
    "principal": Provide(provide_principal),
}
TENANT_DEPENDENCIES = {
    "tenant": Provide(provide_tenant),
    "session": Provide(provide_tenant_session),
    "policy": Provide(provide_policy, sync_to_thread=False),
}
ADMIN_DEPENDENCIES = {"admin": Provide(provide_admin), "session": Provide(provide_admin_session)}


def known_query(*names: str, times: tuple[str, ...] = (), numbers: tuple[str, ...] = ()) -> Guard:
    """A guard refusing query parameters other than `names`, and one given twice (400), so that a
    misspelt filter on a destructive route (`DELETE …/cache?modle=x`) is an error, not a purge of
    everything, and `?limit=1&limit=2` does not pick one for the client. The parameters named in
    `times` must be ISO 8601 times: the decoder behind them also reads a bare number, as seconds
    since 1970 (`?since=1`), which nobody means. Those in `numbers` must be whole numbers in
    ASCII digits: the decoder also reads `1e3`, `10.0` and other digits than ASCII's."""
    allowed = frozenset(names)

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        query = connection.query_params
        unknown = sorted(set(query) - allowed)
        if unknown:
            expected = (
                f"; this route takes {', '.join(sorted(allowed))}" if allowed else "; this route takes none"
            )
            raise BadRequest(
                f"Unknown query parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}{expected}.",
                extra={"unknown_parameters": unknown},
            )
        repeated = sorted(name for name in query if len(query.getall(name)) > 1)
        if repeated:
            raise BadRequest(
                f"Query parameter{'s' if len(repeated) > 1 else ''} {', '.join(repeated)} given more than once.",
                extra={"repeated_parameters": repeated},
            )
        for name in numbers:
            value = query.get(name)
            if value is not None and not (value.isascii() and value.isdigit()):
                raise BadRequest(
                    f"Query parameter {name} must be a whole number in digits, not {value[:40]!r}."
                )
        for name in times:
            value = query.get(name)
            if value is None:
                continue
            try:
                datetime.fromisoformat(value)
            except ValueError:
                raise BadRequest(
                    f"Query parameter {name} must be an ISO 8601 time (2026-12-01T09:30:00Z), not {value[:40]!r}."
                ) from None

    return guard
