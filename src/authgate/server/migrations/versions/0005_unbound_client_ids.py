"""Codes, consents, refresh-token families and opaque access tokens no longer need a row in
`clients`: a client named by the URL of its metadata document (draft-ietf-oauth-client-id-metadata-
document) is kept in memory only. Deleting a registered client deletes these rows explicitly
(`SqlRegistry.delete_client`) instead of by cascade.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The tables whose client_id loses (or, going down, regains) its foreign key.
_TABLES = ("authorization_codes", "consents", "refresh_families", "opaque_access_tokens")
# SQLite's foreign keys have no names; batch mode names them by this convention to find them.
_CONVENTION = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def _client_fk_name(bind: Any, table: str) -> str | None:
    for fk in sa.inspect(bind).get_foreign_keys(table):
        if fk["referred_table"] == "clients":
            name: str | None = fk.get("name")
            return name
    return None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        for table in _TABLES:
            name = _client_fk_name(bind, table)
            if name is not None:
                op.drop_constraint(name, table, type_="foreignkey")
        return
    # SQLite rebuilds each table. Dropping the old `refresh_families` while foreign keys are on
    # would cascade to `refresh_tokens` (an implicit DELETE), so those rows are kept aside.
    op.execute("CREATE TEMPORARY TABLE keep_refresh_tokens AS SELECT * FROM refresh_tokens")
    for table in _TABLES:
        with op.batch_alter_table(table, recreate="always", naming_convention=_CONVENTION) as batch:
            batch.drop_constraint(f"fk_{table}_client_id_clients", type_="foreignkey")
    op.execute(
        "INSERT INTO refresh_tokens SELECT * FROM keep_refresh_tokens "
        "WHERE token_hash NOT IN (SELECT token_hash FROM refresh_tokens)"
    )
    op.execute("DROP TABLE keep_refresh_tokens")


def downgrade() -> None:
    bind = op.get_bind()
    # Rows of clients that are not registered cannot keep a foreign key: they go.
    for table in _TABLES:
        op.execute(
            f"DELETE FROM {table} WHERE client_id NOT IN (SELECT client_id FROM clients)"  # noqa: S608
        )
    if bind.dialect.name != "sqlite":
        for table in _TABLES:
            op.create_foreign_key(
                f"{table}_client_id_fkey",
                table,
                "clients",
                ["client_id"],
                ["client_id"],
                ondelete="CASCADE",
            )
        return
    op.execute("CREATE TEMPORARY TABLE keep_refresh_tokens AS SELECT * FROM refresh_tokens")
    for table in _TABLES:
        with op.batch_alter_table(table, recreate="always", naming_convention=_CONVENTION) as batch:
            batch.create_foreign_key(
                f"fk_{table}_client_id_clients",
                "clients",
                ["client_id"],
                ["client_id"],
                ondelete="CASCADE",
            )
    op.execute(
        "INSERT INTO refresh_tokens SELECT * FROM keep_refresh_tokens "
        "WHERE token_hash NOT IN (SELECT token_hash FROM refresh_tokens)"
    )
    op.execute("DROP TABLE keep_refresh_tokens")
