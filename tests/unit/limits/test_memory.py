"""The in-process store and the limiter on it: decisions, bounds under hostile keys, threads."""

from __future__ import annotations

import threading

import pytest

from authgate.limits import FailMode, Limit, Limiter, parse_rate, refusal
from authgate.limits.memory import DEFAULT_MAX_CLAIMS, DEFAULT_MAX_KEYS, MemoryStore
from authgate.limits.stores import open_store
from tests.support.limits import Clock

TOKEN = Limit("token", parse_rate("5/minute", burst=3))


def limiter_on(clock: Clock, max_keys: int = 1000) -> Limiter:
    return Limiter(MemoryStore(max_keys=max_keys, clock=clock), namespace="test")


async def test_hit_peek_and_reset(clock: Clock) -> None:
    limiter = limiter_on(clock)
    assert (await limiter.peek(TOKEN, "client", "a")).remaining == 3
    answers = [await limiter.hit(TOKEN, "client", "a") for _ in range(4)]
    assert [d.allowed for d in answers] == [True, True, True, False]
    assert [d.remaining for d in answers] == [2, 1, 0, 0]
    assert answers[-1].retry_after == pytest.approx(12.0)  # one every 60 / 5 seconds
    assert answers[-1].status == 429
    # Another key, another bucket.
    assert (await limiter.hit(TOKEN, "client", "b")).allowed
    clock.advance(12_000_000)
    assert (await limiter.peek(TOKEN, "client", "a")).remaining == 1
    assert (await limiter.hit(TOKEN, "client", "a")).allowed
    await limiter.reset(TOKEN, "client", "a")
    assert (await limiter.peek(TOKEN, "client", "a")).remaining == 3
    assert limiter.metrics.decisions[("token", "allowed")] == 5
    assert limiter.metrics.decisions[("token", "limited")] == 1


async def test_nowait_decides_the_same_without_a_loop(clock: Clock) -> None:
    limiter = limiter_on(clock)
    answers = [limiter.hit_nowait(TOKEN, "k") for _ in range(4)]
    assert [d.allowed for d in answers if d is not None] == [True, True, True, False]
    peek = limiter.peek_nowait(TOKEN, "k")
    assert peek is not None
    assert not peek.allowed


def test_hostile_keys_cannot_grow_the_store_past_its_bound(clock: Clock) -> None:
    store = MemoryStore(max_keys=500, clock=clock)
    limiter = Limiter(store, namespace="test")
    for i in range(5000):
        limiter.hit_nowait(TOKEN, "client", f"{i}-" + "x" * 10_000)
    assert len(store) == 500
    # The most recent keys are the ones kept.
    kept = limiter.peek_nowait(TOKEN, "client", "4999-" + "x" * 10_000)
    assert kept is not None
    assert kept.remaining == 2


def test_expired_keys_are_dropped_while_traffic_continues(clock: Clock) -> None:
    store = MemoryStore(max_keys=10_000, clock=clock)
    limiter = Limiter(store, namespace="test")
    for i in range(1000):
        limiter.hit_nowait(TOKEN, "old", str(i))
    assert len(store) == 1000
    clock.advance(13_000_000)  # every old bucket is full again (one hit = 12 s)
    for i in range(600):
        limiter.hit_nowait(TOKEN, "new", str(i))
    # Two expired keys go per write: the old ones are gone, only the live ones remain.
    assert len(store) == 600


def test_threads_share_one_exact_count(clock: Clock) -> None:
    limit = Limit("burst", parse_rate("100/hour", burst=100))
    limiter = limiter_on(clock)
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(50):
            decision = limiter.hit_nowait(limit, "shared")
            assert decision is not None
            with lock:
                results.append(decision.allowed)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 100
    assert len(results) == 400


async def test_memory_never_fails_so_fail_closed_limits_still_count(clock: Clock) -> None:
    closed = Limit("closed", parse_rate("1/minute"), FailMode.CLOSED)
    limiter = limiter_on(clock)
    assert (await limiter.hit(closed, "k")).allowed
    second = await limiter.hit(closed, "k")
    answer = refusal([second])
    assert answer is not None
    assert answer.status == 429
    assert limiter.store_available


def test_store_urls() -> None:
    store = open_store("memory://?max_keys=42")
    assert isinstance(store, MemoryStore)
    assert store.max_keys == 42
    assert store.max_claims == DEFAULT_MAX_CLAIMS
    store = open_store("memory://?max_claims=7&max_keys=9")
    assert isinstance(store, MemoryStore)
    assert (store.max_keys, store.max_claims) == (9, 7)
    default = open_store()
    assert isinstance(default, MemoryStore)
    assert (default.max_keys, default.max_claims) == (DEFAULT_MAX_KEYS, DEFAULT_MAX_CLAIMS)
    for bad, message in [
        ("memory://host", "no host"),
        ("memory://?max_keys=0", "max_keys"),
        ("memory://?max_keys=\u0661", "max_keys"),
        ("memory://?max_claims=0", "max_claims"),
        ("memory://?max_claims=-5", "max_claims"),
        ("memory://?max_claims=100000001", "max_claims"),
        ("memory://?max_claims=", "max_claims"),
        ("memory://?size=1", "unknown options size"),
        ("mysql://u:secret@h/db", "expected memory://"),
        ("", "expected memory://"),
    ]:
        with pytest.raises(ValueError, match=message) as caught:
            open_store(bad)
        assert "secret" not in str(caught.value)
