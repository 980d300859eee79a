"""The dashboard at /ui/: server-rendered pages over the same services as the APIs.

Signing in takes the admin token or an API key once, in a form; after that a signed cookie
carries the session (app.ui.session). Every page runs in one transaction in the viewer's
row-level security context (system for an admin, the tenant's own otherwise), so a tenant's
session cannot read another tenant's rows. Every form carries a CSRF token; every action is
audited under the viewer's actor, as the admin API does.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import msgspec
import structlog
from litestar import Controller, Request, Response, Router, get, post
from litestar.background_tasks import BackgroundTask
from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.params import Body, FromPath, FromQuery, QueryParameter
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_303_SEE_OTHER
from litestar.template.config import TemplateConfig
from litestar.types import Guard
from sqlalchemy.ext.asyncio import AsyncSession

from app.admin.audit import AuditRepository
from app.bounds import MAX_BIGINT, query_text, time_text, whole_number
from app.cache.entries import EntryActions
from app.cache.policy import TenantCachePolicy, parse_policy
from app.cache.purge import CachePurge, PurgeFilter, count_matching
from app.cache.repository import CacheRepository
from app.cache.scope import MAX_NAMESPACE_INPUT, namespace_name
from app.db.engine import enter_system, enter_tenant
from app.errors import BadRequest, DejaError, Forbidden, NotFound, Unauthorized
from app.ledger.quotas import QuotaRepository
from app.ledger.rollup import roll_up_for_readers
from app.services import Services
from app.settings import Settings
from app.tenants.auth import Principal
from app.tenants.models import Tenant
from app.tenants.service import TenantService
from app.tenants.stats import tenant_stats
from app.ui import quality
from app.ui.charts import Series, bar_chart
from app.ui.repository import DETAIL_CHARS, Activity, Bucket, DashboardRepository, EntrySearch
from app.ui.session import (
    COOKIE_NAME,
    COOKIE_PATH,
    CSRF_COOKIE_NAME,
    LoginRequired,
    SessionSigner,
    SignInThrottle,
    sign_out,
    signed_in,
    tenant_scope,
)

HERE = Path(__file__).parent
log = structlog.stdlib.get_logger("deja.ui")
FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
MAX_AGE_DAYS = 100 * 365
CACHE_STATUSES = ("hit", "miss", "bypass", "error")
REVIEW_PAGE = 20  # flagged entries per review page, newest first; each one reviewed brings up the next
# Pages render what they read: no script runs but our own file, nothing loads from elsewhere,
# and no other site may frame a page to trick a click.
SECURITY_HEADERS = [
    ResponseHeader(
        name="Content-Security-Policy",
        value="default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="no-referrer"),
    ResponseHeader(name="Cache-Control", value="no-store"),
]

TEMPLATES = TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine)


class LoginForm(msgspec.Struct):
    token: Annotated[str, msgspec.Meta(max_length=500)] = ""


class KeyForm(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""


class PurgeForm(msgspec.Struct, forbid_unknown_fields=True):
    """A filter it does not know is a 400, as in the admin API: a misspelt one ("modle") would
    otherwise be left out of the filter, and the purge would take every entry of the tenant."""

    tenant: uuid.UUID
    csrf_token: str | None = msgspec.field(default=None, name="_csrf_token")  # the middleware's
    model: Annotated[str, msgspec.Meta(max_length=200)] = ""
    namespace: Annotated[str, msgspec.Meta(max_length=MAX_NAMESPACE_INPUT)] = ""
    older_than_days: Annotated[int, msgspec.Meta(ge=0, le=MAX_AGE_DAYS)] | None = None
    # Fixed when the count was shown (ISO 8601 text, never a bare number).
    created_before: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class NextForm(msgspec.Struct):
    next: Annotated[str, msgspec.Meta(max_length=20)] = "entries"


def page(request: Request[Any, Any, Any], name: str, status_code: int = 200, **context: Any) -> Template:
    """A template with what every page shows: the viewer, the active menu entry."""
    viewer: Principal | None = request.scope.get("state", {}).get("ui_viewer")
    return Template(
        template_name=name,
        context={"viewer": viewer, **context},
        status_code=status_code,
    )


def redirect(path: str) -> Redirect:
    return Redirect(path, status_code=HTTP_303_SEE_OTHER)


def clean_text(value: str | None, name: str) -> str | None:
    """Blank means no filter; text Postgres cannot hold is a 400, not a failed query."""
    if value is None or not value.strip():
        return None
    return query_text(value.strip(), name)


def namespace_filter(value: str | None) -> str | None:
    """A namespace to filter by, as entries are filed under it (`namespace_name`); blank: none."""
    text = clean_text(value, "namespace")
    return None if text is None else namespace_name(text)


def days(value: str | None) -> int | None:
    """An age filter in days from a form field: blank means none; anything else must be a count."""
    if value is None or not value.strip():
        return None
    count = whole_number(value, 0, MAX_AGE_DAYS)  # "²" is a digit to str.isdigit(), not to int()
    if count is None:
        raise BadRequest(f"'older_than_days' must be a whole number of days from 0 to {MAX_AGE_DAYS}.")
    return count


def require_admin(viewer: Principal) -> None:
    if viewer.role != "admin":
        raise Forbidden("This page needs the admin token or an admin key.")


# `opt` of the admin-only pages and actions: `admin_pages` refuses every other viewer a 403 before
# their parameters are read, so that a tenant's session gets the 403 whatever it sends.
ADMIN_ONLY = {"admin_only": True}


async def viewer_of(connection: ASGIConnection[Any, Any, Any, Any], signer: SessionSigner) -> Principal:
    """The signed-in viewer, resolved once per request (by `admin_pages` or by the page)."""
    state = connection.scope.setdefault("state", {})
    viewer: Principal | None = state.get("ui_viewer")
    if viewer is None:
        viewer = await signed_in(connection, connection.app.state.services, signer)
        state["ui_viewer"] = viewer
    return viewer


def admin_pages(signer: SessionSigner) -> Guard:
    """A guard on every page: those marked `ADMIN_ONLY` are a 403 for a tenant's session (the
    sign-in page for no session), before Litestar reads and checks their parameters."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        if handler.opt.get("admin_only"):
            require_admin(await viewer_of(connection, signer))

    return guard


