"""The initial schema: APIs, clients and their access, users, signing keys, token state.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "apis",
        sa.Column("identifier", sa.String(2048), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("token_format", sa.String(16), nullable=False),
        sa.Column("access_token_ttl", sa.Integer, nullable=False),
        sa.Column("signing_alg", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "clients",
        sa.Column("client_id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("auth_method", sa.String(32), nullable=False),
        sa.Column("grant_types", sa.JSON, nullable=False),
        sa.Column("redirect_uris", sa.JSON, nullable=False),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("jwks", sa.JSON, nullable=True),
        sa.Column("jwks_uri", sa.String(2048), nullable=True),
        sa.Column("secret_hash", sa.String(64), nullable=True),
        sa.Column("previous_secret_hash", sa.String(64), nullable=True),
        sa.Column("previous_secret_expires_at", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "client_api_access",
        sa.Column(
            "client_id",
            sa.String(128),
            sa.ForeignKey("clients.client_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "api",
            sa.String(2048),
            sa.ForeignKey("apis.identifier", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("may_request", sa.Boolean, nullable=False),
        sa.Column("may_introspect", sa.Boolean, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(255), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("email_verified", sa.Boolean, nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(128), primary_key=True),
        sa.Column("alg", sa.String(16), nullable=False),
        sa.Column("public_jwk", sa.JSON, nullable=False),
        sa.Column("sealed_private_key", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("activate_at", sa.BigInteger, nullable=False),
        sa.Column("retire_at", sa.BigInteger, nullable=True),
        sa.Column("remove_at", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "opaque_access_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("jti", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "client_id",
            sa.String(128),
            sa.ForeignKey("clients.client_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("audience", sa.String(2048), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("issued_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False),
    )
    op.create_index("ix_opaque_access_tokens_expires_at", "opaque_access_tokens", ["expires_at"])
    op.create_table(
        "revoked_jwts",
        sa.Column("jti", sa.String(255), primary_key=True),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_revoked_jwts_expires_at", "revoked_jwts", ["expires_at"])
    op.create_table(
        "used_values",
        sa.Column("namespace", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(512), primary_key=True),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_used_values_expires_at", "used_values", ["expires_at"])
    op.create_table(
        "settings",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "settings",
        "used_values",
        "revoked_jwts",
        "opaque_access_tokens",
        "signing_keys",
        "users",
        "client_api_access",
        "clients",
        "apis",
    ):
        op.drop_table(table)
