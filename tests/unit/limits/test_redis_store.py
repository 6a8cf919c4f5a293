"""The Redis store against the shared Redis at 127.0.0.1:6379: the Lua script answers exactly as
the Python algorithm, limiters in two processes share one count, and hostile keys leave a bounded,
self-expiring key space."""

from __future__ import annotations

import asyncio
import math
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authgate.limits import Decision, Limit, Limiter, parse_rate
from authgate.limits.gcra import decide
from authgate.limits.memory import MemoryStore
from authgate.limits.rates import Rate
from authgate.limits.redis_store import RedisStore
from authgate.limits.stores import open_store
from tests.support.limits import SHARED_REDIS, Clock, keys_of, new_namespace, own_redis

SRC = str(Path(__file__).resolve().parents[3] / "src")


def test_urls_select_redis_and_keep_passwords_out_of_messages() -> None:
    store = open_store("redis://:s3cret@127.0.0.1:6379/0")
    assert isinstance(store, RedisStore)
    assert store.description == "redis://127.0.0.1:6379/0"
    assert "s3cret" not in repr(store.description)
    with pytest.raises(ValueError, match="timeout") as caught:
        RedisStore("redis://:s3cret@127.0.0.1/0", timeout=0)
    assert "s3cret" not in str(caught.value)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.tuples(st.integers(1, 20), st.sampled_from([60, 3600]), st.floats(0, 1)),
    st.lists(st.tuples(st.integers(0, 30_000_000), st.booleans()), min_size=1, max_size=40),
)
def test_the_script_answers_as_the_algorithm(
    redis_client: redis.Redis,
    rate_spec: tuple[int, int, float],
    steps: list[tuple[int, bool]],
) -> None:
    # Periods of minutes and hours: the keys' real-time expiry cannot catch up with the test.
    count, period, share = rate_spec
    rate = Rate(count, period, max(1, round(count * share)))
    namespace = new_namespace()
    clock = Clock()

    async def run() -> None:
        store = RedisStore(SHARED_REDIS, timeout=2.0, clock=clock)
        tat: int | None = None
        try:
            for gap, count_it in steps:
                clock.advance(gap)
                got = await store.update(
                    f"{namespace}:k", rate.interval_us, rate.burst, count=count_it
                )
                expected, new = decide(tat, clock.now, rate.interval_us, rate.burst, count=count_it)
                tat = new if new is not None else tat
                assert got == expected
        finally:
            await store.aclose()

    try:
        asyncio.run(run())
    finally:
        for key in keys_of(redis_client, namespace):
            redis_client.delete(key)


async def test_every_key_expires_when_its_bucket_is_full_again(
    redis_client: redis.Redis, namespace: str, redis_store: RedisStore
) -> None:
    limiter = Limiter(redis_store, namespace=namespace)
    slow = Limit("slow", parse_rate("10/hour", burst=4))
    for _ in range(3):
        assert (await limiter.hit(slow, "k")).allowed
    (key,) = keys_of(redis_client, namespace)
    ttl = redis_client.pttl(key)
    # Three hits at one every 6 minutes: full again in 18 minutes, and the key goes then.
    assert 0 < ttl <= 18 * 60 * 1000
    assert ttl > 17 * 60 * 1000


async def test_peeks_and_refusals_write_nothing(
    redis_client: redis.Redis, namespace: str, redis_store: RedisStore
) -> None:
    limiter = Limiter(redis_store, namespace=namespace)
    one = Limit("one", parse_rate("1/hour"))
    assert (await limiter.peek(one, "k")).allowed
    assert keys_of(redis_client, namespace) == []
    assert (await limiter.hit(one, "k")).allowed
    (key,) = keys_of(redis_client, namespace)
    stored = redis_client.get(key)
    refused = await limiter.hit(one, "k")
    assert not refused.allowed
    assert 3590 < refused.retry_after <= 3600
    assert redis_client.get(key) == stored
    await limiter.reset(one, "k")
    assert keys_of(redis_client, namespace) == []


async def test_two_limiters_share_one_exact_count(namespace: str) -> None:
    # Two stores with their own connection pools, as two processes would have.
    first = Limiter(RedisStore(SHARED_REDIS, timeout=2.0), namespace=namespace)
    second = Limiter(RedisStore(SHARED_REDIS, timeout=2.0), namespace=namespace)
    limit = Limit("shared", parse_rate("10/hour", burst=10))
    try:
        answers = await asyncio.gather(
            *(limiter.hit(limit, "client", "c1") for _ in range(15) for limiter in (first, second))
        )
        assert sum(d.allowed for d in answers) == 10
        assert (await first.peek(limit, "client", "c1")).remaining == 0
        assert (await second.peek(limit, "client", "c1")).remaining == 0
    finally:
        await first.aclose()
        await second.aclose()


async def test_memory_stores_count_per_process_by_contrast() -> None:
    # What the Redis store is for: two in-process stores each admit the whole rate.
    limit = Limit("shared", parse_rate("10/hour", burst=10))
    first, second = Limiter(MemoryStore()), Limiter(MemoryStore())
    answers = [await limiter.hit(limit, "c1") for _ in range(15) for limiter in (first, second)]
    assert sum(d.allowed for d in answers) == 20


