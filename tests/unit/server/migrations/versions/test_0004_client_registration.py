"""Migration 0004 (dynamic client registration) on a database holding 0003 data, on SQLite and
the real PostgreSQL: existing clients become `origin = "cli"` with nothing else changed (and
their tokens and consents stay: no table is recreated), the schema then matches the table
definitions, and the downgrade returns to 0003 keeping the clients."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from authgate.server.models import InitialAccessToken
from authgate.server.storage import Database, SqlStorage
from authgate.server.storage.migrate import schema_revision, upgrade
from authgate.server.storage.tables import metadata
from tests.support.migrations import downgrade


async def test_0003_data_survives_0004_and_its_downgrade(empty_url: str) -> None:
    db = Database(empty_url)
    try:
        await upgrade(db, "0003")
        async with db.begin() as conn:
            for statement in (
                "INSERT INTO users (user_id, username, email_verified, roles, created_at) "
                "VALUES ('u1', 'alice', false, '[]', 1)",
                "INSERT INTO clients (client_id, name, auth_method, grant_types, redirect_uris, "
                "roles, created_at) VALUES ('c1', 'old client', 'client_secret_basic', "
                "'[\"client_credentials\"]', '[]', '[]', 1)",
                "INSERT INTO consents (user_id, client_id, scopes, audiences, granted_at) "
                "VALUES ('u1', 'c1', '[]', '[]', 1)",
            ):
                await conn.execute(sa.text(statement))
        assert (await upgrade(db))[0] == "0003"
        storage = SqlStorage(db)
        client = await storage.get_client("c1")
        assert client is not None
        assert (client.origin, client.application_type, client.first_used_at) == ("cli", None, None)
        assert client.registration_token_hash is None
        assert await storage.get_consent("u1", "c1") is not None  # `clients` was not recreated
        await storage.create_initial_access_token(
            InitialAccessToken("t1", "h" * 64, created_at=1, max_uses=1)
        )
        async with db.begin() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
        assert diff == []
        async with db.exclusive() as conn:
            await conn.run_sync(downgrade, "0003")
        assert await schema_revision(db) == "0003"
        async with db.begin() as conn:
            names = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
            columns = await conn.run_sync(
                lambda sync: {c["name"] for c in sa.inspect(sync).get_columns("clients")}
            )
            consents = (await conn.execute(sa.text("SELECT count(*) FROM consents"))).scalar()
        assert "initial_access_tokens" not in names
        assert "origin" not in columns
        assert consents == 1
    finally:
        await db.close()
