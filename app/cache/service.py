"""The cache's decisions: exact tier, semantic tier with the verifier, and storing answers.

Callers own the transaction; nothing here commits.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncSession

from app.cache.aliases import AliasWriter, NewAlias
from app.cache.embedders import Embedder, create_embedder
from app.cache.exact_probe import probe_exact
from app.cache.hits import HitCounter
from app.cache.repository import NO_ALIASES, CacheRepository, NewEntry, StoredEntry
from app.cache.scope import Scope, indentation
from app.cache.semantic_probe import SemanticProbe
from app.cache.verifier import (
    Candidate,
    FirstPassStage,
    Verdict,
    Verifier,
    VerifierPolicy,
    build_verifier,
    read_band,
)
from app.cache.verifier.texts import STORED_CHARS_READ, model_text, read_candidates, tied
from app.db.errors import describe_database_error
from app.db.fastpath import FastConnections, connection_failed, missing_function, unavailable
from app.observability import metrics
from app.settings import CacheSettings
from app.upstream.usage import Usage

log = logging.getLogger(__name__)

# alias: the exact hash of a paraphrase served before (app.cache.models.CacheAlias).
Tier = Literal["exact", "alias", "semantic"]
# When the top_k nearest entries of a long prompt tie (`tied`), this many times top_k of them are
# fetched: the embedder read their prompts alike (one text pasted with other requests after it),
# and the verifier is handed those nearest the new prompt in words (`word_nearest_first`). Not
# when the top_k's prompts already hold more text than a lookup reads (`STORED_CHARS_READ`).
TIED_FETCH = 4


async def nearest_or_tied(
    fetch: Callable[[int], Awaitable[list[StoredEntry]]], k: int, prompt: str
) -> list[StoredEntry]:
    """The k nearest entries (`fetch(k)`), or TIED_FETCH times as many when those k all tie and
    a lookup would read more of them than those (`read_candidates`)."""
    neighbours = await fetch(k)
    if (
        len(neighbours) == k > 1
        and tied(prompt, neighbours[0].similarity, neighbours[-1].similarity)
        and sum(len(n.prompt) for n in neighbours) < STORED_CHARS_READ
    ):
        return await fetch(k * TIED_FETCH)
    return neighbours


@dataclass(frozen=True, slots=True)
class LookupResult:
    entry: StoredEntry | None
    tier: Tier | None
    # Cosine of the served entry (1.0 on an exact hit); of the nearest candidate on a miss.
    similarity: float | None
    # The query's embedding, reused when the answer is stored after a miss.
    embedding: npt.NDArray[np.float32] | None = None
    verdict: Verdict | None = None
    # A candidate the verifier accepted but a gate kept from serving (the error bound explored).
    withheld: StoredEntry | None = None

    @property
    def hit(self) -> bool:
        return self.entry is not None

    @classmethod
    def miss(
        cls, similarity: float | None, embedding: npt.NDArray[np.float32], verdict: Verdict | None
    ) -> LookupResult:
        """Nothing to serve: the nearest candidate's cosine, the embedding to store with, the verdict."""
        return cls(entry=None, tier=None, similarity=similarity, embedding=embedding, verdict=verdict)


class HitGate(Protocol):
    """A last word on a semantic hit (the error bound): may change the verifier's policy, and
    may keep the verifier's choice from serving."""

    def verifier_policy(self, policy: VerifierPolicy) -> VerifierPolicy: ...

    async def serve(self, session: AsyncSession, entry: StoredEntry, verdict: Verdict) -> bool: ...


