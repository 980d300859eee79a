"""The dashboard's sessions signed out before they expired.

A dashboard session is a signed cookie; signing out only cleared it in the browser, so a copy
taken before (a shared machine, a proxy's log) kept working for the rest of its 8 hours. Each
session now has an id, and signing out records it here until the session would have expired;
a page resolves no session whose id is here.

Revision ID: 0250
Revises: 0240
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0250"
down_revision: str | None = "0240"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ui_signed_out",
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_ui_signed_out")),
    )
    op.create_index("ix_ui_signed_out_expires_at", "ui_signed_out", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_ui_signed_out_expires_at", table_name="ui_signed_out")
    op.drop_table("ui_signed_out")
