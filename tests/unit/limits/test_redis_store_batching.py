"""The Redis store's batches (a Redis server of the test's own, frozen to hold a call in flight):
decisions asked while a call is out go together in the next call, a failed call fails the
decisions queued behind it at once, and a Redis that lost its scripts gets the script again."""

from __future__ import annotations

import asyncio

import pytest
import redis
import uvloop

from authgate.limits import Decision, Limit, Limiter, parse_rate
from authgate.limits.redis_store import RedisStore
from authgate.limits.store import StoreUnavailable
from tests.support.limits import SHARED_REDIS, own_redis

LIMIT = Limit("batch", parse_rate("1000/second", burst=1000))


async def test_decisions_asked_during_a_call_go_together_in_the_next() -> None:
    with own_redis() as server:
        limiter = Limiter(RedisStore(server.url, timeout=10), namespace="batching")
        admin = redis.Redis(port=server.port, socket_timeout=5)
        try:
            assert (await limiter.hit(LIMIT, "warm-up")).allowed  # connects, loads the script
            admin.config_resetstat()
            server.freeze()  # the next call stays out until the thaw
            try:
                first = asyncio.ensure_future(limiter.hit(LIMIT, "first"))
                later = []
                for i in range(30):  # one per turn of the loop, all while the call is out
                    await asyncio.sleep(0)
                    later.append(asyncio.ensure_future(limiter.hit(LIMIT, str(i))))
                await asyncio.sleep(0.05)
                assert not first.done()
            finally:
                server.thaw()
            answers = await asyncio.gather(first, *later)
            assert all(d.allowed and not d.store_failed for d in answers)
            stats = admin.info("commandstats")
        finally:
            admin.close()
            await limiter.aclose()
    assert stats["cmdstat_evalsha"]["calls"] == 2  # the frozen call, then the 30 together


async def test_a_failed_call_fails_the_queued_decisions_with_it() -> None:
    with own_redis() as server:
        limiter = Limiter(RedisStore(server.url, timeout=0.3), namespace="batching")
        try:
            assert (await limiter.hit(LIMIT, "warm-up")).allowed
            server.freeze()
            try:
                first = asyncio.ensure_future(limiter.hit(LIMIT, "first"))
                await asyncio.sleep(0.1)  # the first call is out; these queue behind it
                queued = [asyncio.ensure_future(limiter.hit(LIMIT, str(i))) for i in range(5)]
                decision = await first
                await asyncio.sleep(0)  # the callbacks of the same failure
                # Settled with the first call's failure, not after a timeout of their own.
                assert all(task.done() for task in queued)
                assert decision.store_failed
                assert all(task.result().store_failed for task in queued)
            finally:
                server.thaw()
        finally:
            await limiter.aclose()


async def test_a_redis_without_the_script_gets_it_again() -> None:
    with own_redis() as server:
        limiter = Limiter(RedisStore(server.url, timeout=5), namespace="batching")
        admin = redis.Redis(port=server.port, socket_timeout=5)
        slow = Limit("slow", parse_rate("10/hour", burst=10))
        try:
            assert (await limiter.hit(slow, "a")).allowed
            admin.script_flush()
            decision = await limiter.hit(slow, "a")
            assert decision.allowed
            assert not decision.store_failed
            assert decision.remaining == 8  # the same count carried on
            assert limiter.metrics.store_errors == 0
        finally:
            admin.close()
            await limiter.aclose()


async def test_a_connection_closed_by_redis_fails_its_call_then_a_new_one_is_made() -> None:
    with own_redis() as server:
        limiter = Limiter(RedisStore(server.url, timeout=5), namespace="batching")
        admin = redis.Redis(port=server.port, socket_timeout=5)
        try:
            assert (await limiter.hit(LIMIT, "warm-up")).allowed
            server.freeze()
            try:
                out = asyncio.ensure_future(limiter.hit(LIMIT, "cut"))
                await asyncio.sleep(0.05)  # the call is out
            finally:
                server.thaw()
            admin.client_kill_filter(_type="normal", skipme=True)  # every client but the admin
            decision = await asyncio.wait_for(out, 2)  # failed with the connection, no timeout
            assert decision.store_failed or decision.allowed  # killed before or after answering
            await asyncio.sleep(limiter.retry_interval + 0.05)
            again = await limiter.hit(LIMIT, "after")
            assert again.allowed
            assert not again.store_failed  # a new connection
            assert limiter.store_available
        finally:
            admin.close()
            await limiter.aclose()


async def test_a_script_error_fails_the_call_and_the_next_call_answers() -> None:
    with own_redis() as server:
        store = RedisStore(server.url, timeout=5)
        limiter = Limiter(store, namespace="batching")
        admin = redis.Redis(port=server.port, socket_timeout=5)
        try:
            assert (await limiter.hit(LIMIT, "warm-up")).allowed
            admin.hset(limiter.key(LIMIT, "a hash"), "field", "value")  # GET on it: WRONGTYPE
            refused = await limiter.hit(LIMIT, "a hash")
            assert refused.store_failed
            assert limiter.metrics.store_errors == 1
            await asyncio.sleep(limiter.retry_interval + 0.05)
            decision = await limiter.hit(LIMIT, "fine")
            assert decision.allowed
            assert not decision.store_failed
        finally:
            admin.close()
            await limiter.aclose()


async def test_closing_the_store_fails_a_call_out_and_those_queued() -> None:
    with own_redis() as server:
        store = RedisStore(server.url, timeout=10)
        try:
            await store.update("k", 1000, 10, count=True)
            server.freeze()
            try:
                out = asyncio.ensure_future(store.update("k", 1000, 10, count=True))
                await asyncio.sleep(0.05)
                queued = asyncio.ensure_future(store.update("k", 1000, 10, count=True))
                await asyncio.sleep(0)
                await store.aclose()
                for task in (out, queued):
                    with pytest.raises(StoreUnavailable, match="store closed"):
                        await task
            finally:
                server.thaw()
        finally:
            await store.aclose()


def test_the_store_runs_on_uvloop_as_the_gateway_and_the_server_do(namespace: str) -> None:
    # uvloop's transports are not asyncio.Transport subclasses; the store takes them over too.
    async def decide() -> list[Decision]:
        limiter = Limiter(RedisStore(SHARED_REDIS, timeout=2), namespace=namespace)
        limit = Limit("uvloop", parse_rate("3/hour", burst=3))
        try:
            first = await limiter.hit(limit, "one")
            rest = await asyncio.gather(*(limiter.hit(limit, "one") for _ in range(3)))
            return [first, *rest]
        finally:
            await limiter.aclose()

    decisions = uvloop.run(decide())
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert not any(d.store_failed for d in decisions)