class CacheService:
    def __init__(self, embedder: Embedder, verifier: Verifier, settings: CacheSettings) -> None:
        self.embedder = embedder
        self.verifier = verifier
        self.settings = settings
        self.hits = HitCounter()
        self.aliases = AliasWriter(settings.max_aliases_per_entry)
        # The embedder's probe function, named by `prepare`; None until then, or when it is missing
        # (migrations not applied): semantic lookups then use transactions.
        self.semantic_probe: SemanticProbe | None = None

    @classmethod
    def create(cls, settings: CacheSettings) -> CacheService:
        cross_encoder = load_cross_encoder(settings)
        first_pass = load_first_pass(settings, cross_encoder) if cross_encoder is not None else None
        if cross_encoder is None and settings.verifier_first_pass_dir is not None:
            log.warning("a first pass needs the cross-encoder it was distilled from: not used")
        return cls(create_embedder(settings), build_verifier(cross_encoder, first_pass=first_pass), settings)

    async def prepare(self, session: AsyncSession) -> None:
        """At start-up: learn the embedder's dimension and make sure its HNSW index and its probe
        function exist."""
        if not self.embedder.dimension:
            await self.embedder.embed(["dimension probe"])
        await CacheRepository(session).ensure_embedding_index(self.embedder.name, self.embedder.dimension)
        self.semantic_probe = await SemanticProbe.ensure(session, self.embedder.name, self.embedder.dimension)

    async def lookup(
        self,
        session: AsyncSession,
        tenant_id: uuid.UUID,
        namespace: str,
        scope: Scope,
        policy: VerifierPolicy,
        *,
        max_age_s: int | None = None,
        stale_s: int = 0,
        gate: HitGate | None = None,
        reads: AsyncSession | None = None,
        exact_probed: bool = False,
    ) -> LookupResult:
        """The entry to serve, if any. `stale_s` admits entries expired up to that long ago;
        `gate` has the last word on a semantic hit. With `reads` (a read replica's session) the
        searches run there and the entry to serve is confirmed on `session`'s primary.
        `exact_probed`: the exact tier was just probed (`probe_exact`) and found nothing."""
        repo = CacheRepository(session)
        search = CacheRepository(reads) if reads is not None else repo
        aliases = self.settings.max_aliases_per_entry > 0
        exact_args: dict[str, Any] = {
            "max_age_s": max_age_s,
            "stale_s": stale_s,
            "min_alias_similarity": self.alias_floor(policy),
        }
        exact = (
            None
            if exact_probed
            else await search.find_exact(tenant_id, namespace, scope.exact_hash, **exact_args)
        )
        if reads is not None and not exact_probed:
            # A replica's find must still stand on the primary; and the replica may lag: an answer
            # stored within its lag is already on the primary, one indexed read away (an
            # identical request then hits at once).
            if exact is not None and not await _servable_on_primary(repo, exact[0].id):
                exact = None
            if exact is None:
                exact = await repo.find_exact(tenant_id, namespace, scope.exact_hash, **exact_args)
        if exact is not None:
            entry, alias = exact
            self.hits.add(entry.id)
            return LookupResult(entry=entry, tier="alias" if alias else "exact", similarity=entry.similarity)

        with metrics.time_embedding():
            embedding = (await self.embedder.embed([model_text(scope.read_prompt)]))[0]
        neighbours = await nearest_or_tied(
            lambda k: search.nearest(
                tenant_id,
                namespace,
                scope.scope_hash,
                self.embedder.name,
                self.embedder.dimension,
                embedding,
                k=k,
                ef_search=self.settings.ef_search,
                max_age_s=max_age_s,
                stale_s=stale_s,
            ),
            self.settings.top_k,
            scope.read_prompt,
        )
        if not neighbours:
            return LookupResult(entry=None, tier=None, similarity=None, embedding=embedding)
        if gate is not None:
            policy = gate.verifier_policy(policy)
        verdict = await self._verdict(scope, policy, neighbours)
        if verdict is None or verdict.accepted is None:
            return LookupResult.miss(neighbours[0].similarity, embedding, verdict)
        entry = _accepted(neighbours, verdict.accepted.entry_id)
        if reads is not None and not await _servable_on_primary(repo, entry.id):
            return LookupResult(entry=None, tier=None, similarity=None, embedding=embedding, verdict=verdict)
        if gate is not None and not await gate.serve(session, entry, verdict):
            return LookupResult(
                entry=None,
                tier=None,
                similarity=entry.similarity,
                embedding=embedding,
                verdict=verdict,
                withheld=entry,
            )
        self.hits.add(entry.id)
        if aliases:
            await repo.add_alias(
                tenant_id,
                namespace,
                scope.exact_hash,
                entry.id,
                entry.similarity,
                max_aliases=self.settings.max_aliases_per_entry,
            )
        return LookupResult(
            entry=entry, tier="semantic", similarity=entry.similarity, embedding=embedding, verdict=verdict
        )

    async def _verdict(
        self, scope: Scope, policy: VerifierPolicy, neighbours: list[StoredEntry]
    ) -> Verdict | None:
        """The verifier's decision on the nearest entries; None when none of them can be read."""
        lowest_floor = min(policy.similarity_floor(True), policy.similarity_floor(False))
        if all(n.similarity < lowest_floor for n in neighbours):
            # Below every cosine floor: the floor alone decides, no stage reads a text, so the
            # decision is made here, on the prompts as they are; a worker thread would cost more.
            unread = [Candidate(entry_id=n.id, prompt=n.prompt, similarity=n.similarity) for n in neighbours]
            return self.verifier.decide(model_text(scope.read_prompt), unread, policy)
        # Off the event loop: normalising and cutting long stored prompts is work too.
        return await asyncio.to_thread(self._decide, scope, policy, neighbours)

    def _decide(self, scope: Scope, policy: VerifierPolicy, neighbours: list[StoredEntry]) -> Verdict | None:
        # Both sides of a pair are compared as normalised text (an entry keeps the prompt as sent),
        # as much of them as the models read, within a bound on the text read (`read_candidates`).
        candidates = read_candidates(
            scope.read_prompt,
            ((n.id, n.prompt, n.similarity) for n in neighbours),
            self.settings.top_k,
            layout=indentation(scope.normalised_prompt),
            spellings=scope.spellings,
        )
        if not candidates:
            return None
        return self.verifier.decide(model_text(scope.read_prompt), candidates, policy)

    async def probe_semantic(
        self,
        connections: FastConnections,
        tenant_id: uuid.UUID,
        namespace: str,
        scope: Scope,
        policy: VerifierPolicy,
        *,
        max_age_s: int | None = None,
    ) -> LookupResult | None:
        """The semantic tier outside any transaction, once the exact probe found nothing: the
        embedding, the nearest entries in one round trip (the embedder's probe function), the verifier. A
        served paraphrase's alias is handed to `aliases`, written after the response (once the
        writer is started: `AliasWriter.start`). For lookups without a gate and without a read
        replica (those need `lookup`'s session).

        None when the probe could not run (`prepare` has not named the function, the function is
        not there, or the database is unreachable): the caller then looks up in a transaction,
        whose outage handling applies."""
        probe = self.semantic_probe
        if probe is None:
            return None
        with metrics.time_embedding():
            embedding = (await self.embedder.embed([model_text(scope.read_prompt)]))[0]
        try:
            neighbours = await nearest_or_tied(
                lambda k: probe.nearest(
                    connections,
                    tenant_id,
                    namespace,
                    scope.scope_hash,
                    embedding,
                    k=k,
                    ef_search=self.settings.ef_search,
                    max_age_s=max_age_s,
                ),
                self.settings.top_k,
                scope.read_prompt,
            )
        except Exception as exc:
            if not unavailable(exc, probe.function, "this lookup uses a transaction"):
                raise
            if missing_function(exc):
                self.semantic_probe = await self._recreate_probe(connections)
            return None
        if not neighbours:
            return LookupResult(entry=None, tier=None, similarity=None, embedding=embedding)
        verdict = await self._verdict(scope, policy, neighbours)
        if verdict is None or verdict.accepted is None:
            return LookupResult.miss(neighbours[0].similarity, embedding, verdict)
        entry = _accepted(neighbours, verdict.accepted.entry_id)
        self.hits.add(entry.id)
        self.aliases.add(NewAlias(tenant_id, namespace, scope.exact_hash, entry.id, entry.similarity))
        return LookupResult(
            entry=entry, tier="semantic", similarity=entry.similarity, embedding=embedding, verdict=verdict
        )

    async def _recreate_probe(self, connections: FastConnections) -> SemanticProbe | None:
        """The probe function again, after it was dropped (a migration while the service ran). With
        the database unreachable, the same one (tried again next time); None, and transactions from
        then on, if it cannot be made."""
        try:
            return await SemanticProbe.recreate(connections, self.embedder.name, self.embedder.dimension)
        except Exception as exc:
            if connection_failed(exc):
                return self.semantic_probe
            log.warning(
                "the semantic probe function could not be made again: semantic lookups use transactions",
                extra={"error": describe_database_error(exc)},
            )
            return None

    def alias_floor(self, policy: VerifierPolicy) -> float:
        """The cosine an alias must have been served at to serve again (it serves again only where
        that still passes); NO_ALIASES when aliases are off."""
        if self.settings.max_aliases_per_entry <= 0:
            return NO_ALIASES
        return policy.similarity_floor(policy.cross_encoder_min_score is not None)

    async def probe_exact(
        self,
        connections: FastConnections,
        tenant_id: uuid.UUID,
        namespace: str,
        scope: Scope,
        policy: VerifierPolicy,
        *,
        max_age_s: int | None = None,
    ) -> LookupResult | None:
        """The exact tier alone, in one round trip and outside any transaction: the hit, or None."""
        found = await probe_exact(
            connections,
            tenant_id,
            namespace,
            scope.exact_hash,
            max_age_s=max_age_s,
            min_alias_similarity=self.alias_floor(policy),
        )
        if found is None:
            return None
        entry, alias = found
        self.hits.add(entry.id)
        return LookupResult(entry=entry, tier="alias" if alias else "exact", similarity=entry.similarity)

    def record_hit(self, entry_id: uuid.UUID) -> None:
        """Count a hit served without a lookup (a coalesced request)."""
        self.hits.add(entry_id)

    async def store(
        self,
        session: AsyncSession,
        tenant_id: uuid.UUID,
        namespace: str,
        scope: Scope,
        response: dict[str, Any],
        *,
        ttl_s: int | None,
        embedding: npt.NDArray[np.float32] | None = None,
        cost_usd: Decimal = Decimal(0),
        entry_id: uuid.UUID | None = None,
    ) -> uuid.UUID | None:
        """Store `response` for `scope`'s prompt; the entry's id, or None when the tenant was
        deleted meanwhile (nothing is stored for it)."""
        if embedding is None:
            with metrics.time_embedding():
                embedding = (await self.embedder.embed([model_text(scope.read_prompt)]))[0]
        entry = self.new_entry(
            tenant_id,
            namespace,
            scope,
            response,
            ttl_s=ttl_s,
            embedding=embedding,
            cost_usd=cost_usd,
            entry_id=entry_id,
        )
        return await CacheRepository(session).insert(entry)

    def new_entry(
        self,
        tenant_id: uuid.UUID,
        namespace: str,
        scope: Scope,
        response: dict[str, Any],
        *,
        ttl_s: int | None,
        embedding: npt.NDArray[np.float32] | None,
        cost_usd: Decimal,
        entry_id: uuid.UUID | None = None,
    ) -> NewEntry:
        """The entry that stores `response` for `scope`'s prompt (not yet written)."""
        usage = Usage.of(response.get("usage"))  # what a client stored may say anything
        return NewEntry(
            tenant_id=tenant_id,
            namespace=namespace,
            model=scope.model,
            scope_hash=scope.scope_hash,
            exact_hash=scope.exact_hash,
            prompt=scope.prompt,
            embedder=self.embedder.name,
            embedding=embedding,
            response=response,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost_usd=cost_usd,
            ttl_s=ttl_s,
            id=entry_id,
        )

    async def aclose(self) -> None:
        await self.aliases.aclose()
        await self.embedder.aclose()


