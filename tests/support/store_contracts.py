"""Executable contracts of the flows' storage roles (`authgate.server.storage.protocols`).

Each `check_*` coroutine exercises one store through its Protocol only and fails with an assertion
when the written contract is broken. `tests/unit/server/storage/test_memory.py` runs them against
the in-memory stores (`storage.memory`), `test_sql.py` beside it against the SQL stores on SQLite
and PostgreSQL (pass a fresh, empty store). Concurrency is checked with many coroutines at once;
against a database use a store whose connection pool allows several connections, so the database's
locking is what is tested.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

from authgate.server.flows.refresh_tokens import revoke_family
from authgate.server.models import (
    AuthorizationCode,
    ConsentGrant,
    DeviceAuthorization,
    PushedRequest,
    RefreshFamily,
    Session,
    ThrottleState,
)
from authgate.server.storage.protocols import (
    AlreadyExistsError,
    AuthorizationCodeStore,
    ConsentStore,
    DeviceAuthorizationStore,
    PushedRequestStore,
    RefreshTokenStore,
    SessionStore,
    ThrottleStore,
)

T0 = 1_700_000_000
CONCURRENCY = 16


def _code(code_hash: str) -> AuthorizationCode:
    return AuthorizationCode(
        code_hash=code_hash,
        grant_id="g-" + code_hash,
        client_id="c",
        redirect_uri="https://a/cb",
        redirect_uri_in_request=True,
        code_challenge=None,
        scopes=("openid",),
        audiences=("https://api",),
        nonce="n",
        user_id="u",
        auth_time=T0,
        amr=("pwd",),
        issued_at=T0,
        expires_at=T0 + 60,
    )


async def check_code_store(store: AuthorizationCodeStore) -> None:
    """Single use; replays return the original record; unknown codes return None."""
    code = _code("h1")
    await store.save_code(code)
    try:
        await store.save_code(code)
    except AlreadyExistsError:
        pass
    else:
        raise AssertionError("saving a taken code hash must raise AlreadyExistsError")
    assert await store.consume_code("unknown", T0) is None
    first = await store.consume_code("h1", T0 + 1)
    assert first is not None
    assert first.first_use
    assert first.code == code
    again = await store.consume_code("h1", T0 + 2)
    assert again is not None
    assert not again.first_use
    assert again.code == code
    # Concurrent redemptions: exactly one wins.
    await store.save_code(_code("h2"))
    results = await asyncio.gather(*(store.consume_code("h2", T0) for _ in range(CONCURRENCY)))
    assert sum(1 for r in results if r is not None and r.first_use) == 1
    assert all(r is not None and r.code == _code("h2") for r in results)


def _pushed(uri_hash: str, client_id: str = "c") -> PushedRequest:
    return PushedRequest(
        uri_hash=uri_hash,
        client_id=client_id,
        params=(("response_type", "code"), ("scope", "openid read"), ("resource", "https://x")),
        created_at=T0,
        expires_at=T0 + 60,
    )


async def check_pushed_request_store(store: PushedRequestStore) -> None:
    """Used once, only by its client, only before it expires; refusals leave it unused."""
    pushed = _pushed("p1")
    await store.save_pushed_request(pushed)
    try:
        await store.save_pushed_request(pushed)
    except AlreadyExistsError:
        pass
    else:
        raise AssertionError("saving a taken request_uri hash must raise AlreadyExistsError")
    assert await store.use_pushed_request("unknown", "c", T0) is None
    assert await store.use_pushed_request("p1", "app", T0) is None  # another client
    assert await store.use_pushed_request("p1", "c", T0 + 60) is None  # expired
    assert await store.use_pushed_request("p1", "c", T0 + 59) == pushed  # order and repeats kept
    assert await store.use_pushed_request("p1", "c", T0 + 59) is None  # used
    # Concurrent uses: exactly one wins.
    await store.save_pushed_request(_pushed("p2"))
    results = await asyncio.gather(
        *(store.use_pushed_request("p2", "c", T0) for _ in range(CONCURRENCY))
    )
    assert [r for r in results if r is not None] == [_pushed("p2")]


def _family(family_id: str, token_hash: str) -> RefreshFamily:
    return RefreshFamily(
        family_id=family_id,
        grant_id="g-" + family_id,
        client_id="c",
        user_id="u",
        scopes=("openid", "offline_access"),
        audiences=("https://api",),
        auth_time=T0,
        amr=("pwd",),
        created_at=T0,
        generation=0,
        current_hash=token_hash,
        current_issued_at=T0,
    )


def _rotated(family: RefreshFamily, new_hash: str, now: int) -> RefreshFamily:
    return dataclasses.replace(
        family,
        generation=family.generation + 1,
        current_hash=new_hash,
        current_issued_at=now,
        rotated_at=now,
        replay=b"sealed",
        replay_scopes=family.scopes,
    )


async def check_refresh_store(store: RefreshTokenStore) -> None:
    """Lookup by any generation's hash, locked read-modify-write, rollback on exception."""
    family = _family("f1", "t0")
    await store.create_family(family)
    async with store.lock_family("unknown") as nothing:
        assert nothing is None
    async with store.lock_family("t0") as locked:
        assert locked is not None
        assert locked.family == family
        assert locked.generation == 0
        await locked.save(_rotated(family, "t1", T0 + 5))
    async with store.lock_family("t1") as locked:
        assert locked is not None
        assert locked.generation == 1
        assert locked.family == _rotated(family, "t1", T0 + 5)
    async with store.lock_family("t0") as locked:  # the old token still finds its family
        assert locked is not None
        assert locked.generation == 0
        assert locked.family.generation == 1
    # An exception inside the block rolls the change back.
    with contextlib.suppress(RuntimeError):
        async with store.lock_family("t1") as locked:
            assert locked is not None
            await locked.save(_rotated(locked.family, "t2", T0 + 9))
            raise RuntimeError("issuing failed")
    assert await store.find_family("t2") is None
    current = await store.find_family("t1")
    assert current == _rotated(family, "t1", T0 + 5)
    assert await store.find_family("t0") == current
    # Many holders of one token: each sees the result of the one before (no lost update).
    seen: list[int] = []

    async def rotate_once(i: int) -> None:
        async with store.lock_family("t1") as locked:
            assert locked is not None
            seen.append(locked.family.generation)
            await asyncio.sleep(0)
            await locked.save(_rotated(locked.family, f"c{i}", T0 + 10))

    await asyncio.gather(*(rotate_once(i) for i in range(CONCURRENCY)))
    assert sorted(seen) == list(range(1, CONCURRENCY + 1))
    latest = await store.find_family("t1")
    assert latest is not None
    assert latest.generation == CONCURRENCY + 1
    async with store.lock_family("c3") as locked:
        assert locked is not None
        revoked = revoke_family(locked.family, T0 + 20)
        await locked.save(revoked)
    assert await store.find_family("t0") == revoked


