"""`create_app()`: the one place where Déjà's Litestar application is assembled."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from litestar import Litestar, Router
from litestar.datastructures import ResponseHeader
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

from app import __version__
from app.admin.routes import AdminController
from app.cache.admin_routes import CacheAdminController
from app.cache.routes import CacheController
from app.catalog.routes import ModelsController
from app.completions.routes import CompletionsController
from app.db.engine import failure_reason
from app.dependencies import BASE_DEPENDENCIES
from app.ledger.admin_routes import LedgerAdminController
from app.ledger.routes import UsageController
from app.observability.health import health, health_head, ready, ready_head
from app.observability.input_guard import body_guard
from app.observability.logging import configure_logging, log_unhandled
from app.observability.metrics import metrics, worker_exiting
from app.observability.request_id import add_request_id
from app.problems import EXCEPTION_HANDLERS, answer_when_stopped
from app.services import Services
from app.settings import Settings, get_settings
from app.tenants.routes import TenantAdminController
from app.ui.routes import TEMPLATES, create_ui_router

# Swagger UI's files ship in the package (app/static/swagger-ui/README.md): the API docs load
# nothing from a CDN, so they work offline and behind strict egress rules.
SWAGGER_ASSETS = "/static/swagger-ui"
SWAGGER_DIR = Path(__file__).resolve().parent / "static" / "swagger-ui"

log = logging.getLogger(__name__)


DOCS_HEADERS = [
    ResponseHeader(name="Content-Security-Policy", value="frame-ancestors 'none'"),
    ResponseHeader(name="X-Frame-Options", value="DENY"),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
]


def swagger_ui() -> SwaggerRenderPlugin:
    return SwaggerRenderPlugin(
        js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
        css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{SWAGGER_ASSETS}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{SWAGGER_ASSETS}/favicon-32x32.png'>",
    )


def settle_startup_objects() -> None:
    """Move what start-up made (modules, the app, the models' tokenizers: some 200,000 objects,
    kept for the life of the worker) out of the cyclic collector's reach. The full passes it runs
    by itself under load walked them all and held the event loop for some 120 ms
    (scripts/gc_pause.py): every request in flight waited."""
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            services = await Services.start(settings)
        except Exception as exc:
            # Said in one line before the traceback the server logs next, for whoever reads why
            # `deja serve` did not start.
            log.error("start-up failed", extra={"reason": failure_reason(exc)})
            raise
        app.state.services = services
        settle_startup_objects()
        try:
            yield
        finally:
            await services.aclose()
            gc.unfreeze()  # another app may start in this process (tests): its start-up settles anew
            worker_exiting()

    return Litestar(
        route_handlers=[
            health,
            health_head,
            ready,
            ready_head,
            metrics,
            create_static_files_router(SWAGGER_ASSETS, directories=[SWAGGER_DIR], include_in_schema=False),
            ModelsController,
            UsageController,
            TenantAdminController,
            LedgerAdminController,
            CacheAdminController,
            AdminController,
            CacheController,
            CompletionsController,
            # The web dashboard (app/ui): its own session, CSRF middleware and error pages.
            create_ui_router(settings),
        ],
        template_config=TEMPLATES,
        dependencies=BASE_DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        before_send=[add_request_id],
        after_exception=[log_unhandled],
        before_request=body_guard(settings.body_timeout_s),
        # A request still running when a stop's grace period ends: a 503, not uvicorn's plain 500.
        middleware=[answer_when_stopped],
        logging_config=None,  # app.observability.logging owns logging
        lifespan=[lifespan],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Déjà",
            version=__version__,
            description="A semantic cache for LLM responses, in front of OpenAI-compatible model APIs.",
            path="/schema",
            render_plugins=[swagger_ui()],
            # The API docs' pages: never framed by another site (a click tricked out of a reader).
            openapi_router=Router(path="/schema", route_handlers=[], response_headers=DOCS_HEADERS),
        ),
        debug=False,
    )
