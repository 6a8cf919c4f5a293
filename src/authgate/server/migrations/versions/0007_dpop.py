"""DPoP (RFC 9449): the key thumbprint that opaque access tokens and refresh-token families are
bound to, the `dpop_jkt` an authorization code is bound to (§10), and the per-client setting that
requires DPoP.

Plain ADD/DROP COLUMN (see 0002: a SQLite batch copy of `clients` would cascade-delete the rows
that refer to it); every new column is nullable or has a server default, so existing rows stay
valid and mean "not bound" / "not required".

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_JKT = 64  # a base64url SHA-256 thumbprint is 43 characters


def upgrade() -> None:
    op.add_column("opaque_access_tokens", sa.Column("jkt", sa.String(_JKT), nullable=True))
    op.add_column("refresh_families", sa.Column("jkt", sa.String(_JKT), nullable=True))
    op.add_column("authorization_codes", sa.Column("dpop_jkt", sa.String(_JKT), nullable=True))
    op.add_column(
        "clients",
        sa.Column("require_dpop", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("clients", "require_dpop")
    op.drop_column("authorization_codes", "dpop_jkt")
    op.drop_column("refresh_families", "jkt")
    op.drop_column("opaque_access_tokens", "jkt")
