"""Migration 0005 (codes, consents, refresh families and opaque tokens without a foreign key to
`clients`) on a database holding 0003 data, on SQLite and the real PostgreSQL: every row survives,
refresh tokens included (SQLite rebuilds their families' table, whose drop would cascade), the
result matches the table definitions, and the downgrade drops only rows of unregistered clients."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from authgate.server.storage import Database
from authgate.server.storage.migrate import upgrade
from authgate.server.storage.tables import metadata
from tests.support.migrations import downgrade

URL_CLIENT = "https://app.example.test/client.json"


_DATA = [
    "INSERT INTO clients (client_id, name, auth_method, grant_types, redirect_uris, roles, "
    "created_at) VALUES ('c1', 'app', 'none', '[\"authorization_code\"]', '[]', '[]', 1)",
    "INSERT INTO users (user_id, username, email_verified, roles, created_at) "
    "VALUES ('u1', 'alice', false, '[]', 1)",
    "INSERT INTO authorization_codes (code_hash, grant_id, client_id, redirect_uri, "
    "redirect_uri_in_request, scopes, audiences, user_id, auth_time, amr, issued_at, expires_at) "
    "VALUES ('h1', 'g1', 'c1', 'https://a/cb', true, '[]', '[]', 'u1', 1, '[]', 1, 99)",
    "INSERT INTO consents VALUES ('u1', 'c1', '[]', '[]', 1)",
    "INSERT INTO refresh_families (family_id, grant_id, client_id, user_id, scopes, audiences, "
    "auth_time, amr, created_at, generation, current_hash, current_issued_at) "
    "VALUES ('f1', 'g2', 'c1', 'u1', '[]', '[]', 1, '[]', 1, 1, 't2', 1)",
    "INSERT INTO refresh_tokens VALUES ('t1', 'f1', 0)",
    "INSERT INTO refresh_tokens VALUES ('t2', 'f1', 1)",
    "INSERT INTO opaque_access_tokens (token_hash, jti, client_id, subject, audience, scope, "
    "roles, issued_at, expires_at, revoked) "
    "VALUES ('o1', 'j1', 'c1', 'u1', 'https://api', '', '[]', 1, 99, false)",
]
_COUNTED = (
    "authorization_codes",
    "consents",
    "refresh_families",
    "refresh_tokens",
    "opaque_access_tokens",
)


async def _counts(db: Database) -> dict[str, int]:
    async with db.begin() as conn:
        return {
            t: (await conn.execute(sa.text(f"SELECT count(*) FROM {t}"))).scalar_one()  # noqa: S608
            for t in _COUNTED
        }


async def test_upgrade_keeps_every_row_and_downgrade_keeps_the_registered_ones(
    empty_url: str,
) -> None:
    db = Database(empty_url)
    try:
        await upgrade(db, "0003")
        async with db.begin() as conn:
            for statement in _DATA:
                await conn.execute(sa.text(statement))
        before = await _counts(db)
        assert before == {t: 2 if t == "refresh_tokens" else 1 for t in _COUNTED}
        assert (await upgrade(db))[0] == "0003"  # to the head, which the metadata describes
        assert await _counts(db) == before
        async with db.begin() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
            assert diff == []
            # A client in no table may now hold a consent; a user must still exist.
            await conn.execute(
                sa.text("INSERT INTO consents VALUES ('u1', :client, '[]', '[]', 1)"),
                {"client": URL_CLIENT},
            )
        async with db.exclusive() as conn:
            await conn.run_sync(downgrade, "0003")
        assert await _counts(db) == before  # the unregistered client's consent went
        async with db.begin() as conn:  # and the cascade is back
            await conn.execute(sa.text("DELETE FROM clients WHERE client_id = 'c1'"))
        assert await _counts(db) == dict.fromkeys(_COUNTED, 0)
    finally:
        await db.close()
