"""The sign-in and user-code throttles' counters in Redis (`storage.redis_throttle`): the store
contract on the shared Redis (a namespace per test), two stores (two processes) sharing one
throttle, hostile keys that all expire, and a Redis of the test's own stopped and started again
(never the shared one) under each failure mode."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from authgate.limits import FailMode
from authgate.server.flows.throttle import (
    LOGIN_ACCOUNT_POLICY,
    LOGIN_ADDRESS_POLICY,
    Throttle,
    ThrottlePolicy,
    account_key,
    address_key,
)
from authgate.server.storage.redis_throttle import RedisThrottleStore
from tests.support.limits import (
    SHARED_REDIS,
    RedisProcess,
    delete_namespace,
    keys_of,
    shared_redis,
)
from tests.support.store_contracts import check_throttle_store

NOW = 1_700_000_000
POLICY = ThrottlePolicy(free_attempts=3, base_delay=2, max_delay=60, forget_after=3600)
TTL = 3600


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = shared_redis()
    yield client
    client.close()


@pytest.fixture
def namespace(redis_client: redis.Redis) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:16]}"
    yield name
    delete_namespace(redis_client, name)


def _store(namespace: str, url: str = SHARED_REDIS, **options: object) -> RedisThrottleStore:
    settings: dict[str, object] = {"timeout": 2.0, "ttl": TTL, **options}
    return RedisThrottleStore(url, namespace=namespace, **settings)  # type: ignore[arg-type]


@pytest.fixture
async def stores(namespace: str) -> AsyncIterator[tuple[RedisThrottleStore, RedisThrottleStore]]:
    """Two stores with their own connections: two server processes on one Redis."""
    first, second = _store(namespace), _store(namespace)
    yield first, second
    await first.aclose()
    await second.aclose()


async def test_throttle_store_contract(
    stores: tuple[RedisThrottleStore, RedisThrottleStore],
) -> None:
    await check_throttle_store(stores[0])


async def test_two_processes_share_one_throttle(
    stores: tuple[RedisThrottleStore, RedisThrottleStore],
) -> None:
    first, second = Throttle(stores[0]), Throttle(stores[1])
    keys = [(address_key("192.0.2.7"), POLICY), (account_key("alice"), POLICY)]
    # Guesses at once through both: exactly the free attempts and the one that sets the first
    # wait pass, as in one process (no update lost between them).
    results = await asyncio.gather(
        *(throttle.attempt(keys, NOW) for throttle in (first, second) * 10)
    )
    assert results.count(None) == POLICY.free_attempts + 1
    assert await first.attempt(keys, NOW) == 2
    assert await second.attempt(keys, NOW) == 2
    # A success through one takes its count back for both.
    await second.succeeded(account_key("alice"))
    other = [(address_key("198.51.100.1"), POLICY), (account_key("alice"), POLICY)]
    assert await first.attempt(other, NOW) is None


async def test_a_success_leaves_no_trace_in_redis(
    stores: tuple[RedisThrottleStore, RedisThrottleStore],
    redis_client: redis.Redis,
    namespace: str,
) -> None:
    throttle = Throttle(stores[0])
    keys = [(address_key("192.0.2.7"), LOGIN_ADDRESS_POLICY), (account_key("bob"), POLICY)]
    attempt = await throttle.count(keys, NOW)
    assert attempt.retry_after is None
    await throttle.take_back(attempt, clear={account_key("bob")})
    assert keys_of(redis_client, namespace) == []


@pytest.mark.parametrize(
    "username",
    [
        "x" * 100_000,
        "ünïcødé-ΑΛΦΑ-用户",
        "lone\udcffsurrogate",
        "nul\x00byte",
        "account:alice",  # looks like another key's prefix
        "a:b",
    ],
    ids=["100k", "unicode", "surrogate", "nul", "prefix", "colon"],
)
async def test_hostile_keys_are_short_distinct_and_expire(
    stores: tuple[RedisThrottleStore, RedisThrottleStore],
    redis_client: redis.Redis,
    namespace: str,
    username: str,
) -> None:
    throttle = Throttle(stores[0])
    for _ in range(LOGIN_ACCOUNT_POLICY.free_attempts + 1):
        assert await throttle.attempt([(account_key(username), LOGIN_ACCOUNT_POLICY)], NOW) is None
    assert await throttle.attempt([(account_key(username), LOGIN_ACCOUNT_POLICY)], NOW) == 2
    # A neighbour whose parts would collide if keys were joined with a separator is untouched.
    neighbour = [(account_key(username + ":"), LOGIN_ACCOUNT_POLICY)]
    assert await throttle.attempt(neighbour, NOW) is None
    keys = keys_of(redis_client, namespace)
    assert len(keys) == 2
    for key in keys:
        assert key.startswith(f"{namespace}:rl:throttle:".encode())
        assert len(key) < 80  # whatever was typed
        assert 0 < redis_client.ttl(key) <= TTL  # every key expires by itself
    assert not any(b"alice" in k or b"x" * 100 in k for k in keys)


async def test_a_malformed_value_is_a_store_failure_not_a_500(
    redis_client: redis.Redis, namespace: str
) -> None:
    store = _store(namespace, on_store_failure=FailMode.CLOSED)
    try:
        redis_client.set(store.key(account_key("eve")), b"not:a:state")
        attempt = await Throttle(store).count([(account_key("eve"), POLICY)], NOW)
        assert attempt.unavailable
    finally:
        await store.aclose()


async def _until(condition: object, what: str) -> None:
    """Await `condition()` until it is true, for at most 15 s."""
    for _ in range(300):
        if await condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within 15s: {what}")


@pytest.mark.parametrize("mode", [FailMode.CLOSED, FailMode.OPEN])
async def test_redis_stopped_and_started_again(
    mode: FailMode, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisProcess()
    server.start()
    password_url = server.url.replace("redis://", "redis://:hunter2-secret@")
    store = _store(
        "outage", url=server.url, timeout=0.2, retry_interval=0.05, on_store_failure=mode
    )
    throttle = Throttle(store)
    keys = [(address_key("192.0.2.7"), POLICY), (account_key("alice"), POLICY)]
    try:
        assert await throttle.attempt(keys, NOW) is None
        server.kill()
        caplog.set_level(logging.WARNING, logger="authgate.limits")
        attempt = await throttle.count(keys, NOW)
        if mode is FailMode.CLOSED:
            # Refused as unavailable (the page answers 503), never checked uncounted.
            assert attempt.unavailable
            assert attempt.retry_after is not None
            assert attempt.retry_after >= 1
            assert store.metrics.decisions[("throttle", "fail_closed")] >= 1
        else:
            assert not attempt.unavailable
            assert attempt.retry_after is None
            assert attempt.counted == ()  # let through, not counted
            assert store.metrics.decisions[("throttle", "fail_open")] >= 1
        # A success after the store failed does not raise either.
        await throttle.take_back(attempt, clear={account_key("alice")})
        assert not store.metrics.store_up
        assert store.metrics.outages == 1
        assert sum("throttle store unavailable" in r.getMessage() for r in caplog.records) == 1

        server.start()  # same port, empty: the counts of before the outage are gone

        async def recovered() -> bool:
            return not (await throttle.count(keys, NOW)).unavailable and store.metrics.store_up

        await _until(recovered, "the throttle counts in Redis again")
        assert any("answers again" in r.getMessage() for r in caplog.records)
        # Counting for real again: the policy's free attempts run out and a wait is set.
        results = [await throttle.attempt(keys, NOW) for _ in range(POLICY.free_attempts + 2)]
        assert results[-1] == 2
        assert store.metrics.outages == 1
    finally:
        await store.aclose()
        server.kill()
    # The password of a Redis URL never reaches a log line.
    unreachable = _store("outage", url=password_url, timeout=0.2, on_store_failure=mode)
    try:
        await Throttle(unreachable).count(keys, NOW)
    finally:
        await unreachable.aclose()
    assert all("hunter2" not in r.getMessage() for r in caplog.records)
