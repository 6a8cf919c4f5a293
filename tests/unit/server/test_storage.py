"""The storage contracts (`storage/protocols.py`) on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from authgate.config import ConfigError
from authgate.server.auth_server import open_storage
from authgate.server.config import DatabaseSettings
from authgate.server.config_loader import load_config
from authgate.server.models import (
    Api,
    ApiAccess,
    AuthorizationCode,
    Client,
    ConsentGrant,
    OpaqueAccessToken,
    RefreshFamily,
    User,
)
from authgate.server.storage import AlreadyExistsError, Database, SqlStorage
from authgate.server.storage.database import DEFAULT_POOL_SIZE
from authgate.server.storage.migrate import head_revision, schema_revision, upgrade
from authgate.server.storage.protocols import ClientRecords
from authgate.server.storage.tables import metadata
from tests.support.server_harness import make_config
from tests.support.storage import keyed_hash


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[SqlStorage]:
    store = SqlStorage(Database(database_url))
    yield store
    await store.close()


def _api(identifier: str = "https://api.example.test") -> Api:
    return Api(
        identifier=identifier,
        name="api",
        scopes=("read", "write"),
        token_format="jwt",
        access_token_ttl=300,
        signing_alg="RS256",
        created_at=1,
    )


def _client(client_id: str = "c1", *access: ApiAccess) -> Client:
    return Client(
        client_id=client_id,
        name="client",
        auth_method="client_secret_basic",
        grant_types=("client_credentials",),
        access=access,
        secret_hash="ab" * 32,
        created_at=1,
    )


async def test_pool_size_comes_from_the_configuration(pg_url: str, sqlite_url: str) -> None:
    """`[database] pool_size` sizes the PostgreSQL pool (and the refresh store's concurrency,
    which `pool_capacity` feeds); SQLite keeps SQLAlchemy's pool."""
    config = make_config(pg_url, database=DatabaseSettings(pool_size=7))
    storage = await open_storage(config)
    try:
        assert storage.database.engine.pool.size() == 7  # type: ignore[attr-defined]
        assert storage.database.pool_capacity == 17
    finally:
        await storage.close()
    assert Database(pg_url).pool_capacity == DEFAULT_POOL_SIZE + 10
    assert Database(sqlite_url, pool_size=7).pool_capacity == 15


async def test_database_timeouts_come_from_the_configuration(database_url: str) -> None:
    """`[database]` lock, statement and pool timeouts reach every connection: PostgreSQL's own
    settings and the driver's limits, SQLite's busy timeout."""
    settings = DatabaseSettings(lock_timeout=2, statement_timeout=7, pool_timeout=4)
    storage = await open_storage(make_config(database_url, database=settings))
    try:
        async with storage.database.begin() as conn:
            if storage.database.is_sqlite:
                busy = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar()
                assert busy == 2000
            else:
                shown = [
                    (await conn.exec_driver_sql(f"SHOW {name}")).scalar()
                    for name in (
                        "lock_timeout",
                        "statement_timeout",
                        "idle_in_transaction_session_timeout",
                    )
                ]
                assert shown == ["2s", "7s", "7s"]
                raw = await conn.get_raw_connection()
                assert raw.driver_connection._config.command_timeout == 9  # type: ignore[union-attr]
        assert storage.database.engine.pool.timeout() == 4  # type: ignore[attr-defined]
    finally:
        await storage.close()
    with pytest.raises(ValueError, match="lock_timeout"):
        DatabaseSettings(lock_timeout=0)


def test_database_timeouts_in_the_configuration_file(tmp_path: Path) -> None:
    file = tmp_path / "authgate.toml"
    file.write_text('[database]\nlock_timeout = "2s"\nstatement_timeout = "1m"\npool_timeout = 3\n')
    settings = load_config(file, {"AUTHGATE_SECRET_KEY": "k" * 40}).database
    assert (settings.lock_timeout, settings.statement_timeout, settings.pool_timeout) == (2, 60, 3)
    assert DatabaseSettings() == DatabaseSettings(
        lock_timeout=10, statement_timeout=30, pool_timeout=10
    )
    file.write_text('[database]\nstatement_timeout = "2h"\n')
    with pytest.raises(ConfigError, match="statement_timeout"):
        load_config(file, {"AUTHGATE_SECRET_KEY": "k" * 40})


