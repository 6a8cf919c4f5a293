"""The SQL schema as SQLAlchemy Core tables (the migrations create the same; a test compares them).

Times are BIGINT seconds since the epoch, portable across SQLite and PostgreSQL. Secrets appear only
as keyed hashes; private signing keys only sealed (AES-256-GCM).
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "apis",
    "client_api_access",
    "clients",
    "metadata",
    "opaque_access_tokens",
    "revoked_jwts",
    "settings",
    "signing_keys",
    "used_values",
    "users",
]

metadata = sa.MetaData()

apis = sa.Table(
    "apis",
    metadata,
    sa.Column("identifier", sa.String(2048), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("token_format", sa.String(16), nullable=False),
    sa.Column("access_token_ttl", sa.Integer, nullable=False),
    sa.Column("signing_alg", sa.String(16), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

clients = sa.Table(
    "clients",
    metadata,
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

client_api_access = sa.Table(
    "client_api_access",
    metadata,
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

users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("username", sa.String(255), nullable=False, unique=True),
    sa.Column("password_hash", sa.Text, nullable=True),
    sa.Column("email", sa.String(320), nullable=True),
    sa.Column("email_verified", sa.Boolean, nullable=False),
    sa.Column("name", sa.String(200), nullable=True),
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("kid", sa.String(128), primary_key=True),
    sa.Column("alg", sa.String(16), nullable=False),
    sa.Column("public_jwk", sa.JSON, nullable=False),
    sa.Column("sealed_private_key", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("activate_at", sa.BigInteger, nullable=False),
    sa.Column("retire_at", sa.BigInteger, nullable=True),
    sa.Column("remove_at", sa.BigInteger, nullable=True),
)

opaque_access_tokens = sa.Table(
    "opaque_access_tokens",
    metadata,
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
    sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
    sa.Column("revoked", sa.Boolean, nullable=False),
)

revoked_jwts = sa.Table(
    "revoked_jwts",
    metadata,
    sa.Column("jti", sa.String(255), primary_key=True),
    sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
)

used_values = sa.Table(
    "used_values",
    metadata,
    sa.Column("namespace", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(512), primary_key=True),
    sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
)

settings = sa.Table(
    "settings",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
