"""Audio rates on prices, and the list prices of models a prefix priced as another.

A price listed for a model now applies to that model and its dated snapshots only
(`app.ledger.pricing.prices_model`): before, any name that started alike took it, so
`gpt-4o-audio-preview` was booked at gpt-4o's text rates (its audio tokens at an eighth of their
price), `gpt-3.5-turbo-16k` at gpt-3.5-turbo's and `gpt-4-1106-vision-preview` at gpt-4's. The
models that prefix priced are listed here at their own list prices (USD per million tokens, in
force from the seed's date), and `prices` gains two rates for audio tokens, which the ledger
prices apart when the provider reports them (`prompt_tokens_details.audio_tokens`,
`completion_tokens_details.audio_tokens`); without them a model's audio tokens are priced as text.
Per-call fees (the search models' web search) are not booked. A row an admin already added for
the same model and date is kept, and left on downgrade.

Revision ID: 0240
Revises: 0230
Create Date: 2026-12-04
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0240"
down_revision: str | None = "0230"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEED_DATE = datetime(2025, 8, 7, tzinfo=UTC)
# model: input, cached input, output, audio input, audio output (USD per 1M tokens)
PRICES: dict[str, tuple[str, str | None, str, str | None, str | None]] = {
    "gpt-4o-audio-preview": ("2.50", None, "10.00", "40.00", "80.00"),
    "gpt-4o-audio-preview-2024-10-01": ("2.50", None, "10.00", "100.00", "200.00"),
    "gpt-4o-mini-audio-preview": ("0.15", None, "0.60", "10.00", "20.00"),
    "gpt-4o-search-preview": ("2.50", None, "10.00", None, None),
    "gpt-4o-mini-search-preview": ("0.15", None, "0.60", None, None),
    "gpt-5-chat-latest": ("1.25", "0.125", "10.00", None, None),
    "o1-preview": ("15.00", "7.50", "60.00", None, None),
    "gpt-4-turbo-preview": ("10.00", None, "30.00", None, None),
    "gpt-4-1106-vision-preview": ("10.00", None, "30.00", None, None),
    "gpt-3.5-turbo-16k": ("3.00", None, "4.00", None, None),
}

INSERT = sa.text(
    "INSERT INTO prices (model, input_per_mtok, cached_input_per_mtok, output_per_mtok, "
    "audio_input_per_mtok, audio_output_per_mtok, effective_from) "
    "VALUES (:model, CAST(:input AS numeric), CAST(:cached AS numeric), CAST(:output AS numeric), "
    "CAST(:audio_input AS numeric), CAST(:audio_output AS numeric), :at) "
    "ON CONFLICT (model, effective_from) DO NOTHING"
)
# Only the rows this migration wrote: an admin's row for the same model and date differs in price.
DELETE = sa.text(
    "DELETE FROM prices WHERE model = :model AND effective_from = :at "
    "AND input_per_mtok = CAST(:input AS numeric) AND output_per_mtok = CAST(:output AS numeric) "
    "AND cached_input_per_mtok IS NOT DISTINCT FROM CAST(:cached AS numeric) "
    "AND audio_input_per_mtok IS NOT DISTINCT FROM CAST(:audio_input AS numeric) "
    "AND audio_output_per_mtok IS NOT DISTINCT FROM CAST(:audio_output AS numeric)"
)


def _bound(statement: sa.TextClause, model: str) -> sa.TextClause:
    input_price, cached, output_price, audio_input, audio_output = PRICES[model]
    return statement.bindparams(
        model=model,
        input=input_price,
        cached=cached,
        output=output_price,
        audio_input=audio_input,
        audio_output=audio_output,
        at=SEED_DATE,
    )


def upgrade() -> None:
    op.add_column("prices", sa.Column("audio_input_per_mtok", sa.Numeric(12, 6), nullable=True))
    op.add_column("prices", sa.Column("audio_output_per_mtok", sa.Numeric(12, 6), nullable=True))
    for model in PRICES:
        op.execute(_bound(INSERT, model))


def downgrade() -> None:
    for model in PRICES:
        op.execute(_bound(DELETE, model))
    op.drop_column("prices", "audio_output_per_mtok")
    op.drop_column("prices", "audio_input_per_mtok")