async def test_schema_matches_tables_and_upgrade_is_idempotent(database_url: str) -> None:
    db = Database(database_url)
    try:
        assert await schema_revision(db) == head_revision()
        assert await upgrade(db) == (head_revision(), head_revision())
        async with db.begin() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
        assert diff == []
    finally:
        await db.close()


async def test_apis_and_clients(storage: SqlStorage) -> None:
    await storage.create_api(_api())
    with pytest.raises(AlreadyExistsError):
        await storage.create_api(_api())
    access = ApiAccess(api="https://api.example.test", scopes=("read",), may_introspect=True)
    await storage.create_client(_client("c1", access))
    with pytest.raises(AlreadyExistsError):
        await storage.create_client(_client("c1"))
    with pytest.raises(LookupError):
        await storage.create_client(_client("c2", ApiAccess(api="https://missing.test")))
    assert await storage.get_client("c2") is None  # nothing stored on failure
    client = await storage.get_client("c1")
    assert client is not None
    assert client.access == (access,)
    assert [c.client_id for c in await storage.list_clients()] == ["c1"]
    # Deleting the API removes every client's access to it.
    assert await storage.delete_api("https://api.example.test")
    assert not await storage.delete_api("https://api.example.test")
    client = await storage.get_client("c1")
    assert client is not None
    assert client.access == ()
    assert await storage.set_client_secret("c1", "cd" * 32, "ab" * 32, 99)
    client = await storage.get_client("c1")
    assert client is not None
    assert (client.secret_hash, client.previous_secret_hash) == ("cd" * 32, "ab" * 32)
    assert await storage.delete_client("c1")
    assert await storage.get_client("c1") is None


async def test_users(storage: SqlStorage) -> None:
    user = User(
        user_id="u1",
        username="alice",
        password_hash="h",
        email="a@example.test",
        roles=("admin",),
        created_at=1,
    )
    await storage.create_user(user)
    with pytest.raises(AlreadyExistsError):
        await storage.create_user(User(user_id="u2", username="alice"))
    assert await storage.get_user_by_username("alice") == user
    assert await storage.get_user_by_username("ALICE") is None  # exact match
    assert await storage.set_password_hash("alice", "h2")
    fetched = await storage.get_user("u1")
    assert fetched is not None
    assert fetched.password_hash == "h2"
    assert await storage.delete_user("alice")
    assert await storage.list_users() == []


async def test_consume_once_is_single_use_under_concurrency(storage: SqlStorage) -> None:
    results = await asyncio.gather(
        *(storage.consume_once("ns", "jti-1", 200, 100) for _ in range(20))
    )
    assert results.count(True) == 1
    assert await storage.consume_once("other", "jti-1", 200, 100)  # namespaces are separate
    assert not await storage.consume_once("ns", "jti-1", 300, 199)
    assert await storage.consume_once("ns", "jti-1", 400, 200)  # the old use expired


async def test_tokens_revocation_and_purge(storage: SqlStorage) -> None:
    await storage.create_api(_api())
    await storage.create_client(_client("c1"))
    record = OpaqueAccessToken(
        token_hash="f" * 64,
        jti="j1",
        client_id="c1",
        subject="c1",
        audience="https://api.example.test",
        scope="read",
        roles=(),
        issued_at=1,
        expires_at=100,
    )
    await storage.save_opaque_token(record)
    assert await storage.get_opaque_token("f" * 64) == record
    assert await storage.revoke_opaque_token("f" * 64)
    assert not await storage.revoke_opaque_token("0" * 64)
    revoked = await storage.get_opaque_token("f" * 64)
    assert revoked is not None
    assert revoked.revoked
    await storage.revoke_jti("jwt-1", 100)
    await storage.revoke_jti("jwt-1", 100)  # idempotent
    assert await storage.is_jti_revoked("jwt-1")
    assert not await storage.is_jti_revoked("jwt-2")
    await storage.consume_once("ns", "v", 100, 0)
    assert await storage.purge_expired(50) == 0
    assert await storage.purge_expired(100) == 3
    assert await storage.get_opaque_token("f" * 64) is None
    assert not await storage.is_jti_revoked("jwt-1")


