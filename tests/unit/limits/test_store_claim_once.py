"""`claim_once`, the stores' single-use operation (DPoP `jti`, RFC 9449 §11.1): the first claim
wins in every process that shares the store, a claim expires after its ttl, and a store that cannot
answer raises `StoreUnavailable` instead of letting a claim pass."""

from __future__ import annotations

import asyncio

import pytest
import redis

from authgate.limits.memory import MemoryStore
from authgate.limits.redis_store import RedisStore
from authgate.limits.store import StoreUnavailable
from tests.support.limits import SHARED_REDIS, Clock, free_port, own_redis


async def test_memory_first_claim_wins_until_it_expires(clock: Clock) -> None:
    store = MemoryStore(clock=clock)
    assert await store.claim_once("k", 2)
    assert not await store.claim_once("k", 2)
    assert await store.claim_once("other", 2)
    clock.advance(1_999_999)
    assert not await store.claim_once("k", 2)
    clock.advance(1)
    assert await store.claim_once("k", 2)


async def test_memory_claims_are_bounded_and_expired_ones_dropped(clock: Clock) -> None:
    store = MemoryStore(max_claims=3, clock=clock)
    for i in range(3):
        assert await store.claim_once(f"k{i}", 1)
    with pytest.raises(StoreUnavailable, match="too many live one-time claims"):
        await store.claim_once("k3", 1)
    assert list(store._claimed) == ["k0", "k1", "k2"]
    clock.advance(2_000_000)
    assert await store.claim_once("fresh", 1)
    assert list(store._claimed) == ["fresh"]  # a full store drops every expired claim first


async def test_memory_an_expired_claim_not_yet_swept_is_claimed_anew(clock: Clock) -> None:
    store = MemoryStore(clock=clock)
    assert await store.claim_once("a", 1)
    assert await store.claim_once("b", 5)
    clock.advance(1_500_000)
    # "a" has expired; claiming it again (its sweep is due now too) moves it to the end.
    assert await store.claim_once("a", 1)
    assert list(store._claimed) == ["b", "a"]
    assert not await store.claim_once("a", 1)
    clock.advance(1_000_000)  # "a" expired again, "b" has not: "b" stops the sweep
    assert await store.claim_once("c", 1)
    assert list(store._claimed) == ["b", "a", "c"]
    clock.advance(3_000_000)  # everything but "d" expired: two per claim are swept
    assert await store.claim_once("d", 1)
    assert list(store._claimed) == ["c", "d"]
    assert await store.claim_once("e", 1)
    assert list(store._claimed) == ["d", "e"]
    assert not await store.claim_once("d", 1)
    assert not await store.claim_once("e", 1)


async def test_memory_a_live_claim_is_never_forgotten_to_make_room(clock: Clock) -> None:
    # RFC 9449 §11.1: forgetting a live claim would let its replay pass; a full store refuses
    # new claims (the caller answers 503) until claims expire.
    store = MemoryStore(max_keys=1, max_claims=2, clock=clock)
    for key in ("a", "b"):
        assert await store.claim_once(key, 10)
    with pytest.raises(StoreUnavailable):
        store.claim_once_nowait("c", 10)
    assert not await store.claim_once("a", 10)  # still remembered: the replay is refused
    assert not await store.claim_once("b", 10)
    clock.advance(10_000_000)  # every claim expired: room again
    assert await store.claim_once("c", 10)
    assert list(store._claimed) == ["c"]


def test_memory_store_refuses_a_zero_claim_bound() -> None:
    with pytest.raises(ValueError, match="max_claims"):
        MemoryStore(max_claims=0)


async def test_memory_claims_after_close_start_afresh(clock: Clock) -> None:
    store = MemoryStore(clock=clock)
    assert await store.claim_once("a", 1)
    await store.aclose()
    clock.advance(500_000)
    assert await store.claim_once("a", 1)
    assert not await store.claim_once("a", 1)
    clock.advance(1_000_000)
    assert await store.claim_once("b", 1)
    assert list(store._claimed) == ["b"]  # "a" expired and was swept


async def test_memory_rejects_a_non_positive_ttl() -> None:
    with pytest.raises(ValueError, match="ttl"):
        await MemoryStore().claim_once("k", 0)


async def test_redis_first_claim_wins_across_stores_and_expires(
    redis_client: redis.Redis, namespace: str
) -> None:
    one = RedisStore(SHARED_REDIS, timeout=2.0)
    two = RedisStore(SHARED_REDIS, timeout=2.0)
    try:
        key = f"{namespace}:jti"
        # Two stores (as two processes would) racing for one key: exactly one wins.
        results = await asyncio.gather(
            *(s.claim_once(key, 5) for s in (one, two) for _ in range(5))
        )
        assert sorted(results) == [False] * 9 + [True]
        ttl = redis_client.pttl(key)
        assert 0 < ttl <= 5000
        short = f"{namespace}:short"
        assert await one.claim_once(short, 0.05)
        await asyncio.sleep(0.3)  # Redis expires the key after 50 ms on its own clock
        assert not redis_client.exists(short)
        assert await two.claim_once(short, 0.05)  # expired in Redis: claimable again
    finally:
        await one.aclose()
        await two.aclose()


async def test_redis_down_raises_store_unavailable() -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2)
    try:
        with pytest.raises(StoreUnavailable):
            await store.claim_once("k", 5)
    finally:
        await store.aclose()


async def test_redis_killed_mid_use_fails_closed() -> None:
    with own_redis() as server:
        store = RedisStore(server.url, timeout=0.5)
        try:
            assert await store.claim_once("k", 5)
            server.kill()
            with pytest.raises(StoreUnavailable):
                await store.claim_once("k2", 5)
        finally:
            await store.aclose()