def age_cutoff(older_than_days: int | None) -> datetime | None:
    return None if older_than_days is None else datetime.now(UTC) - timedelta(days=older_than_days)


async def provide_db(
    services: NamedDependency[Services], viewer: NamedDependency[Principal]
) -> AsyncGenerator[AsyncSession, None]:
    """One transaction per page in the viewer's row-level security context."""
    async with services.sessionmaker() as session, session.begin():
        if viewer.tenant_id is not None:
            await enter_tenant(session, viewer.tenant_id)
        else:
            await enter_system(session)
        yield session


async def provide_viewer(
    request: Request[Any, Any, Any], ui_signer: NamedDependency[SessionSigner]
) -> Principal:
    return await viewer_of(request, ui_signer)


async def live_tenant(db: AsyncSession, viewer: Principal, tenant_id: uuid.UUID) -> Tenant:
    """A live tenant, as the admin API reads it (404 when unknown or deleted)."""
    return await TenantService(db, viewer.actor).get(tenant_id)


async def tenant_choices(db: AsyncSession, viewer: Principal) -> list[Tenant]:
    return list(await TenantService(db, viewer.actor).list()) if viewer.role == "admin" else []


def buckets(bucket: Bucket, count: int) -> list[datetime]:
    """The starts of the last `count` hours or days (UTC), the current one last."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    step = timedelta(hours=1)
    if bucket == "day":
        now, step = now.replace(hour=0), timedelta(days=1)
    return [now - step * (count - 1 - i) for i in range(count)]


async def activity(
    dashboard: DashboardRepository, tenant_id: uuid.UUID | None, bucket: Bucket, count: int
) -> list[Activity]:
    """Every bucket of the window, those without requests too, so the charts keep their time axis."""
    starts = buckets(bucket, count)
    found = {a.start: a for a in await dashboard.activity(tenant_id, starts[0], bucket)}
    return [found.get(start) or Activity.none(start) for start in starts]


def activity_charts(rows: list[Activity], bucket: str) -> list[Any]:
    fmt = "%H:00" if bucket == "hour" else "%m-%d"
    labels = [r.start.strftime(fmt) for r in rows]
    every = 6 if bucket == "hour" else 5
    return [
        bar_chart(
            f"Requests by {bucket}",
            labels,
            [
                Series("exact hits", "exact", [r.exact_hits for r in rows]),
                Series("semantic hits", "semantic", [r.semantic_hits for r in rows]),
                Series("misses", "miss", [r.misses for r in rows]),
                Series("bypasses", "bypass", [r.bypasses for r in rows]),
                Series("errors", "error", [r.errors for r in rows]),
            ],
            label_every=every,
        ),
        bar_chart(
            f"Spend against avoided cost by {bucket} (USD)",
            labels,
            [
                Series("spend", "spend", [float(r.cost_usd) for r in rows]),
                Series("avoided", "avoided", [float(r.avoided_cost_usd) for r in rows]),
            ],
            stacked=False,
            label_every=every,
        ),
        bar_chart(
            f"Mean latency of hits and misses by {bucket} (ms)",
            labels,
            [
                Series("hits", "exact", [round(r.hit_latency_ms or 0.0, 1) for r in rows]),
                Series("misses", "miss", [round(r.miss_latency_ms or 0.0, 1) for r in rows]),
            ],
            unit=" ms",
            stacked=False,
            label_every=every,
        ),
    ]


# Sign-in and sign-out: no session needed.


@get("/", include_in_schema=False)
async def home() -> Redirect:
    return redirect("/ui/overview")


@get("/login", include_in_schema=False)
async def login_page(request: Request[Any, Any, Any]) -> Template:
    return page(request, "login.html", error=None)


@post("/login", include_in_schema=False, status_code=HTTP_303_SEE_OTHER)
async def login(
    request: Request[Any, Any, Any],
    data: Annotated[LoginForm, FORM],
    services: NamedDependency[Services],
    ui_signer: NamedDependency[SessionSigner],
    ui_throttle: NamedDependency[SignInThrottle],
) -> Response[Any]:
    client = request.client.host if request.client is not None else "unknown"
    if (wait_s := ui_throttle.wait_s(client)) > 0:
        retry = str(math.ceil(wait_s))
        error = f"Too many failed sign-ins from this address; try again in {retry} s."
        refused = page(request, "login.html", status_code=429, error=error)
        refused.headers["Retry-After"] = retry
        return refused
    token = data.token.strip()
    try:
        principal = await services.authenticator.authenticate(f"Bearer {token}")
    except Unauthorized:
        ui_throttle.failed(client)
        log.warning("dashboard sign-in refused", client=client)  # never what was typed
        return page(request, "login.html", status_code=401, error="That token or key is not valid.")
    response = redirect("/ui/overview")
    response.set_cookie(ui_signer.cookie(ui_signer.payload_for(principal, token)))
    return response


@post("/logout", include_in_schema=False, status_code=HTTP_303_SEE_OTHER)
async def logout(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    ui_signer: NamedDependency[SessionSigner],
) -> Redirect:
    # Ended where it is checked, not only in this browser: a copy of the cookie signs no one in.
    await sign_out(ui_signer, services.sessionmaker, request.cookies.get(COOKIE_NAME))
    response = redirect("/ui/login")
    response.set_cookie(ui_signer.cleared_cookie())
    return response


PAGE_DEPENDENCIES = {"viewer": Provide(provide_viewer), "db": Provide(provide_db)}


class DashboardController(Controller):
    """Every page behind the sign-in."""

    path = "/"
    dependencies = PAGE_DEPENDENCIES

    # Overview

    @get("/overview", include_in_schema=False)
    async def overview(
        self,
        request: Request[Any, Any, Any],
        viewer: NamedDependency[Principal],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[Services],
        tenant: FromQuery[uuid.UUID | None] = None,
    ) -> Template:
        scope = tenant_scope(viewer, tenant)
        # The closed hours go into the rollup first (system context: it serves every tenant).
        await roll_up_for_readers(services.sessionmaker)
        dashboard = DashboardRepository(db)
        # The figures of GET /admin/stats; a tenant's session sees only its own row anyway.
        stats = await tenant_stats(db, tenant_id=scope)
        hourly = await activity(dashboard, scope, "hour", 48)
        daily = await activity(dashboard, scope, "day", 30)
        return page(
            request,
            "overview.html",
            active="overview",
            stats=stats,
            tenant_id=scope,
            tenants=await tenant_choices(db, viewer),
            hourly=hourly,
            daily=daily,
            charts=activity_charts(hourly, "hour") + activity_charts(daily, "day"),
            latency=await dashboard.latency(scope, hourly[-24].start),
        )

    # Tenants (admin)

    @get("/tenants", include_in_schema=False, opt=ADMIN_ONLY)
    async def tenants(
        self,
        request: Request[Any, Any, Any],
        viewer: NamedDependency[Principal],
        db: NamedDependency[AsyncSession],
    ) -> Template:
        require_admin(viewer)
        now = datetime.now(UTC)
        keys = await DashboardRepository(db).key_counts()
        rows = [
            {
                "tenant": tenant,
                "usage": await QuotaRepository(db).usage(tenant.id, now),
                "live_keys": keys.get(tenant.id, (0, 0))[0],
                "revoked_keys": keys.get(tenant.id, (0, 0))[1],
            }
            for tenant in await TenantService(db, viewer.actor).list()
        ]
        return page(request, "tenants.html", active="tenants", rows=rows)

    @get("/tenants/{tenant_id:uuid}", include_in_schema=False, opt=ADMIN_ONLY)
    async def tenant(
        self,
        request: Request[Any, Any, Any],
        tenant_id: FromPath[uuid.UUID],
        viewer: NamedDependency[Principal],
        db: NamedDependency[AsyncSession],
    ) -> Template:
        require_admin(viewer)
        return await self._tenant_page(request, db, viewer, tenant_id, issued=None)

    @post("/tenants/{tenant_id:uuid}/keys", include_in_schema=False, status_code=200, opt=ADMIN_ONLY)
    async def issue_key(
        self,
        request: Request[Any, Any, Any],
        tenant_id: FromPath[uuid.UUID],
        data: Annotated[KeyForm, FORM],
        viewer: NamedDependency[Principal],
        db: NamedDependency[AsyncSession],
    ) -> Template:
        """Issue a key and show it once, on this page (never in a URL)."""
        require_admin(viewer)
        # POST /admin/tenants/{id}/keys: the one service checks the tenant and writes the audit entry.
        issued = await TenantService(db, viewer.actor).issue_key(
            tenant_id, name=clean_text(data.name, "name")
        )
        return await self._tenant_page(request, db, viewer, tenant_id, issued=issued.new.key)

    @post(
        "/keys/{key_id:uuid}/revoke", include_in_schema=False, status_code=HTTP_303_SEE_OTHER, opt=ADMIN_ONLY
    )
    async def revoke_key(
        self,
        key_id: FromPath[uuid.UUID],
        viewer: NamedDependency[Principal],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[Services],
    ) -> Redirect:
        require_admin(viewer)
        # DELETE /admin/keys/{id}: the same service, audited the same way.
        key = await TenantService(db, viewer.actor).revoke_key(key_id)
        # As the admin API does: forget remembered keys now and once the revocation committed.
        services.authenticator.forget()
        return Redirect(
            f"/ui/tenants/{key.tenant_id}" if key.tenant_id is not None else "/ui/tenants",
            status_code=HTTP_303_SEE_OTHER,
            background=BackgroundTask(services.authenticator.forget),
        )

    async def _tenant_page(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        viewer: Principal,
        tenant_id: uuid.UUID,
        *,
        issued: str | None,
    ) -> Template:
        tenants = TenantService(db, viewer.actor)
        tenant = await tenants.get(tenant_id)
        return page(
            request,
            "tenant.html",
            active="tenants",
            tenant=tenant,
            policy=parse_policy(tenant.settings),
            usage=await QuotaRepository(db).usage(tenant.id, datetime.now(UTC)),
            keys=await tenants.list_keys(tenant.id),
            issued=issued,
        )

    # Entries

    @get("/entries", include_in_schema=False)
    async def entries(
        self,
        request: Request[Any, Any, Any],
        viewer: NamedDependency[Principal],
        db: NamedDependency[AsyncSession],
        tenant: FromQuery[uuid.UUID | None] = None,
        q: Annotated[str | None, QueryParameter(max_length=500)] = None,
        namespace: Annotated[str | None, QueryParameter(max_length=MAX_NAMESPACE_INPUT)] = None,
        model: Annotated[str | None, QueryParameter(max_length=200)] = None,
        older_than_days: Annotated[str | None, QueryParameter(max_length=10)] = None,
    ) -> Template:
        scope = tenant_scope(viewer, tenant)
        age = days(older_than_days)
        search = EntrySearch(
            tenant_id=scope,
            text=clean_text(q, "q"),
            namespace=namespace_filter(namespace),
            model=clean_text(model, "model"),
            created_before=age_cutoff(age),
        )
        filters = {
            "q": search.text,
            "namespace": search.namespace,
            "model": search.model,
            "older_than_days": age,
        }
        return page(
            request,
            "entries.html",
            active="entries",
            entries=await DashboardRepository(db).entries(search),
            filters=filters,
            tenant_id=scope,
            tenants=await tenant_choices(db, viewer),
        )

    @get("/entries/{entry_id:uuid}", include_in_schema=False)
    async def entry(
        self,
        request: Request[Any, Any, Any],
        entry_id: FromPath[uuid.UUID],
        db: NamedDependency[AsyncSession],
    ) -> Template:
        dashboard = DashboardRepository(db)
        entry = await dashboard.entry(entry_id)
        if entry is None:  # another tenant's entry is invisible here: 404, as in the API
            raise NotFound(f"No cache entry {entry_id}.")
        return page(
            request,
            "entry.html",
            active="entries",
            entry=entry,
            hits=await dashboard.hits_of(entry_id),
            detail_chars=DETAIL_CHARS,
        )

    @post("/entries/{entry_id:uuid}/delete", include_in_schema=False, status_code=HTTP_303_SEE_OTHER)
    async def delete_entry(
        self,
        entry_id: FromPath[uuid.UUID],
        data: Annotated[NextForm, FORM],
        viewer: NamedDependency[Principal],
        db: NamedDependency[AsyncSession],
    ) -> Redirect:
        # The same delete as DELETE /v1/cache/entries/{id}, audited the same way.
        if not await EntryActions(db, viewer.actor).delete(entry_id):
            raise NotFound(f"No cache entry {entry_id}.")
        return redirect("/ui/wrong-hits" if data.next == "wrong-hits" else "/ui/entries")

    # Purge (admin): count first, then confirm

    @get("/purge", include_in_schema=False, opt=ADMIN_ONLY)
    async def purge_preview(
        self,
        request: Request[Any, Any, Any],
        viewer: NamedDependency[Principal],
        db: NamedDependency[AsyncSession],
        tenant: FromQuery[uuid.UUID | None] = None,
        model: Annotated[str | None, QueryParameter(max_length=200)] = None,
        namespace: Annotated[str | None, QueryParameter(max_length=MAX_NAMESPACE_INPUT)] = None,
        older_than_days: Annotated[str | None, QueryParameter(max_length=10)] = None,
    ) -> Template:
        require_admin(viewer)
        if tenant is None:
            raise BadRequest("Choose the tenant whose entries to purge ('tenant').")
        target = await live_tenant(db, viewer, tenant)
        age = days(older_than_days)
        # The age becomes one cutoff now, so the purge removes what was counted (and no newer entry).
        where = PurgeFilter(
            model=clean_text(model, "model"),
            namespace=namespace_filter(namespace),
            created_before=age_cutoff(age),
        )
        return page(
            request,
            "purge.html",
            active="entries",
            tenant=target,
            where=where,
            older_than_days=age,
            # The purge's own filter code (app.cache.purge): the count is what a purge would remove.
            count=await count_matching(db, tenant, where),
            deleted=None,
        )

    @post("/purge", include_in_schema=False, status_code=200, opt=ADMIN_ONLY)
    async def purge(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[PurgeForm, FORM],
        viewer: NamedDependency[Principal],
        db: NamedDependency[AsyncSession],
        services: NamedDependency[Services],
    ) -> Template:
        require_admin(viewer)
        target = await live_tenant(db, viewer, data.tenant)
        # UTC, bounded (app.bounds). The age, when given, bounds the cutoff too: a form that sends
        # one without the other purges what its audit entry says, never every age.
        cutoffs = [
            cutoff
            for cutoff in (time_text(data.created_before, "created_before"), age_cutoff(data.older_than_days))
            if cutoff is not None
        ]
        created_before = min(cutoffs, default=None)
        where = PurgeFilter(
            model=clean_text(data.model, "model"),
            namespace=namespace_filter(data.namespace),
            created_before=created_before,
        )
        parameters: dict[str, Any] = {
            "model": where.model,
            "namespace": where.namespace,
            "older_than_days": data.older_than_days,
            "created_before": created_before.isoformat() if created_before else None,
        }
        # The admin API's purge: batched, each batch its own transaction, audited as it goes; after
        # the answers this process stored after their responses.
        await services.pipeline.writer.flush()
        deleted = await CachePurge(services.sessionmaker).purge(
            viewer.actor, data.tenant, where, {k: v for k, v in parameters.items() if v is not None}
        )
        return page(
            request,
            "purge.html",
            active="entries",
            tenant=target,
            where=where,
            older_than_days=data.older_than_days,
            count=None,
            deleted=deleted,
        )

    # Wrong hits

    @get("/wrong-hits", include_in_schema=False)
    async def wrong_hits(
        self,
        request: Request[Any, Any, Any],
        viewer: NamedDependency[Principal],
        db: NamedDependency[AsyncSession],
        tenant: FromQuery[uuid.UUID | None] = None,
    ) -> Template:
        scope = tenant_scope(viewer, tenant)
        dashboard = DashboardRepository(db)
        flagged = await dashboard.entries(EntrySearch(tenant_id=scope, flagged_only=True), limit=REVIEW_PAGE)
        return page(
            request,
            "wrong_hits.html",
            active="wrong-hits",
            flagged=[(entry, await dashboard.hits_of(entry.id, limit=5)) for entry in flagged],
            tenant_id=scope,
            tenants=await tenant_choices(db, viewer),
        )

    @post("/wrong-hits/{entry_id:uuid}/keep", include_in_schema=False, status_code=HTTP_303_SEE_OTHER)
    async def keep(
        self,
        entry_id: FromPath[uuid.UUID],
        viewer: NamedDependency[Principal],
        db: NamedDependency[AsyncSession],
    ) -> Redirect:
        """A reviewer found the flagged answer right after all: it serves again."""
        entry = await DashboardRepository(db).entry(entry_id)
        if entry is None or not await CacheRepository(db).clear_flag(entry_id):
            raise NotFound(f"No flagged cache entry {entry_id}.")
        await AuditRepository(db).record(
            viewer.actor,
            "cache.keep",
            tenant_id=entry.tenant_id,
            filters={"entry_id": str(entry_id)},
            rows_affected=1,
        )
        return redirect("/ui/wrong-hits")

    # Requests

    @get("/requests", include_in_schema=False)
    async def requests(
        self,
        request: Request[Any, Any, Any],
        viewer: NamedDependency[Principal],
        db: NamedDependency[AsyncSession],
        tenant: FromQuery[uuid.UUID | None] = None,
        status: FromQuery[str | None] = None,
        before: Annotated[str | None, QueryParameter(max_length=20)] = None,  # a ledger id
    ) -> Template:
        scope = tenant_scope(viewer, tenant)
        before_id = None if before is None or not before.strip() else whole_number(before, 1, MAX_BIGINT)
        if before is not None and before.strip() and before_id is None:
            raise BadRequest(f"'before' must be a request number from 1 to {MAX_BIGINT}.")
        status = status or None
        if status is not None and status not in CACHE_STATUSES:
            raise BadRequest(f"'status' must be one of {', '.join(CACHE_STATUSES)}.")
        rows = await DashboardRepository(db).requests(scope, cache_status=status, before_id=before_id)
        return page(
            request,
            "requests.html",
            active="requests",
            rows=rows,
            status=status,
            statuses=CACHE_STATUSES,
            tenant_id=scope,
            tenants=await tenant_choices(db, viewer),
        )

    @get("/requests/{request_id:str}", include_in_schema=False)
    async def request_detail(
        self,
        request: Request[Any, Any, Any],
        request_id: FromPath[str],
        db: NamedDependency[AsyncSession],
    ) -> Template:
        if len(request_id) > 64:  # the ledger's column: longer ids cannot exist
            raise NotFound(f"No request {request_id[:64]}.")
        row = await DashboardRepository(db).request(clean_text(request_id, "request_id") or "")
        if row is None:
            raise NotFound(f"No request {request_id}.")
        return page(request, "request.html", active="requests", row=row)

    # Quality

    @get("/quality", include_in_schema=False)
    async def quality_page(
        self,
        request: Request[Any, Any, Any],
        viewer: NamedDependency[Principal],
        db: NamedDependency[AsyncSession],
        tenant: FromQuery[uuid.UUID | None] = None,
    ) -> Template:
        scope = tenant_scope(viewer, tenant)
        target = await live_tenant(db, viewer, scope) if scope is not None else None
        policy: TenantCachePolicy = parse_policy(target.settings if target else {})
        return page(
            request,
            "quality.html",
            active="quality",
            tenant=target,
            tenant_id=scope,
            tenants=await tenant_choices(db, viewer),
            policy=policy,
            defaults=TenantCachePolicy(),
            figures=quality.figures(),
        )


def error_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Errors as pages (the APIs answer problem details); no session means the sign-in page."""
    if isinstance(exc, LoginRequired):
        return redirect("/ui/login")
    if isinstance(exc, DejaError | HTTPException):
        status, detail = exc.status_code, exc.detail
    else:
        raise exc
    return page(request, "error.html", status_code=status, status=status, detail=detail)


def create_ui_router(settings: Settings) -> Router:
    signer = SessionSigner.from_settings(settings)
    throttle = SignInThrottle()
    csrf = CSRFConfig(
        secret=signer.csrf_secret,
        cookie_name=CSRF_COOKIE_NAME,
        cookie_path=COOKIE_PATH,
        cookie_secure=signer.secure,
        cookie_httponly=True,
        cookie_samesite="strict",
    )
    return Router(
        path="/ui",
        route_handlers=[
            home,
            login_page,
            login,
            logout,
            DashboardController,
            create_static_files_router(
                path="/static", directories=[HERE / "static"], include_in_schema=False
            ),
        ],
        dependencies={
            "ui_signer": Provide(lambda: signer, sync_to_thread=False),
            "ui_throttle": Provide(lambda: throttle, sync_to_thread=False),
        },
        middleware=[DefineMiddleware(CSRFMiddleware, config=csrf)],
        guards=[admin_pages(signer)],
        exception_handlers={LoginRequired: error_page, DejaError: error_page, HTTPException: error_page},
        response_headers=SECURITY_HEADERS,
        include_in_schema=False,
    )