async def test_settings_first_writer_wins(storage: SqlStorage) -> None:
    values = await asyncio.gather(*(storage.get_or_set_setting("k", str(i)) for i in range(10)))
    assert len(set(values)) == 1


async def test_schedule_lock_serialises_writers(storage: SqlStorage) -> None:
    order: list[str] = []

    async def hold(name: str) -> None:
        async with storage.key_schedule_lock():
            order.append(f"{name} in")
            await asyncio.sleep(0.05)
            order.append(f"{name} out")

    await asyncio.gather(hold("a"), hold("b"))
    assert order in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])


async def test_a_registered_client_is_replaced_whole_and_its_first_use_kept(
    storage: SqlStorage,
) -> None:
    await storage.create_api(_api())
    other = "https://other.example.test"
    await storage.create_api(_api(other))
    read = ApiAccess(api="https://api.example.test", scopes=("read",))
    client = dataclasses.replace(
        _client("r1", read),
        origin="registration",
        application_type="web",
        registration_token_hash="cd" * 32,
    )
    await storage.create_client(client)
    assert await storage.get_client("r1") == client
    await storage.mark_client_used("r1", 50)
    await storage.mark_client_used("r1", 60)  # the first use stays
    used = await storage.get_client("r1")
    assert used is not None
    assert used.first_used_at == 50
    new = dataclasses.replace(
        client,
        name="renamed",
        access=(ApiAccess(api=other, scopes=()),),
        application_type="native",
        created_at=999,  # never replaced
        origin="cli",  # never replaced
        first_used_at=None,  # never replaced
    )
    assert await storage.replace_client(new)
    replaced = await storage.get_client("r1")
    assert replaced == dataclasses.replace(
        new, created_at=1, origin="registration", first_used_at=50
    )
    # An unknown API changes nothing; an unknown client is False.
    bad = dataclasses.replace(new, access=(ApiAccess(api="https://gone.example.test"),))
    with pytest.raises(LookupError):
        await storage.replace_client(bad)
    assert await storage.get_client("r1") == replaced
    assert not await storage.replace_client(dataclasses.replace(new, client_id="absent"))