async def test_another_process_shares_the_count(namespace: str, redis_store: RedisStore) -> None:
    child = textwrap.dedent(
        f"""
        import asyncio
        from authgate.limits import Decision, Limit, Limiter, parse_rate

        async def main():
            limiter = Limiter.from_url({SHARED_REDIS!r}, timeout=2.0, namespace={namespace!r})
            limit = Limit("shared", parse_rate("10/hour", burst=10))
            answers = [await limiter.hit(limit, "client", "c1") for _ in range(7)]
            await limiter.aclose()
            print(sum(d.allowed for d in answers))

        asyncio.run(main())
        """
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        child,
        env={**os.environ, "PYTHONPATH": SRC},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert out.decode().strip() == "7"
    limiter = Limiter(redis_store, namespace=namespace)
    limit = Limit("shared", parse_rate("10/hour", burst=10))
    answers = [await limiter.hit(limit, "client", "c1") for _ in range(7)]
    assert [d.allowed for d in answers] == [True] * 3 + [False] * 4


async def test_hostile_keys_stay_bounded_distinct_and_expiring(
    redis_client: redis.Redis, namespace: str, redis_store: RedisStore
) -> None:
    limiter = Limiter(redis_store, namespace=namespace)
    one = Limit("one", parse_rate("1/hour"))
    hostile = [
        ("client", "c" * 10_000),
        ("client", "c" * 10_001),
        ("client", "🔑\u202e\u0000é"),
        ("client", "\udcff"),
        ("a:b", "c"),
        ("a", "b:c"),
        ("client", "*"),
        ("client", "{slot}"),
        ("client", "x\r\nDEL *"),
        ("address", "203.0.113.7"),
        ("address", "2001:db8::1"),
    ]
    for parts in hostile:
        assert (await limiter.hit(one, *parts)).allowed, parts
    # Each value its own bucket: none was already used by a colliding neighbour.
    for parts in hostile:
        assert not (await limiter.hit(one, *parts)).allowed, parts
    keys = keys_of(redis_client, namespace)
    assert len(keys) == len(hostile)
    longest = len(f"{namespace}:rl:one:") + 22
    for key in keys:
        assert len(key) == longest
        assert b"203.0.113.7" not in key
        assert b"ccc" not in key
        assert 0 < redis_client.pttl(key) <= 3_600_000


async def test_keys_are_gone_once_their_buckets_refill(
    redis_client: redis.Redis, namespace: str, redis_store: RedisStore
) -> None:
    limiter = Limiter(redis_store, namespace=namespace)
    fast = Limit("fast", parse_rate("1/2 seconds"))
    answers = await asyncio.gather(*(limiter.hit(fast, "client", str(i)) for i in range(200)))
    assert all(d.allowed for d in answers)
    assert len(keys_of(redis_client, namespace)) == 200
    for _ in range(200):  # bounded: 10 s at most
        if not keys_of(redis_client, namespace):
            break
        await asyncio.sleep(0.05)
    assert keys_of(redis_client, namespace) == []


async def test_server_time_never_admits_more_than_the_bound(namespace: str) -> None:
    # Redis's own clock decides here; the bound is checked over the whole run, measured from
    # before the first request to after the last answer, which contains every decision's time.
    limiter = Limiter(RedisStore(SHARED_REDIS, timeout=2.0), namespace=namespace)
    limit = Limit("edge", parse_rate("20/second", burst=5))
    try:
        started = time.monotonic()
        answers: list[Decision] = []
        # At least 0.6 s and until one refusal (bounded: 10 s), however slow the machine is.
        while time.monotonic() - started < 10 and (
            time.monotonic() - started < 0.6 or all(d.allowed for d in answers)
        ):
            answers.append(await limiter.hit(limit, "k"))
        elapsed_us = (time.monotonic() - started) * 1_000_000
    finally:
        await limiter.aclose()
    admitted = sum(d.allowed for d in answers)
    rate = limit.rate
    assert admitted <= rate.burst + math.ceil(elapsed_us / rate.interval_us)
    assert admitted >= rate.burst
    assert any(not d.allowed for d in answers)


async def test_one_turns_decisions_go_in_one_call_and_stay_exact(namespace: str) -> None:
    # Batches split at max_batch; decisions on one key are made in order across them.
    store = RedisStore(SHARED_REDIS, timeout=2.0, max_batch=7)
    limiter = Limiter(store, namespace=namespace)
    limit = Limit("batch", parse_rate("10/hour", burst=10))
    try:
        answers = await asyncio.gather(
            *(limiter.hit(limit, "client", "hot" if i % 3 else f"cold-{i}") for i in range(150))
        )
    finally:
        await limiter.aclose()
    hot = [d for i, d in enumerate(answers) if i % 3]
    assert sum(d.allowed for d in hot) == 10
    assert sorted(d.remaining for d in hot if d.allowed) == list(range(10))
    assert all(d.allowed for i, d in enumerate(answers) if not i % 3)


async def test_a_busy_turn_costs_one_round_trip() -> None:
    with own_redis() as server:
        limiter = Limiter.from_url(server.url, timeout=2.0, namespace="batch")
        limit = Limit("batch", parse_rate("1000/second", burst=1000))
        try:
            assert (await limiter.hit(limit, "warm-up")).allowed  # loads the script
            admin = redis.Redis(port=server.port, socket_timeout=5)
            admin.config_resetstat()
            answers = await asyncio.gather(*(limiter.hit(limit, str(i)) for i in range(64)))
            assert all(d.allowed for d in answers)
            stats = admin.info("commandstats")
            admin.close()
        finally:
            await limiter.aclose()
    assert stats["cmdstat_evalsha"]["calls"] == 1
