"""The SQL schema as SQLAlchemy Core tables (the migrations create the same; a test compares them).

Times are BIGINT seconds since the epoch, portable across SQLite and PostgreSQL. Secrets appear only
as keyed hashes; private signing keys only sealed (AES-256-GCM).
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "apis",
    "audit_events",
    "authorization_codes",
    "client_api_access",
    "clients",
    "consents",
    "device_authorizations",
    "grant_tokens",
    "initial_access_tokens",
    "metadata",
    "opaque_access_tokens",
    "pushed_requests",
    "refresh_families",
    "refresh_tokens",
    "revoked_grants",
    "revoked_jwts",
    "sessions",
    "settings",
    "signing_keys",
    "throttle",
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
    sa.Column("post_logout_redirect_uris", sa.JSON, nullable=False, server_default="[]"),
    sa.Column("require_pkce", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("always_issue_refresh_token", sa.Boolean, nullable=False, server_default=sa.false()),
    # RFC 9449: every token request must carry a DPoP proof (migration 0006).
    sa.Column("require_dpop", sa.Boolean, nullable=False, server_default=sa.false()),
    # Migration 0008: the ID token alg (NULL: RS256) and the security profile (NULL: none).
    sa.Column("id_token_signed_response_alg", sa.String(16), nullable=True),
    sa.Column("profile", sa.String(16), nullable=True),
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("jwks", sa.JSON, nullable=True),
    sa.Column("jwks_uri", sa.String(2048), nullable=True),
    sa.Column("require_pushed_requests", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("exchange_impersonation", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("exchange_external", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("secret_hash", sa.String(64), nullable=True),
    sa.Column("previous_secret_hash", sa.String(64), nullable=True),
    sa.Column("previous_secret_expires_at", sa.BigInteger, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    # Migration 0004: dynamic client registration (RFC 7591, RFC 7592).
    sa.Column("origin", sa.String(32), nullable=False, server_default="cli"),
    sa.Column("application_type", sa.String(16), nullable=True),
    sa.Column("registration_token_hash", sa.String(64), nullable=True),
    sa.Column("first_used_at", sa.BigInteger, nullable=True),
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
    sa.Column("client_id", sa.String(128), nullable=False),  # no foreign key: see _client_column
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("audience", sa.String(2048), nullable=False),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("issued_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
    sa.Column("revoked", sa.Boolean, nullable=False),
    sa.Column("grant_id", sa.String(64), nullable=True, index=True),
    sa.Column("jkt", sa.String(64), nullable=True),  # RFC 9449 §6: the DPoP key (0006)
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


# -- the user-facing flows (migration 0002) -----------------------------------------------------


def _client_fk() -> sa.Column[str]:
    # A deleted client takes its device requests with it.
    return sa.Column(
        "client_id",
        sa.String(128),
        sa.ForeignKey("clients.client_id", ondelete="CASCADE"),
        nullable=False,
    )


def _client_column(*, primary_key: bool = False) -> sa.Column[str]:
    # No foreign key (migration 0004): a client named by its metadata document URL lives in
    # memory only, yet has codes, consents and tokens; `delete_client` deletes a registered
    # client's rows itself.
    return sa.Column("client_id", sa.String(128), nullable=False, primary_key=primary_key)


def _user_fk(*, nullable: bool = False, primary_key: bool = False) -> sa.Column[str]:
    # A deleted user takes their sessions, consents, codes and refresh tokens with them.
    return sa.Column(
        "user_id",
        sa.String(64),
        sa.ForeignKey("users.user_id", ondelete="CASCADE"),
        nullable=nullable,
        primary_key=primary_key,
        index=not primary_key,
    )


# JWT access tokens issued under an authorization grant: what `revoke_grant` puts on the
# revocation list (opaque tokens carry their grant_id in their own table).
grant_tokens = sa.Table(
    "grant_tokens",
    metadata,
    sa.Column("jti", sa.String(255), primary_key=True),
    sa.Column("grant_id", sa.String(64), nullable=False, index=True),
    sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
)

# Grants revoked recently: a token recorded for one afterwards (a race with the replay that
# revoked it) is born revoked.
revoked_grants = sa.Table(
    "revoked_grants",
    metadata,
    sa.Column("grant_id", sa.String(64), primary_key=True),
    sa.Column("revoked_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
)

authorization_codes = sa.Table(
    "authorization_codes",
    metadata,
    sa.Column("code_hash", sa.String(64), primary_key=True),
    sa.Column("grant_id", sa.String(64), nullable=False),
    _client_column(),
    sa.Column("redirect_uri", sa.Text, nullable=False),
    sa.Column("redirect_uri_in_request", sa.Boolean, nullable=False),
    sa.Column("code_challenge", sa.String(128), nullable=True),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("audiences", sa.JSON, nullable=False),
    sa.Column("nonce", sa.Text, nullable=True),
    _user_fk(),
    sa.Column("auth_time", sa.BigInteger, nullable=False),
    sa.Column("amr", sa.JSON, nullable=False),
    sa.Column("issued_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
    sa.Column("used_at", sa.BigInteger, nullable=True),
    sa.Column("dpop_jkt", sa.String(64), nullable=True),  # RFC 9449 §10 (migration 0006)
)

# Pushed authorization requests (RFC 9126): used once (`used_at`), deleted once expired.
pushed_requests = sa.Table(
    "pushed_requests",
    metadata,
    sa.Column("uri_hash", sa.String(64), primary_key=True),
    _client_fk(),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
    sa.Column("used_at", sa.BigInteger, nullable=True),
)

# One row per refresh-token family: the row that `lock_family` locks, with the rotation state
# and the sealed response of the last rotation (the grace-window replay).
refresh_families = sa.Table(
    "refresh_families",
    metadata,
    sa.Column("family_id", sa.String(64), primary_key=True),
    sa.Column("grant_id", sa.String(64), nullable=False, index=True),
    _client_column(),
    _user_fk(),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("audiences", sa.JSON, nullable=False),
    sa.Column("auth_time", sa.BigInteger, nullable=False),
    sa.Column("amr", sa.JSON, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False, index=True),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("current_hash", sa.String(64), nullable=False),
    sa.Column("current_issued_at", sa.BigInteger, nullable=False),
    sa.Column("rotated_at", sa.BigInteger, nullable=True),
    sa.Column("replay", sa.LargeBinary, nullable=True),
    sa.Column("replay_scopes", sa.JSON, nullable=True),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
    sa.Column("jkt", sa.String(64), nullable=True),  # RFC 9449 §5: a public client's key (0006)
)

# The keyed hash of every refresh token ever issued in a family, so an old one is recognised.
refresh_tokens = sa.Table(
    "refresh_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column(
        "family_id",
        sa.String(64),
        sa.ForeignKey("refresh_families.family_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("generation", sa.Integer, nullable=False),
)

device_authorizations = sa.Table(
    "device_authorizations",
    metadata,
    sa.Column("device_code_hash", sa.String(64), primary_key=True),
    sa.Column("user_code_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("grant_id", sa.String(64), nullable=False),
    _client_fk(),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("audiences", sa.JSON, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
    sa.Column("interval", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("last_polled_at", sa.BigInteger, nullable=True),
    _user_fk(nullable=True),
    sa.Column("auth_time", sa.BigInteger, nullable=True),
    sa.Column("amr", sa.JSON, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)

consents = sa.Table(
    "consents",
    metadata,
    _user_fk(primary_key=True),
    _client_column(primary_key=True),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("audiences", sa.JSON, nullable=False),
    sa.Column("granted_at", sa.BigInteger, nullable=False),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("session_hash", sa.String(64), primary_key=True),
    _user_fk(),
    sa.Column("auth_time", sa.BigInteger, nullable=False),
    sa.Column("amr", sa.JSON, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("last_seen", sa.BigInteger, nullable=False, index=True),
)

throttle = sa.Table(
    "throttle",
    metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failure", sa.BigInteger, nullable=False, index=True),
    sa.Column("blocked_until", sa.BigInteger, nullable=False),
)

# Initial access tokens of the registration endpoint (RFC 7591 §3; migration 0004).
initial_access_tokens = sa.Table(
    "initial_access_tokens",
    metadata,
    sa.Column("token_id", sa.String(32), primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=True),
    sa.Column("max_uses", sa.Integer, nullable=True),
    sa.Column("uses", sa.Integer, nullable=False),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
)

# The audit trail (authgate.server.audit): append-only, purged after `[audit] retention`.
audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("at", sa.BigInteger, nullable=False, index=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("subject", sa.String(2048), nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
)