def _device(device_hash: str, user_hash: str) -> DeviceAuthorization:
    return DeviceAuthorization(
        device_code_hash=device_hash,
        user_code_hash=user_hash,
        grant_id="g",
        client_id="tv",
        scopes=("openid",),
        audiences=("https://api",),
        created_at=T0,
        expires_at=T0 + 600,
        interval=5,
    )


async def check_device_store(store: DeviceAuthorizationStore) -> None:
    """Unique codes, lookups by either hash, compare-and-set on `version`, the count of pending
    records."""
    record = _device("d1", "u1")
    await store.create_device_authorization(record)
    for duplicate in (_device("d1", "u2"), _device("d2", "u1")):
        try:
            await store.create_device_authorization(duplicate)
        except AlreadyExistsError:
            pass
        else:
            raise AssertionError("a taken device or user code hash must raise AlreadyExistsError")
    assert await store.get_device_authorization("d1") == record
    assert await store.find_device_authorization("u1") == record
    assert await store.get_device_authorization("nope") is None
    assert await store.find_device_authorization("nope") is None
    polled = dataclasses.replace(record, last_polled_at=T0 + 5, version=1)
    assert await store.replace_device_authorization(record, polled)
    stale = dataclasses.replace(record, status="denied", version=1)
    assert not await store.replace_device_authorization(record, stale)
    assert await store.get_device_authorization("d1") == polled
    # Of concurrent writers from one version, exactly one wins.
    attempts = [
        dataclasses.replace(polled, last_polled_at=T0 + 10 + i, version=2)
        for i in range(CONCURRENCY)
    ]
    results = await asyncio.gather(
        *(store.replace_device_authorization(polled, new) for new in attempts)
    )
    assert results.count(True) == 1
    # Counted: pending and not expired (d1, polled, is still pending); not denied, not expired.
    await store.create_device_authorization(_device("d3", "u3"))
    await store.create_device_authorization(
        dataclasses.replace(_device("d4", "u4"), status="denied")
    )
    await store.create_device_authorization(
        dataclasses.replace(_device("d5", "u5"), expires_at=T0 + 9)
    )
    assert await store.count_pending_device_authorizations(T0 + 8) == 3
    assert await store.count_pending_device_authorizations(T0 + 9) == 2
    assert await store.count_pending_device_authorizations(T0 + 600) == 0