def _accepted(neighbours: list[StoredEntry], entry_id: uuid.UUID) -> StoredEntry:
    return next(n for n in neighbours if n.id == entry_id)


async def _servable_on_primary(primary: CacheRepository, entry_id: uuid.UUID) -> bool:
    """A replica's find still stands: not deleted or flagged on the primary since."""
    entry = await primary.get(entry_id)
    return entry is not None and not entry.flagged


def load_cross_encoder(settings: CacheSettings) -> Any:
    """The shipped cross-encoder (or the configured one), with the one for pairs whose prompts paste
    one text beside it when there is one; None when no model file is there."""
    from app.cache.onnx_models import (
        DEFAULT_OVER_TEXT_DIR,
        DEFAULT_VERIFIER_DIR,
        OnnxCrossEncoder,
        OverTextCrossEncoders,
    )

    model_dir = Path(settings.verifier_model_dir or DEFAULT_VERIFIER_DIR)
    if not (model_dir / "model.onnx").exists():
        log.warning("no cross-encoder at %s: the verifier runs similarity and rules only", model_dir)
        return None
    general = OnnxCrossEncoder(model_dir, threads=settings.embedder_threads)
    if not settings.verifier_over_text:
        return general
    over_text_dir = Path(settings.verifier_over_text_model_dir or DEFAULT_OVER_TEXT_DIR)
    if not (over_text_dir / "model.onnx").exists():
        log.warning(
            "no cross-encoder for pairs over one text at %s: the cross-encoder reads them", over_text_dir
        )
        return general
    return OverTextCrossEncoders(general, OnnxCrossEncoder(over_text_dir, threads=settings.embedder_threads))


def load_first_pass(settings: CacheSettings, cross_encoder: Any = None) -> FirstPassStage | None:
    """The distilled first pass configured (`verifier_first_pass_dir`), when it was distilled from
    the cross-encoder in use; None otherwise (none is shipped): the cross-encoder reads every pair.
    Beside a cross-encoder of their own for pairs that paste one text, it leaves those pairs to it."""
    from app.cache.onnx_models import DEFAULT_VERIFIER_DIR, OnnxCrossEncoder, OverTextCrossEncoders

    if settings.verifier_first_pass_dir is None:
        return None
    model_dir = Path(settings.verifier_first_pass_dir)
    distilled_from = Path(settings.verifier_model_dir or DEFAULT_VERIFIER_DIR) / "model.onnx"
    band = read_band(model_dir, distilled_from)
    if band is None:
        log.warning(
            "%s holds no first pass distilled from the cross-encoder in use: the cross-encoder reads every pair",
            model_dir,
        )
        return None
    reads = cross_encoder.general_reads if isinstance(cross_encoder, OverTextCrossEncoders) else None
    return FirstPassStage(OnnxCrossEncoder(model_dir, threads=settings.embedder_threads), band, reads)
