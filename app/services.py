"""The long-lived parts of one process (engine, models, router), built once at start-up."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.cache.service import CacheService
from app.completions.coalesce import renew_inflight
from app.completions.pipeline import CompletionPipeline
from app.db.embedded import resolve_database_url
from app.db.engine import create_engine, create_sessionmaker, transaction
from app.db.fastpath import FastConnections
from app.db.leases import Lease, keep_leases
from app.db.replica import ReadReplica
from app.ledger.booking import Bookkeeper
from app.ledger.pricing import PriceBook
from app.ledger.quotas import reclaim_reservations, renew_reservations
from app.ledger.rollup import keep_rolled_up
from app.ledger.spool import LedgerSpool
from app.observability.metrics import METRICS, PrometheusRouterEvents
from app.settings import Settings
from app.tenants.auth import Authenticator, forget_on_change
from app.upstream.config import load_router_config
from app.upstream.router import ModelRouter

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    authenticator: Authenticator
    cache: CacheService
    router: ModelRouter
    prices: PriceBook
    pipeline: CompletionPipeline
    spool: LedgerSpool
    replica: ReadReplica
    fast: FastConnections
    background: list[asyncio.Task[None]]

    @classmethod
    async def start(cls, settings: Settings) -> Services:
        url = resolve_database_url(settings)
        engine = create_engine(url, settings)
        fast = FastConnections(
            url,
            statement_timeout_ms=settings.database.statement_timeout_ms,
            connect_timeout_s=settings.database.pool_timeout_s,
        )
        sessionmaker = create_sessionmaker(engine)
        admin_token = settings.admin_token.get_secret_value() if settings.admin_token else None
        cache = CacheService.create(settings.cache)
        async with transaction(sessionmaker, system=True) as session:
            await cache.prepare(session)
        cache.aliases.start(sessionmaker, fast)
        router = ModelRouter(load_router_config(settings.config), events=PrometheusRouterEvents())
        warn_without_upstream_keys(router)
        prices = PriceBook(sessionmaker)
        await prices.load()
        METRICS.model_label.allow(router.config.model_names() | prices.models())
        spool = LedgerSpool(settings.data_dir / "spool")
        log.info("data directory", extra={"data_dir": str(settings.data_dir)})
        lease = Lease.new(settings.limits.lease_s)
        replica = ReadReplica.connect(settings)
        lease_steps = [renew_reservations, reclaim_reservations, renew_inflight]
        background = [
            asyncio.create_task(spool.run(sessionmaker), name="ledger-spool"),
            asyncio.create_task(keep_leases(sessionmaker, lease, lease_steps), name="leases"),
            asyncio.create_task(
                cache.hits.run(sessionmaker, settings.cache.hit_flush_interval_s), name="hit-counters"
            ),
        ]
        authenticator = Authenticator(sessionmaker, admin_token)
        background.append(asyncio.create_task(forget_on_change(fast.dsn, authenticator), name="key-changes"))
        if settings.ledger_rollup_interval_s > 0:
            rollup = keep_rolled_up(sessionmaker, settings.ledger_rollup_interval_s)
            background.append(asyncio.create_task(rollup, name="ledger-rollup"))
        return cls(
            settings=settings,
            engine=engine,
            sessionmaker=sessionmaker,
            authenticator=authenticator,
            cache=cache,
            router=router,
            prices=prices,
            pipeline=CompletionPipeline(
                sessionmaker,
                cache,
                router,
                Bookkeeper(
                    sessionmaker,
                    spool,
                    prices,
                    lease,
                    default_output_tokens=settings.limits.default_output_tokens,
                ),
                settings.limits,
                lease,
                replica,
                fast,
            ),
            spool=spool,
            replica=replica,
            fast=fast,
            background=background,
        )

    async def aclose(self) -> None:
        for task in self.background:
            task.cancel()
        await self.pipeline.aclose()
        try:
            await self.cache.hits.flush(self.sessionmaker)
        except Exception:
            log.exception("hit counters not written at shutdown")
        # Last chance to book what waited out an outage; what stays is replayed at next start.
        try:
            await self.spool.drain(self.sessionmaker)
        except Exception:
            log.exception("ledger spool not drained at shutdown; it is replayed at the next start")
        await self.router.aclose()
        await self.cache.aclose()
        await self.replica.dispose()
        await self.fast.aclose()
        await self.engine.dispose()


def warn_without_upstream_keys(router: ModelRouter) -> None:
    """Say at start-up, not at the first miss, that upstreams will refuse every call."""
    for upstream in router.config.upstreams:
        if upstream.api_key_env and not os.environ.get(upstream.api_key_env):
            log.warning(
                f"upstream {upstream.name!r} has no API key: {upstream.api_key_env} is not set, so every "
                "cache miss it serves will fail. Set it (or point OPENAI_BASE_URL at a server that "
                "needs none, e.g. `deja fake-llm`, with any value in the key).",
                extra={"upstream": upstream.name, "api_key_env": upstream.api_key_env},
            )
