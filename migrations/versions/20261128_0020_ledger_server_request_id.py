"""The ledger's identity is Déjà's own request id; the client's id moves beside it.

`request_id` stays the unique key but from now on always holds an id the server made. The
id a client sends (X-Client-Request-Id or X-Request-Id) goes to `client_request_id`: not
unique, not trusted, indexed per tenant for look-ups. Rows booked before this revision keep
what they have (their request_id may be a client's).

Revision ID: 0020
Revises: 0004
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("ledger", sa.Column("client_request_id", sa.String(length=128), nullable=True))
    op.create_index(
        "ix_ledger_tenant_client_request", "ledger", ["tenant_id", "client_request_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_ledger_tenant_client_request", table_name="ledger")
    op.drop_column("ledger", "client_request_id")
