"""Migration 0007 (DPoP) on a database that holds 0003 data, on SQLite and the real PostgreSQL:
existing clients and tokens survive as "DPoP not required" and "not bound", the result matches
the table definitions exactly, new rows keep their keys, and the downgrade returns to 0003
without losing data."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa

from authgate.server.models import OpaqueAccessToken
from authgate.server.storage import Database, SqlStorage
from authgate.server.storage.migrate import schema_revision, upgrade
from tests.support.migrations import downgrade
from tests.unit.server.migrations.versions.test_0002_user_flows import _schema_diff

JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"


async def _insert_0003_data(db: Database) -> None:
    statements = [
        "INSERT INTO apis VALUES ('https://api.test', 'api', '[\"read\"]', 'opaque', 300, "
        "'RS256', 1)",
        "INSERT INTO clients (client_id, name, auth_method, grant_types, redirect_uris, roles, "
        "created_at) VALUES ('c1', 'old client', 'client_secret_basic', "
        "'[\"client_credentials\"]', '[]', '[]', 1)",
        "INSERT INTO opaque_access_tokens (token_hash, jti, client_id, subject, audience, scope, "
        "roles, issued_at, expires_at, revoked) VALUES ('" + "a" * 64 + "', 'j1', 'c1', 'c1', "
        "'https://api.test', 'read', '[]', 1, 9999999999, false)",
    ]
    async with db.begin() as conn:
        for statement in statements:
            await conn.execute(sa.text(statement))


async def _columns(db: Database, table: str) -> set[str]:
    async with db.begin() as conn:
        return set(
            await conn.run_sync(
                lambda sync: {c["name"] for c in sa.inspect(sync).get_columns(table)}
            )
        )


async def test_upgrade_from_0003_keeps_data_unbound_and_back(empty_url: str) -> None:
    db = Database(empty_url)
    try:
        await upgrade(db, "0003")
        await _insert_0003_data(db)
        assert (await upgrade(db))[0] == "0003"  # to the head, which the metadata describes
        storage = SqlStorage(db)
        client = await storage.get_client("c1")
        assert client is not None
        assert not client.require_dpop
        old = await storage.get_opaque_token("a" * 64)
        assert old is not None
        assert old.jkt is None
        await upgrade(db)
        assert await _schema_diff(db) == []
        bound = dataclasses.replace(old, token_hash="b" * 64, jti="j2", jkt=JKT)
        await storage.save_opaque_token(bound)
        assert await storage.get_opaque_token("b" * 64) == bound
        assert isinstance(bound, OpaqueAccessToken)

        async with db.exclusive() as conn:
            await conn.run_sync(downgrade, "0003")
        assert await schema_revision(db) == "0003"
        assert "require_dpop" not in await _columns(db, "clients")
        assert "jkt" not in await _columns(db, "opaque_access_tokens")
        assert "jkt" not in await _columns(db, "refresh_families")
        assert "dpop_jkt" not in await _columns(db, "authorization_codes")
        async with db.begin() as conn:
            kept = (
                await conn.execute(sa.text("SELECT count(*) FROM opaque_access_tokens"))
            ).scalar()
            names = (await conn.execute(sa.text("SELECT name FROM clients"))).scalars().all()
        assert (kept, names) == (2, ["old client"])
        await upgrade(db)
        assert await _schema_diff(db) == []
    finally:
        await db.close()
