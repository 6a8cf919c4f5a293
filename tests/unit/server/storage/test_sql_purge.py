"""Purging expired flow records (`purge_expired`, run by every server process in the background)
and what deleting a user or a client takes with it."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa

from authgate.server.models import ConsentGrant, Session, ThrottleState
from authgate.server.storage import Database, SqlStorage
from authgate.server.storage.retention import Retention
from authgate.server.storage.sql_codes import CODE_MEMORY
from authgate.server.storage.sql_device import DEVICE_MEMORY
from authgate.server.storage.tables import pushed_requests
from tests.support.storage import T0, keyed_hash
from tests.support.store_contracts import _code, _device, _family, _pushed

HOUR = 3600
DAY = 86400
RETENTION = Retention(
    refresh_idle=2 * DAY,
    refresh_absolute=10 * DAY,
    session_idle=HOUR,
    session_absolute=DAY,
    throttle_memory=DAY,
)


NOW = T0 + 100 * DAY


def _put(state: ThrottleState) -> object:
    return lambda _old: (None, state)


async def test_purge_removes_exactly_what_has_expired(database_url: str, store: SqlStorage) -> None:
    """Each kind of record on both sides of its purge boundary: one just past it, one a second
    short of it."""
    storage = SqlStorage(Database(database_url), retention=RETENTION)
    try:
        for name, expires in (
            ("code-old", NOW - CODE_MEMORY),
            ("code-kept", NOW - CODE_MEMORY + 1),
        ):
            await storage.save_code(
                dataclasses.replace(_code(name), grant_id=name, expires_at=expires)
            )
        for name, expires in (
            ("dev-old", NOW - DEVICE_MEMORY),
            ("dev-kept", NOW - DEVICE_MEMORY + 1),
        ):
            await storage.create_device_authorization(
                dataclasses.replace(_device(name, "u-" + name), expires_at=expires)
            )
        recent = NOW - 3 * DAY
        families = {
            "fam-idle": (recent, NOW - RETENTION.refresh_idle, None),
            "fam-kept": (recent, NOW - RETENTION.refresh_idle + 1, None),
            "fam-absolute": (NOW - RETENTION.refresh_absolute, NOW - 1, None),
            "fam-revoked": (recent, NOW - 1, NOW - DAY),
            "fam-revoked-kept": (recent, NOW - 1, NOW - DAY + 1),
        }
        for name, (created, issued, revoked) in families.items():
            await storage.create_family(
                dataclasses.replace(
                    _family(name, "t-" + name),
                    grant_id=name,
                    created_at=created,
                    current_issued_at=issued,
                    revoked_at=revoked,
                )
            )
        sessions = {
            "s-idle": (NOW - 2 * HOUR, NOW - RETENTION.session_idle),
            "s-kept": (NOW - 2 * HOUR, NOW - RETENTION.session_idle + 1),
            "s-absolute": (NOW - RETENTION.session_absolute, NOW),
        }
        for name, (created, seen) in sessions.items():
            await storage.save_session(Session(name, "alice", created, ("pwd",), created, seen))
        for name, last in (("k-old", NOW - DAY), ("k-kept", NOW - DAY + 1)):
            await storage.update_throttle(name, _put(ThrottleState(3, last, last)))  # type: ignore[arg-type]
        for name, expires in (("par-old", NOW), ("par-kept", NOW + 1)):
            await storage.save_pushed_request(
                dataclasses.replace(_pushed(name), expires_at=expires)
            )
        await storage.record_grant_token("g-live", "jwt-old", NOW)
        await storage.record_grant_token("g-live", "jwt-kept", NOW + 1)
        await storage.revoke_grant("g-old", NOW - DAY)  # its marker is kept a day
        await storage.revoke_grant("g-kept", NOW - DAY + 1)

        assert await storage.purge_expired(NOW) == 11
        async with storage.database.begin() as conn:
            left = (await conn.execute(sa.select(pushed_requests.c.uri_hash))).scalars().all()
        assert left == ["par-kept"]

        assert await storage.consume_code("code-old", NOW) is None
        assert await storage.consume_code("code-kept", NOW) is not None
        assert await storage.get_device_authorization("dev-old") is None
        assert await storage.get_device_authorization("dev-kept") is not None
        kept = {n for n in families if await storage.find_family("t-" + n) is not None}
        assert kept == {"fam-kept", "fam-revoked-kept"}
        assert {n for n in sessions if await storage.get_session(n) is not None} == {"s-kept"}
        seen: dict[str, ThrottleState | None] = {}
        for name in ("k-old", "k-kept"):

            def peek(
                old: ThrottleState | None, name: str = name
            ) -> tuple[None, ThrottleState | None]:
                seen[name] = old
                return None, old

            await storage.update_throttle(name, peek)
        assert seen["k-old"] is None
        assert seen["k-kept"] is not None
        # A token recorded for the grant whose marker is gone is no longer born revoked; the
        # other marker still works.
        await storage.record_grant_token("g-old", "jwt-after-old", NOW + 300)
        await storage.record_grant_token("g-kept", "jwt-after-kept", NOW + 300)
        assert not await storage.is_jti_revoked("jwt-after-old")
        assert await storage.is_jti_revoked("jwt-after-kept")
    finally:
        await storage.close()


async def test_deleting_a_user_or_a_client_takes_their_records(store: SqlStorage) -> None:
    await store.save_code(dataclasses.replace(_code("code-u"), grant_id="g1"))
    await store.create_family(dataclasses.replace(_family("fam-u", "tok-u"), grant_id="g2"))
    await store.save_session(Session("sess-u", "u", T0, ("pwd",), T0, T0))
    await store.save_consent(ConsentGrant("u", "app", frozenset({"openid"}), frozenset(), T0))
    await store.save_consent(ConsentGrant("alice", "app", frozenset({"openid"}), frozenset(), T0))
    approved = dataclasses.replace(_device("dev-a", "usr-a"), user_id="u", status="approved")
    await store.create_device_authorization(approved)
    await store.create_device_authorization(_device("dev-tv", "usr-tv"))

    assert await store.delete_user("u")
    assert await store.consume_code("code-u", T0) is None
    assert await store.find_family("tok-u") is None
    assert await store.get_session("sess-u") is None
    assert await store.get_device_authorization("dev-a") is None
    assert [g.user_id for g in await store.list_consents()] == ["alice"]

    assert await store.delete_client("tv")
    assert await store.get_device_authorization("dev-tv") is None
    assert await store.delete_client("app")
    assert await store.list_consents() == []


async def test_a_client_outside_the_registry_keeps_codes_consents_and_families(
    store: SqlStorage,
) -> None:
    # A client named by its metadata document URL is in no table (migration 0004); deleting a
    # registered client still takes its own rows and only those.
    url = "https://app.example.test/client.json"
    await store.save_code(dataclasses.replace(_code("code-url"), grant_id="g-url", client_id=url))
    await store.save_consent(ConsentGrant("u", url, frozenset({"openid"}), frozenset(), T0))
    family = dataclasses.replace(_family("fam-url", "tok-url"), grant_id="g-f", client_id=url)
    await store.create_family(family)
    await store.save_code(dataclasses.replace(_code("code-app"), grant_id="g-app", client_id="app"))
    assert await store.delete_client("app")
    assert await store.consume_code("code-app", T0) is None
    redeemed = await store.consume_code("code-url", T0)
    assert redeemed is not None
    assert redeemed.code.client_id == url
    assert await store.find_family("tok-url") is not None
    assert [g.client_id for g in await store.list_consents()] == [url]


async def test_throttle_keys_of_any_length(store: SqlStorage) -> None:
    """Keys carry what people type (a username); long ones are stored hashed, still distinct."""
    long_a, long_b = "account:" + "a" * 300, "account:" + "a" * 299 + "b"

    def bump(state: ThrottleState | None) -> tuple[int, ThrottleState]:
        failures = 1 if state is None else state.failures + 1
        return failures, ThrottleState(failures, T0, T0)

    assert await store.update_throttle(long_a, bump) == 1
    assert await store.update_throttle(long_a, bump) == 2
    assert await store.update_throttle(long_b, bump) == 1
    assert await store.update_throttle("account:ß\u0000x", bump) == 1
    await store.clear_throttle(long_a)
    assert await store.update_throttle(long_a, bump) == 1


async def test_an_expired_device_authorization_frees_its_user_code(store: SqlStorage) -> None:
    expired = _device("dev-old", keyed_hash("BCDFGHJK"))  # expires T0 + 600
    await store.create_device_authorization(expired)
    fresh = dataclasses.replace(
        _device("dev-new", keyed_hash("BCDFGHJK")), created_at=T0 + 600, expires_at=T0 + 1200
    )
    await store.create_device_authorization(fresh)
    assert await store.find_device_authorization(keyed_hash("BCDFGHJK")) == fresh
    assert await store.get_device_authorization("dev-old") is None


async def test_records_for_unknown_users_are_refused(store: SqlStorage) -> None:
    with pytest.raises(LookupError):
        await store.save_code(dataclasses.replace(_code("x"), grant_id="g", user_id="nobody"))
    with pytest.raises(LookupError):
        await store.create_family(dataclasses.replace(_family("f", "t"), user_id="nobody"))
