"""The user-facing flows: authorization codes, refresh-token families, device authorizations,
consents, sessions, throttle counters; grant ids on access tokens; OIDC and PKCE client settings.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _client_fk() -> sa.Column[str]:
    return sa.Column(
        "client_id",
        sa.String(128),
        sa.ForeignKey("clients.client_id", ondelete="CASCADE"),
        nullable=False,
    )


def _user_fk(*, nullable: bool = False, primary_key: bool = False) -> sa.Column[str]:
    return sa.Column(
        "user_id",
        sa.String(64),
        sa.ForeignKey("users.user_id", ondelete="CASCADE"),
        nullable=nullable,
        primary_key=primary_key,
    )


def upgrade() -> None:
    # Plain ALTER TABLE … ADD COLUMN, never a batch "move and copy": on SQLite that drops and
    # recreates the table, and with foreign keys on, dropping `clients` would cascade-delete
    # every row that refers to a client.
    op.add_column(
        "clients",
        sa.Column("post_logout_redirect_uris", sa.JSON, nullable=False, server_default="[]"),
    )
    op.add_column(
        "clients", sa.Column("require_pkce", sa.Boolean, nullable=False, server_default=sa.false())
    )
    op.add_column(
        "clients",
        sa.Column(
            "always_issue_refresh_token", sa.Boolean, nullable=False, server_default=sa.false()
        ),
    )
    op.add_column("opaque_access_tokens", sa.Column("grant_id", sa.String(64), nullable=True))
    op.create_index("ix_opaque_access_tokens_grant_id", "opaque_access_tokens", ["grant_id"])

    op.create_table(
        "grant_tokens",
        sa.Column("jti", sa.String(255), primary_key=True),
        sa.Column("grant_id", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_grant_tokens_grant_id", "grant_tokens", ["grant_id"])
    op.create_index("ix_grant_tokens_expires_at", "grant_tokens", ["expires_at"])
    op.create_table(
        "revoked_grants",
        sa.Column("grant_id", sa.String(64), primary_key=True),
        sa.Column("revoked_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_revoked_grants_expires_at", "revoked_grants", ["expires_at"])

    op.create_table(
        "authorization_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("grant_id", sa.String(64), nullable=False),
        _client_fk(),
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
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("used_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_authorization_codes_user_id", "authorization_codes", ["user_id"])
    op.create_index("ix_authorization_codes_expires_at", "authorization_codes", ["expires_at"])

    op.create_table(
        "refresh_families",
        sa.Column("family_id", sa.String(64), primary_key=True),
        sa.Column("grant_id", sa.String(64), nullable=False),
        _client_fk(),
        _user_fk(),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("audiences", sa.JSON, nullable=False),
        sa.Column("auth_time", sa.BigInteger, nullable=False),
        sa.Column("amr", sa.JSON, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("current_hash", sa.String(64), nullable=False),
        sa.Column("current_issued_at", sa.BigInteger, nullable=False),
        sa.Column("rotated_at", sa.BigInteger, nullable=True),
        sa.Column("replay", sa.LargeBinary, nullable=True),
        sa.Column("replay_scopes", sa.JSON, nullable=True),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_refresh_families_grant_id", "refresh_families", ["grant_id"])
    op.create_index("ix_refresh_families_user_id", "refresh_families", ["user_id"])
    op.create_index("ix_refresh_families_created_at", "refresh_families", ["created_at"])
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column(
            "family_id",
            sa.String(64),
            sa.ForeignKey("refresh_families.family_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("generation", sa.Integer, nullable=False),
    )
    op.create_index("ix_refresh_tokens_family_id", "refresh_tokens", ["family_id"])

    op.create_table(
        "device_authorizations",
        sa.Column("device_code_hash", sa.String(64), primary_key=True),
        sa.Column("user_code_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("grant_id", sa.String(64), nullable=False),
        _client_fk(),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("audiences", sa.JSON, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("interval", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("last_polled_at", sa.BigInteger, nullable=True),
        _user_fk(nullable=True),
        sa.Column("auth_time", sa.BigInteger, nullable=True),
        sa.Column("amr", sa.JSON, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_device_authorizations_user_id", "device_authorizations", ["user_id"])
    op.create_index("ix_device_authorizations_expires_at", "device_authorizations", ["expires_at"])

    op.create_table(
        "consents",
        _user_fk(primary_key=True),
        sa.Column(
            "client_id",
            sa.String(128),
            sa.ForeignKey("clients.client_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("audiences", sa.JSON, nullable=False),
        sa.Column("granted_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("session_hash", sa.String(64), primary_key=True),
        _user_fk(),
        sa.Column("auth_time", sa.BigInteger, nullable=False),
        sa.Column("amr", sa.JSON, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_seen", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    op.create_index("ix_sessions_last_seen", "sessions", ["last_seen"])
    op.create_table(
        "throttle",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure", sa.BigInteger, nullable=False),
        sa.Column("blocked_until", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_throttle_last_failure", "throttle", ["last_failure"])


def downgrade() -> None:
    for table in (
        "throttle",
        "sessions",
        "consents",
        "device_authorizations",
        "refresh_tokens",
        "refresh_families",
        "authorization_codes",
        "revoked_grants",
        "grant_tokens",
    ):
        op.drop_table(table)
    op.drop_index("ix_opaque_access_tokens_grant_id", "opaque_access_tokens")
    # ALTER TABLE … DROP COLUMN (SQLite 3.35+), for the same reason as in `upgrade`.
    op.drop_column("opaque_access_tokens", "grant_id")
    for column in ("always_issue_refresh_token", "require_pkce", "post_logout_redirect_uris"):
        op.drop_column("clients", column)
