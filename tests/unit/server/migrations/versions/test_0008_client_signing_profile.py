"""Migration 0008 (per-client ID token alg and security profile) on a database that holds 0007
data, on SQLite and the real PostgreSQL: existing clients survive as "RS256" and "no profile",
the result matches the table definitions exactly, new settings round-trip, and the downgrade
returns to 0007 without losing clients."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa

from authgate.server.storage import Database, SqlStorage
from authgate.server.storage.migrate import schema_revision, upgrade
from tests.support.migrations import downgrade
from tests.unit.server.migrations.versions.test_0002_user_flows import _schema_diff


async def _insert_0007_client(db: Database) -> None:
    async with db.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO clients (client_id, name, auth_method, grant_types, redirect_uris, "
                "roles, created_at) VALUES ('c1', 'old client', 'private_key_jwt', "
                "'[\"authorization_code\"]', '[\"https://app.test/cb\"]', '[]', 1)"
            )
        )


async def _columns(db: Database) -> set[str]:
    async with db.begin() as conn:
        return set(
            await conn.run_sync(
                lambda sync: {c["name"] for c in sa.inspect(sync).get_columns("clients")}
            )
        )


async def test_upgrade_from_0007_keeps_clients_and_back(empty_url: str) -> None:
    db = Database(empty_url)
    try:
        await upgrade(db, "0007")
        await _insert_0007_client(db)
        assert (await upgrade(db))[0] == "0007"
        assert await _schema_diff(db) == []
        storage = SqlStorage(db)
        old = await storage.get_client("c1")
        assert old is not None
        assert (old.id_token_alg, old.profile) == ("RS256", None)
        changed = dataclasses.replace(old, id_token_alg="ES256", profile="fapi2")
        assert await storage.replace_client(changed)
        again = await storage.get_client("c1")
        assert again is not None
        assert (again.id_token_alg, again.profile) == ("ES256", "fapi2")

        async with db.exclusive() as conn:
            await conn.run_sync(downgrade, "0007")
        assert await schema_revision(db) == "0007"
        assert {"id_token_signed_response_alg", "profile"}.isdisjoint(await _columns(db))
        async with db.begin() as conn:
            names = (await conn.execute(sa.text("SELECT name FROM clients"))).scalars().all()
        assert names == ["old client"]
        await upgrade(db)
        assert await _schema_diff(db) == []
    finally:
        await db.close()
