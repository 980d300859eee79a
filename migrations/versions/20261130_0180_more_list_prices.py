"""More of OpenAI's list prices: models the seed (0002) left out, which the longest listed prefix
priced as another model or not at all.

Without them `o3-pro` was booked at o3's price (a tenth of its own), `o1` and `gpt-4-turbo` at
$0, and `gpt-4o-2024-05-13` at gpt-4o's (half its input price, two thirds of its output price).
Prices per million tokens as OpenAI lists them, in force from the seed's date (gpt-5-pro from its
release). The `gpt-4` row would price every `gpt-4-…` preview by prefix, so those are listed
too. A row an admin already added for the same model and date is kept, and left on downgrade.

Revision ID: 0180
Revises: 0170
Create Date: 2026-11-30
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0180"
down_revision: str | None = "0170"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEED_DATE = datetime(2025, 8, 7, tzinfo=UTC)
# model: input, cached input, output (USD per 1M tokens), in force from
PRICES = {
    "o1": ("15.00", "7.50", "60.00", SEED_DATE),
    "o1-mini": ("1.10", "0.55", "4.40", SEED_DATE),
    "o1-pro": ("150.00", None, "600.00", SEED_DATE),
    "o3-mini": ("1.10", "0.55", "4.40", SEED_DATE),
    "o3-pro": ("20.00", None, "80.00", SEED_DATE),
    "o3-deep-research": ("10.00", "2.50", "40.00", SEED_DATE),
    "o4-mini-deep-research": ("2.00", "0.50", "8.00", SEED_DATE),
    "gpt-4o-2024-05-13": ("5.00", None, "15.00", SEED_DATE),
    "chatgpt-4o-latest": ("5.00", None, "15.00", SEED_DATE),
    "gpt-4-turbo": ("10.00", None, "30.00", SEED_DATE),
    "gpt-4-1106-preview": ("10.00", None, "30.00", SEED_DATE),
    "gpt-4-0125-preview": ("10.00", None, "30.00", SEED_DATE),
    "gpt-4-vision-preview": ("10.00", None, "30.00", SEED_DATE),
    "gpt-4.5-preview": ("75.00", "37.50", "150.00", SEED_DATE),
    "gpt-4": ("30.00", None, "60.00", SEED_DATE),
    "gpt-4-32k": ("60.00", None, "120.00", SEED_DATE),
    "gpt-3.5-turbo-instruct": ("1.50", None, "2.00", SEED_DATE),
    "gpt-5-pro": ("15.00", None, "120.00", datetime(2025, 10, 6, tzinfo=UTC)),
}

INSERT = sa.text(
    "INSERT INTO prices (model, input_per_mtok, cached_input_per_mtok, output_per_mtok, effective_from) "
    "VALUES (:model, CAST(:input AS numeric), CAST(:cached AS numeric), CAST(:output AS numeric), :at) "
    "ON CONFLICT (model, effective_from) DO NOTHING"
)
# Only the rows this migration wrote: an admin's row for the same model and date differs in price.
DELETE = sa.text(
    "DELETE FROM prices WHERE model = :model AND effective_from = :at "
    "AND input_per_mtok = CAST(:input AS numeric) AND output_per_mtok = CAST(:output AS numeric) "
    "AND cached_input_per_mtok IS NOT DISTINCT FROM CAST(:cached AS numeric)"
)


def upgrade() -> None:
    for model, (input_price, cached, output_price, at) in PRICES.items():
        op.execute(
            INSERT.bindparams(model=model, input=input_price, cached=cached, output=output_price, at=at)
        )


def downgrade() -> None:
    for model, (input_price, cached, output_price, at) in PRICES.items():
        op.execute(
            DELETE.bindparams(model=model, input=input_price, cached=cached, output=output_price, at=at)
        )
