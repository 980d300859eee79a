"""Cached responses."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from pgvector.sqlalchemy import HALFVEC
from sqlalchemy import (
    REAL,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, created_at, uuid_pk

# The default embedder's HNSW index. Vectors are stored without a fixed dimension so that the
# configured embedder decides it; each embedder gets a partial HNSW index over its own rows,
# cast to its dimension (see app.cache.repository.ensure_embedding_index). This one is the
# default and ships with the schema.
DEFAULT_EMBEDDER = "minilm-l6-v2-int8"
DEFAULT_DIMENSION = 384


def hnsw_index_name(embedder: str) -> str:
    slug = "".join(ch if ch.isalnum() else "_" for ch in embedder.lower())
    return f"ix_cache_entries_hnsw_{slug}"[:63]


class CacheEntry(Base):
    __tablename__ = "cache_entries"
    __table_args__ = (
        # Exact tier: one btree probe by (tenant, namespace, exact hash).
        Index("ix_cache_entries_exact", "tenant_id", "namespace", "exact_hash"),
        # Scope filter for the semantic tier, and exact search when a scope is small.
        Index("ix_cache_entries_scope", "tenant_id", "namespace", "scope_hash"),
        Index("ix_cache_entries_expires_at", "expires_at"),
        Index("ix_cache_entries_tenant_created", "tenant_id", "created_at"),
        # The dashboard: newest entries across tenants, and entries found by the words of their prompt.
        Index("ix_cache_entries_created_at", "created_at"),
        Index(
            "ix_cache_entries_prompt_words",
            text("to_tsvector('simple'::regconfig, prompt)"),
            postgresql_using="gin",
        ),
        # Entries waiting for review (the dashboard's wrong hits): few among many.
        Index("ix_cache_entries_flagged", "tenant_id", "created_at", postgresql_where=text("flagged")),
        Index(
            hnsw_index_name(DEFAULT_EMBEDDER),
            text(f"(embedding::halfvec({DEFAULT_DIMENSION})) halfvec_cosine_ops"),
            postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 64},
            postgresql_where=text(f"embedder = '{DEFAULT_EMBEDDER}'"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # In the key: a table distributed by tenant_id (Citus) needs it in every unique key.
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    namespace: Mapped[str] = mapped_column(String(200), nullable=False, server_default="")
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    scope_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    exact_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    prompt: Mapped[str] = mapped_column(Text, nullable=False)
    embedder: Mapped[str | None] = mapped_column(String(100))
    embedding: Mapped[Any | None] = mapped_column(HALFVEC(), nullable=True)
    # The full OpenAI chat completion object; streamed hits are replayed from it.
    response: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    prompt_tokens: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    completion_tokens: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(20, 10), nullable=False, server_default="0")
    created_at: Mapped[datetime] = created_at()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    hit_count: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    last_hit_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Feedback: a flagged entry never serves again; the counts feed per-entry calibration.
    flagged: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    feedback_correct: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    feedback_wrong: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # The prompt of the latest request reported as a wrong hit of this entry, when the client sent
    # it with the feedback: reviewers read it beside the stored prompt.
    wrong_hit_prompt: Mapped[str | None] = mapped_column(Text)


class CacheAlias(Base):
    """Another wording of an entry's prompt, served by the semantic tier and not flagged since:
    the same wording in the same scope is then found by its exact hash, with no embedding and
    no verifier. Bounded per entry (`cache.max_aliases_per_entry`), deleted with its entry
    (purges, TTL sweeps, tenant deletion) and when the entry is flagged."""

    __tablename__ = "cache_aliases"
    __table_args__ = (
        # An entry is keyed by (id, tenant_id), so that the table can be distributed by tenant.
        ForeignKeyConstraint(
            ["entry_id", "tenant_id"],
            ["cache_entries.id", "cache_entries.tenant_id"],
            ondelete="CASCADE",
        ),
        Index("ix_cache_aliases_entry_id", "entry_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    namespace: Mapped[str] = mapped_column(String(200), primary_key=True)
    # The hash of the alias's own scope and normalised wording (the same as an entry's exact_hash).
    exact_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    entry_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    # The cosine it was served at: a request asking for a stricter threshold does not take it.
    similarity: Mapped[float] = mapped_column(REAL, nullable=False)
    created_at: Mapped[datetime] = created_at()
