"""Pushed authorization requests (RFC 9126) and the clients' PAR and token-exchange (RFC 8693)
settings.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_CLIENT_FLAGS = ("require_pushed_requests", "exchange_impersonation", "exchange_external")


def upgrade() -> None:
    # Plain ALTER TABLE … ADD COLUMN (see 0002: a batch copy of `clients` would cascade deletes).
    for column in _CLIENT_FLAGS:
        op.add_column(
            "clients", sa.Column(column, sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.create_table(
        "pushed_requests",
        sa.Column("uri_hash", sa.String(64), primary_key=True),
        sa.Column(
            "client_id",
            sa.String(128),
            sa.ForeignKey("clients.client_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("used_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_pushed_requests_expires_at", "pushed_requests", ["expires_at"])


def downgrade() -> None:
    op.drop_table("pushed_requests")
    for column in reversed(_CLIENT_FLAGS):
        op.drop_column("clients", column)
