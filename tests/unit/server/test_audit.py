"""The audit trail's store (SQL on SQLite and PostgreSQL, and memory), its bounds, its retention,
the events of key maintenance and of the admin commands, `authgate audit list`, and migration 0003
from 0002."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from authgate.cli import main
from authgate.server import audit
from authgate.server.config import KeyPolicy
from authgate.server.keys import KeyManager
from authgate.server.models import AuditEvent, ConsentGrant
from authgate.server.secret_key import ServerSecret
from authgate.server.storage import Database, SqlStorage
from authgate.server.storage.memory import MemoryAuditStore
from authgate.server.storage.migrate import schema_revision, upgrade
from authgate.server.storage.protocols import AuditStore
from authgate.server.storage.retention import DAY, Retention
from tests.support.migrations import downgrade
from tests.support.storage import T0


@pytest.fixture(params=["sql", "memory"])
async def audit_store(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield MemoryAuditStore()
        return
    storage = SqlStorage(Database(database_url))
    yield storage
    await storage.close()


async def test_events_are_listed_oldest_first_newest_kept_by_limit(audit_store: AuditStore) -> None:
    for i in range(5):
        await audit.record(audit_store, "client.created", f"c{i}", now=T0 + i, name=f"n{i}")
    events = await audit_store.list_audit_events(0, 100)
    assert [e.subject for e in events] == ["c0", "c1", "c2", "c3", "c4"]
    ids = [e.event_id for e in events]
    assert all(isinstance(i, int) for i in ids)
    assert ids == sorted(ids)
    assert events[0].details == {"name": "n0"}
    assert events[0].actor == "admin"
    assert [e.subject for e in await audit_store.list_audit_events(T0 + 3, 100)] == ["c3", "c4"]
    assert [e.subject for e in await audit_store.list_audit_events(0, 2)] == ["c3", "c4"]
    assert await audit_store.list_audit_events(T0 + 99, 100) == []


async def test_hostile_details_are_bounded(audit_store: AuditStore) -> None:
    many = {f"k{i}": "v" for i in range(100)}
    event = await audit.record(
        audit_store,
        "user.created",
        "eve\r\nkind=forged " + "x" * 10_000,
        now=T0,
        actor="a\x00b",
        huge="y" * 100_000,
        control="line\nbreak\x1b[31m",
        number=2**70,
        roles=("a", "b"),
        **many,
    )
    (stored,) = await audit_store.list_audit_events(0, 10)
    assert stored.details == event.details
    assert len(stored.details) == audit.MAX_DETAILS
    assert stored.details["huge"] == "y" * audit.MAX_VALUE
    assert stored.details["control"] == "line?break?[31m"
    assert stored.details["number"] == str(2**70)  # beyond JSON's safe integers: kept as text
    assert stored.details["roles"] == "a b"
    assert stored.subject.startswith("eve??kind=forged ")
    assert len(stored.subject) == 2048
    assert stored.actor == "a?b"
    assert len(json.dumps(dict(stored.details))) < 4096


async def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown audit event kind"):
        await audit.record(MemoryAuditStore(), "anything", "x", now=T0)


class _BrokenStore:
    async def append_audit_event(self, event: AuditEvent) -> None:
        raise ConnectionError("database gone")

    async def list_audit_events(self, since: int, limit: int) -> list[AuditEvent]:
        return []


async def test_a_failed_write_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="authgate.audit"):
        await audit.record(_BrokenStore(), "api.deleted", "https://api", now=T0)
    messages = [r.getMessage() for r in caplog.records if r.name == "authgate.audit"]
    assert messages[0].startswith("api.deleted subject=https://api actor=admin")
    assert messages[1] == "storing audit event api.deleted failed: ConnectionError"


async def test_events_are_purged_after_the_retention(database_url: str) -> None:
    storage = SqlStorage(Database(database_url), retention=Retention(audit=30 * DAY))
    try:
        await audit.record(storage, "api.created", "old", now=T0)
        await audit.record(storage, "api.created", "new", now=T0 + 10 * DAY)
        await storage.purge_expired(T0 + 30 * DAY - 1)
        assert len(await storage.list_audit_events(0, 10)) == 2
        await storage.purge_expired(T0 + 30 * DAY)
        assert [e.subject for e in await storage.list_audit_events(0, 10)] == ["new"]
    finally:
        await storage.close()


async def test_key_maintenance_and_rotation_are_audited(database_url: str) -> None:
    storage = SqlStorage(Database(database_url))
    now = [float(T0)]
    keys = KeyManager(
        storage, ServerSecret(b"k" * 32), KeyPolicy(algorithms=("RS256",)), lambda: now[0],
        audit_store=storage,
    )  # fmt: skip
    try:
        await keys.maintain()  # the first key, made by the server on its own
        (created,) = await storage.list_audit_events(0, 100)
        assert (created.kind, created.actor, created.details["alg"]) == (
            "key.created",
            "server",
            "RS256",
        )
        assert created.subject == keys.records()[0].kid
        now[0] += 60
        (rotation,) = await keys.rotate()
        events = await storage.list_audit_events(T0 + 60, 100)
        assert [(e.kind, e.actor) for e in events] == [
            ("key.created", "admin"),
            ("key.rotated", "admin"),
        ]
        assert events[1].subject == rotation.kid
        assert events[1].details == {"alg": "RS256", "signs_from": rotation.activate_at}
    finally:
        await storage.close()


# -- the admin commands ------------------------------------------------------------------------


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "AUTHGATE_DATABASE_URL": database_url,
        "AUTHGATE_SECRET_KEY": "s" * 43,
        "AUTHGATE_ISSUER": "https://auth.example.test",
        "AUTHGATE_CONFIG": "",
        "AUTHGATE_SECRET_KEY_FILE": str(tmp_path / "unused"),
    }


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env, input=stdin)
    return result.exit_code, result.output


def _json(env: dict[str, str], *args: str, stdin: str | None = None) -> Any:
    code, out = _cli(env, *args, "--json", stdin=stdin)
    assert code == 0, out
    return json.loads(out)


def test_admin_commands_are_audited_and_listed(
    env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    api = "https://api.example.test"
    password = "correct horse battery staple"
    with caplog.at_level(logging.INFO, logger="authgate.audit"):
        _json(env, "api", "create", "--identifier", api, "--scope", "read")
        client = _json(env, "client", "create", "--name", "svc", "--api", api, "--scope", "read")
        rotated = _json(env, "client", "rotate-secret", client["client_id"])
        _json(env, "user", "create", "alice", "--password-stdin", stdin=password)
        _json(env, "user", "set-password", "alice", "--password-stdin", stdin=password + "!")
        _json(env, "user", "update", "alice", "--email", "alice@example.test")
        _json(env, "user", "delete", "alice")
        _json(env, "client", "delete", client["client_id"])
        _json(env, "api", "delete", api)
    events = _json(env, "audit", "list")
    assert [e["kind"] for e in events] == [
        "api.created",
        "client.created",
        "client.secret_rotated",
        "user.created",
        "user.password_changed",
        "user.profile_changed",
        "user.deleted",
        "client.deleted",
        "api.deleted",
    ]
    assert events[1]["subject"] == client["client_id"]
    assert events[5]["details"] == {"changed": "email"}
    assert all(e["actor"] == "admin" for e in events)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "authgate.audit")
    everything = json.dumps(events) + logged
    for secret in (client["client_secret"], rotated["client_secret"], password):
        assert secret not in everything

    code, text = _cli(env, "audit", "list", "--limit", "2")
    assert code == 0, text
    lines = text.splitlines()
    assert lines[0] == "TIME\tKIND\tACTOR\tSUBJECT\tDETAILS"
    assert [line.split("\t")[1] for line in lines[1:]] == ["client.deleted", "api.deleted"]
    assert _json(env, "audit", "list", "--since", "2999-01-01T00:00:00Z") == []
    assert len(_json(env, "audit", "list", "--since", "1h")) == 9


@pytest.mark.parametrize(
    "args",
    [
        ["--since", "yesterday"],
        ["--since", "-5m"],
        ["--since", "1e999d"],
        ["--since", "\x00"],
        ["--limit", "0"],
        ["--limit", "10000000"],
        ["--limit", "ten"],
    ],
)
def test_bad_options_are_usage_errors(env: dict[str, str], args: list[str]) -> None:
    code, out = _cli(env, "audit", "list", *args)
    assert code == 2, out
    assert "Traceback" not in out


def test_consent_revocation_is_audited(env: dict[str, str], database_url: str) -> None:
    api = "https://api.example.test"
    _json(env, "api", "create", "--identifier", api, "--scope", "read")
    user = _json(env, "user", "create", "bob", "--password-stdin", stdin="x" * 16)
    client = _json(
        env, "client", "create", "--name", "web", "--grant", "authorization_code",
        "--redirect-uri", "https://app.example.test/cb", "--api", api, "--scope", "read",
    )  # fmt: skip

    async def remember() -> None:
        storage = SqlStorage(Database(database_url))
        try:
            grant = ConsentGrant(
                user["user_id"], client["client_id"], frozenset({"read"}), frozenset({api}), T0
            )
            await storage.save_consent(grant)
        finally:
            await storage.close()

    asyncio.run(remember())
    _json(env, "consent", "revoke", "--user", "bob", "--client", client["client_id"])
    event = _json(env, "audit", "list")[-1]
    assert event["kind"] == "consent.revoked"
    assert event["subject"] == "bob"
    assert event["details"] == {"client_id": client["client_id"], "grants_revoked": 0}


# -- migration 0003 ----------------------------------------------------------------------------


async def _tables(db: Database) -> set[str]:
    async with db.begin() as conn:
        names: list[str] = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
    return set(names)


async def test_upgrade_from_0002_adds_the_audit_table_and_back(empty_url: str) -> None:
    db = Database(empty_url)
    try:
        await upgrade(db, "0002")
        async with db.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO users (user_id, username, email_verified, roles, created_at) "
                    "VALUES ('u1', 'alice', false, '[]', 1)"
                )
            )
        assert await upgrade(db, "0003") == ("0002", "0003")
        storage = SqlStorage(db)
        assert await storage.get_user_by_username("alice") is not None
        await audit.record(storage, "user.deleted", "alice", now=T0)
        await audit.record(storage, "api.created", "https://api", now=T0 + 1)
        events = await storage.list_audit_events(0, 10)
        assert [e.subject for e in events] == ["alice", "https://api"]
        assert events[0].event_id is not None
        assert events[1].event_id is not None
        assert events[0].event_id < events[1].event_id
        async with db.exclusive() as conn:
            await conn.run_sync(downgrade, "0002")
        assert await schema_revision(db) == "0002"
        assert "audit_events" not in await _tables(db)
        assert await storage.get_user_by_username("alice") is not None
    finally:
        await db.close()
