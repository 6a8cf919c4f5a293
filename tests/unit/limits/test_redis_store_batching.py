"""The Redis store's batches (a Redis server of the test's own, frozen to hold a call in flight):
decisions asked while a call is out go together in the next call, a failed call fails the
decisions queued behind it at once, and a Redis that lost its scripts gets the script again."""

from __future__ import annotations

import asyncio

import redis

from authgate.limits import Limit, Limiter, parse_rate
from authgate.limits.redis_store import RedisStore
from tests.support.limits import own_redis

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
