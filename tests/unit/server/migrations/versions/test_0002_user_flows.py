"""Migration 0002 (the user-facing flows) on a database that holds 0001 data, on SQLite and the real
PostgreSQL: existing rows survive with sensible defaults, the result matches the table definitions
exactly, and the downgrade returns to 0001 without losing the 0001 data."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from authgate.server.models import ConsentGrant
from authgate.server.storage import Database, SqlStorage
from authgate.server.storage.migrate import head_revision, schema_revision, upgrade
from authgate.server.storage.tables import metadata
from tests.support.migrations import downgrade

FLOW_TABLES = {
    "authorization_codes",
    "consents",
    "device_authorizations",
    "grant_tokens",
    "refresh_families",
    "refresh_tokens",
    "revoked_grants",
    "sessions",
    "throttle",
}


async def _insert_0001_data(db: Database) -> None:
    statements = [
        "INSERT INTO apis VALUES ('https://api.test', 'api', '[\"read\"]', 'opaque', 300, "
        "'RS256', 1)",
        "INSERT INTO clients (client_id, name, auth_method, grant_types, redirect_uris, roles, "
        "created_at) VALUES ('c1', 'old client', 'client_secret_basic', "
        "'[\"client_credentials\"]', '[]', '[]', 1)",
        "INSERT INTO client_api_access VALUES ('c1', 'https://api.test', '[\"read\"]', true, "
        "false)",
        "INSERT INTO opaque_access_tokens VALUES ('" + "a" * 64 + "', 'j1', 'c1', 'c1', "
        "'https://api.test', 'read', '[]', 1, 9999999999, false)",
        "INSERT INTO users (user_id, username, email_verified, roles, created_at) "
        "VALUES ('u1', 'alice', false, '[]', 1)",
    ]
    async with db.begin() as conn:
        for statement in statements:
            await conn.execute(sa.text(statement))


async def _tables(db: Database) -> set[str]:
    async with db.begin() as conn:
        names: list[str] = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
    return set(names)


async def _schema_diff(db: Database) -> list[Any]:
    async with db.begin() as conn:
        diff: list[Any] = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
        )
    return diff


async def test_upgrade_from_0001_keeps_data_and_matches_the_tables(empty_url: str) -> None:
    db = Database(empty_url)
    try:
        assert await upgrade(db, "0001") == (None, "0001")
        await _insert_0001_data(db)
        assert await upgrade(db) == ("0001", head_revision())  # through 0002 to the head
        assert await _schema_diff(db) == []
        assert await _tables(db) >= FLOW_TABLES

        storage = SqlStorage(db)
        client = await storage.get_client("c1")
        assert client is not None
        assert client.name == "old client"
        assert [a.api for a in client.access] == ["https://api.test"]  # no cascade on the way
        assert client.post_logout_redirect_uris == ()
        assert not client.require_pkce
        assert not client.always_issue_refresh_token
        token = await storage.get_opaque_token("a" * 64)
        assert token is not None
        assert token.grant_id is None
        assert not token.revoked
        # The new tables work with the old rows.
        grant = ConsentGrant("u1", "c1", frozenset({"openid"}), frozenset(), 5)
        await storage.save_consent(grant)
        assert await storage.list_consents() == [grant]
    finally:
        await db.close()


async def test_downgrade_to_0001_and_upgrade_again(empty_url: str) -> None:
    db = Database(empty_url)
    try:
        await upgrade(db, "0001")
        await _insert_0001_data(db)
        await upgrade(db)
        async with db.exclusive() as conn:
            await conn.run_sync(downgrade, "0001")
        assert await schema_revision(db) == "0001"
        assert not FLOW_TABLES & await _tables(db)
        async with db.begin() as conn:
            names = (await conn.execute(sa.text("SELECT name FROM clients"))).scalars().all()
            kept = (
                await conn.execute(sa.text("SELECT count(*) FROM opaque_access_tokens"))
            ).scalar()
            access = (
                await conn.execute(sa.text("SELECT count(*) FROM client_api_access"))
            ).scalar()
            columns = await conn.run_sync(
                lambda sync: {c["name"] for c in sa.inspect(sync).get_columns("clients")}
            )
        assert names == ["old client"]
        assert (kept, access) == (1, 1)
        assert "require_pkce" not in columns
        await upgrade(db)
        assert await _schema_diff(db) == []
    finally:
        await db.close()
