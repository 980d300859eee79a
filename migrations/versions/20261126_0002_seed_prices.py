"""Seed prices: OpenAI's public list prices per million tokens, as published in August 2025.

Admins keep them current through the admin API (a new row with a later effective_from);
costs always use the row in force at request time.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EFFECTIVE_FROM = datetime(2025, 8, 7, tzinfo=UTC)
# model: input, cached input, output (USD per 1M tokens)
PRICES = {
    "gpt-5": ("1.25", "0.125", "10.00"),
    "gpt-5-mini": ("0.25", "0.025", "2.00"),
    "gpt-5-nano": ("0.05", "0.005", "0.40"),
    "gpt-4.1": ("2.00", "0.50", "8.00"),
    "gpt-4.1-mini": ("0.40", "0.10", "1.60"),
    "gpt-4.1-nano": ("0.10", "0.025", "0.40"),
    "gpt-4o": ("2.50", "1.25", "10.00"),
    "gpt-4o-mini": ("0.15", "0.075", "0.60"),
    "o3": ("2.00", "0.50", "8.00"),
    "o4-mini": ("1.10", "0.275", "4.40"),
    "gpt-3.5-turbo": ("0.50", None, "1.50"),
    "text-embedding-3-small": ("0.02", None, "0"),
    "text-embedding-3-large": ("0.13", None, "0"),
}

prices = sa.table(
    "prices",
    sa.column("model", sa.String),
    sa.column("input_per_mtok", sa.Numeric),
    sa.column("cached_input_per_mtok", sa.Numeric),
    sa.column("output_per_mtok", sa.Numeric),
    sa.column("effective_from", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    op.bulk_insert(
        prices,
        [
            {
                "model": model,
                "input_per_mtok": input_price,
                "cached_input_per_mtok": cached,
                "output_per_mtok": output_price,
                "effective_from": EFFECTIVE_FROM,
            }
            for model, (input_price, cached, output_price) in PRICES.items()
        ],
    )


def downgrade() -> None:
    op.execute(
        prices.delete().where(prices.c.model.in_(list(PRICES)), prices.c.effective_from == EFFECTIVE_FROM)
    )