async def check_consent_store(store: ConsentStore) -> None:
    """Insert or replace per (user, client); list ordered; revoke deletes."""
    first = ConsentGrant("alice", "app", frozenset({"openid"}), frozenset({"https://api"}), T0)
    await store.save_consent(first)
    assert await store.get_consent("alice", "app") == first
    wider = dataclasses.replace(first, scopes=frozenset({"openid", "email"}), granted_at=T0 + 1)
    await store.save_consent(wider)
    assert await store.get_consent("alice", "app") == wider
    other = ConsentGrant("bob", "app", frozenset(), frozenset(), T0)
    await store.save_consent(other)
    assert await store.list_consents() == [wider, other]
    assert await store.list_consents("bob") == [other]
    assert await store.revoke_consent("alice", "app")
    assert not await store.revoke_consent("alice", "app")
    assert await store.get_consent("alice", "app") is None


async def check_session_store(store: SessionStore) -> None:
    """Get, replace, delete one, delete all of a user."""
    one = Session("s1", "alice", T0, ("pwd",), T0, T0)
    await store.save_session(one)
    await store.save_session(Session("s2", "alice", T0, ("pwd",), T0, T0))
    await store.save_session(Session("s3", "bob", T0, ("pwd",), T0, T0))
    assert await store.get_session("s1") == one
    touched = dataclasses.replace(one, last_seen=T0 + 60)
    await store.save_session(touched)
    assert await store.get_session("s1") == touched
    await store.delete_session("s3")
    await store.delete_session("s3")
    assert await store.get_session("s3") is None
    assert await store.delete_user_sessions("alice") == 2
    assert await store.get_session("s1") is None


async def check_throttle_store(store: ThrottleStore) -> None:
    """Atomic updates: no increment lost among concurrent callers; None deletes; clear forgets."""

    def increment(state: ThrottleState | None) -> tuple[int | None, ThrottleState | None]:
        failures = 1 if state is None else state.failures + 1
        return failures, ThrottleState(failures, T0, T0)

    results = await asyncio.gather(
        *(store.update_throttle("k", increment) for _ in range(CONCURRENCY))
    )
    assert sorted(r for r in results if r is not None) == list(range(1, CONCURRENCY + 1))
    assert await store.update_throttle("k", lambda state: (None, state)) is None
    assert await store.update_throttle("k", increment) == CONCURRENCY + 1
    await store.update_throttle("k", lambda state: (None, None))
    assert await store.update_throttle("k", increment) == 1
    await store.clear_throttle("k")
    assert await store.update_throttle("k", increment) == 1
