"""Dynamic client registration (RFC 7591, RFC 7592): initial access tokens, and per client its
origin, application type, the hash of its registration access token and its first use.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "initial_access_tokens",
        sa.Column("token_id", sa.String(32), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("max_uses", sa.Integer, nullable=True),
        sa.Column("uses", sa.Integer, nullable=False),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
    )
    # Plain ALTER TABLE … ADD COLUMN, never a batch "move and copy": on SQLite that recreates
    # `clients`, and with foreign keys on, dropping it would cascade-delete every row that refers
    # to a client (as in 0002). Existing clients were all made by the CLI.
    op.add_column(
        "clients", sa.Column("origin", sa.String(32), nullable=False, server_default="cli")
    )
    op.add_column("clients", sa.Column("application_type", sa.String(16), nullable=True))
    op.add_column("clients", sa.Column("registration_token_hash", sa.String(64), nullable=True))
    op.add_column("clients", sa.Column("first_used_at", sa.BigInteger, nullable=True))


def downgrade() -> None:
    # ALTER TABLE … DROP COLUMN (SQLite 3.35+), for the same reason as in `upgrade`.
    for column in ("first_used_at", "registration_token_hash", "application_type", "origin"):
        op.drop_column("clients", column)
    op.drop_table("initial_access_tokens")
