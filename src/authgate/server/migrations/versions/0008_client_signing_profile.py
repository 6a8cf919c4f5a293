"""Per-client ID token signing (OpenID Connect Registration §2 `id_token_signed_response_alg`)
and the security profile a client is held to (FAPI 2.0).

Plain ADD/DROP COLUMN (see 0002: a SQLite batch copy of `clients` would cascade-delete the rows
that refer to it); both columns are nullable, so existing rows stay valid and mean "RS256" and
"no profile".

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    alg = sa.Column("id_token_signed_response_alg", sa.String(16), nullable=True)
    op.add_column("clients", alg)
    op.add_column("clients", sa.Column("profile", sa.String(16), nullable=True))


def downgrade() -> None:
    op.drop_column("clients", "profile")
    op.drop_column("clients", "id_token_signed_response_alg")
