"""Migration 0006 (pushed authorization requests; the clients' PAR and token-exchange flags) on a
database holding 0003 data, on SQLite and the real PostgreSQL: clients and their API access survive
(no cascade through `clients`), the new flags default to off, the result matches the table
definitions, and the downgrade returns to 0003 without losing data."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from authgate.server.models import PushedRequest
from authgate.server.storage import Database, SqlStorage
from authgate.server.storage.migrate import schema_revision, upgrade
from authgate.server.storage.tables import metadata
from tests.support.migrations import downgrade

T0 = 1_700_000_000


async def _insert_0003_data(db: Database) -> None:
    statements = [
        "INSERT INTO apis VALUES ('https://api.test', 'api', '[\"read\"]', 'jwt', 300, 'RS256', 1)",
        "INSERT INTO clients (client_id, name, auth_method, grant_types, redirect_uris, roles, "
        "created_at) VALUES ('c1', 'old client', 'client_secret_basic', "
        "'[\"authorization_code\"]', '[\"https://a/cb\"]', '[]', 1)",
        "INSERT INTO client_api_access VALUES ('c1', 'https://api.test', '[\"read\"]', true, "
        "false)",
    ]
    async with db.begin() as conn:
        for statement in statements:
            await conn.execute(sa.text(statement))


async def _schema_diff(db: Database) -> list[Any]:
    async with db.begin() as conn:
        diff: list[Any] = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
        )
    return diff


async def test_upgrade_from_0003_and_back(empty_url: str) -> None:
    db = Database(empty_url)
    try:
        await upgrade(db, "0003")
        await _insert_0003_data(db)
        assert (await upgrade(db))[0] == "0003"  # to the head, which the metadata describes
        assert await _schema_diff(db) == []
        storage = SqlStorage(db)
        client = await storage.get_client("c1")
        assert client is not None
        assert [a.api for a in client.access] == ["https://api.test"]  # no cascade on the way
        assert not client.require_pushed_requests
        assert not client.exchange_impersonation
        assert not client.exchange_external
        pushed = PushedRequest("h", "c1", (("response_type", "code"),), T0, T0 + 60)
        await storage.save_pushed_request(pushed)
        assert await storage.use_pushed_request("h", "c1", T0) == pushed

        async with db.exclusive() as conn:
            await conn.run_sync(downgrade, "0003")
        assert await schema_revision(db) == "0003"
        async with db.begin() as conn:
            tables = await conn.run_sync(lambda sync: set(sa.inspect(sync).get_table_names()))
            columns = await conn.run_sync(
                lambda sync: {c["name"] for c in sa.inspect(sync).get_columns("clients")}
            )
            access = (
                await conn.execute(sa.text("SELECT count(*) FROM client_api_access"))
            ).scalar()
        assert "pushed_requests" not in tables
        assert "require_pushed_requests" not in columns
        assert access == 1
        await upgrade(db)
        assert await _schema_diff(db) == []
    finally:
        await db.close()