async def test_unregistered_clients_are_listed_with_their_live_records(
    storage: SqlStorage,
) -> None:
    """A client named by its metadata document URL is registered nowhere: the store lists the ids
    that live records name without a registered client, with counts (default retention: refresh
    families idle 14 days, absolute 90 days)."""
    now, day = 10_000_000, 86400
    url, dead = "https://app.example.test/client.json", "https://gone.example.test/client.json"
    await storage.create_api(_api())
    await storage.create_client(_client("c1"))
    await storage.create_user(User(user_id="u1", username="alice"))

    async def family(client_id: str, grant_id: str, *, created: int, issued: int) -> None:
        await storage.create_family(
            RefreshFamily(
                family_id=grant_id,
                grant_id=grant_id,
                client_id=client_id,
                user_id="u1",
                scopes=("read",),
                audiences=("https://api.example.test",),
                auth_time=created,
                amr=("pwd",),
                created_at=created,
                generation=0,
                current_hash=keyed_hash(grant_id),
                current_issued_at=issued,
            )
        )

    async def opaque(client_id: str, name: str, *, expires_at: int) -> None:
        await storage.save_opaque_token(
            OpaqueAccessToken(
                token_hash=keyed_hash(name),
                jti=name,
                client_id=client_id,
                subject="u1",
                audience="https://api.example.test",
                scope="read",
                roles=(),
                issued_at=now - 60,
                expires_at=expires_at,
            )
        )

    async def code(client_id: str, name: str, *, expires_at: int) -> None:
        await storage.save_code(
            AuthorizationCode(
                code_hash=keyed_hash(name),
                grant_id=name,
                client_id=client_id,
                redirect_uri="http://127.0.0.1/callback",
                redirect_uri_in_request=True,
                code_challenge="x" * 43,
                scopes=("read",),
                audiences=("https://api.example.test",),
                nonce=None,
                user_id="u1",
                auth_time=now,
                amr=("pwd",),
                issued_at=now - 10,
                expires_at=expires_at,
            )
        )

    # The registered client's records make no unregistered client.
    await storage.save_consent(ConsentGrant("u1", "c1", frozenset({"read"}), frozenset(), now))
    await family("c1", "g-c1", created=now, issued=now)
    # The URL client: one live record of each kind...
    await storage.save_consent(ConsentGrant("u1", url, frozenset({"read"}), frozenset(), now))
    await family(url, "g-live", created=now - 80 * day, issued=now - 13 * day)
    await opaque(url, "o-live", expires_at=now + 1)
    await code(url, "k-live", expires_at=now + 1)
    # ...and dead ones, which do not count.
    await family(url, "g-idle", created=now - day, issued=now - 14 * day)
    await family(url, "g-old", created=now - 90 * day, issued=now)
    await family(url, "g-revoked", created=now, issued=now)
    await storage.revoke_grant("g-revoked", now)
    await opaque(url, "o-expired", expires_at=now)
    await opaque(url, "o-revoked", expires_at=now + 60)
    assert await storage.revoke_opaque_token(keyed_hash("o-revoked"))
    await code(url, "k-expired", expires_at=now)
    await code(url, "k-used", expires_at=now + 60)
    assert await storage.consume_code(keyed_hash("k-used"), now)
    # A client whose records are all dead is not listed.
    await family(dead, "g-dead", created=now - 90 * day, issued=now - 20 * day)
    await opaque(dead, "o-dead", expires_at=now - 1)

    expected = ClientRecords(
        url, consents=1, refresh_families=1, opaque_access_tokens=1, authorization_codes=1
    )
    assert await storage.list_unregistered_clients(now) == [expected]
    assert await storage.list_unregistered_clients(now, url) == [expected]
    assert await storage.list_unregistered_clients(now, dead) == []
    assert await storage.list_unregistered_clients(now, "c1") == []  # registered
    assert await storage.list_unregistered_clients(now, "x" * 300) == []
    # Later the tokens and the code have expired and the family has gone idle: the consent stays.
    later = await storage.list_unregistered_clients(now + 2 * day)
    assert later == [ClientRecords(url, consents=1)]

    # Deleting such a client deletes every record under its id, live or dead, never a registered
    # client's: what `delete_client` deletes with a registered client.
    assert not await storage.delete_unregistered_client("c1")
    assert await storage.get_client("c1") is not None
    assert await storage.find_family(keyed_hash("g-c1")) is not None
    assert await storage.delete_unregistered_client(url)
    assert await storage.list_unregistered_clients(now) == []
    for name in ("o-live", "o-expired", "o-revoked"):
        assert await storage.get_opaque_token(keyed_hash(name)) is None
    for name in ("g-live", "g-idle", "g-old", "g-revoked"):
        assert await storage.find_family(keyed_hash(name)) is None
    assert await storage.get_consent("u1", url) is None
    assert await storage.get_consent("u1", "c1") is not None
    assert not await storage.delete_unregistered_client(url)  # nothing is left under it
    assert await storage.delete_unregistered_client(dead)  # dead records only
    assert not await storage.delete_unregistered_client("x" * 300)
