"""A Redis that dies or hangs mid-run (a redis-server of the test's own, never the shared one):
each limit answers as its failure mode says, within the timeout, with one log line and the
counters per outage, and the same limiter recovers when Redis is back."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from authgate.limits import (
    Decision,
    FailMode,
    Limit,
    Limiter,
    StoreUnavailable,
    parse_rate,
    rate_limit_headers,
    refusal,
)
from tests.support.limits import RedisProcess, free_port, own_redis

OPEN = Limit("open", parse_rate("1000/second", burst=1000), FailMode.OPEN)
CLOSED = Limit("closed", parse_rate("1000/second", burst=1000), FailMode.CLOSED)
# Generous: the store's timeout is 0.2 s; this only says "answered, did not hang".
ANSWERED_WITHIN = 5.0
RETRY_INTERVAL = 0.2


@pytest.fixture
def server() -> Iterator[RedisProcess]:
    with own_redis() as process:
        yield process


@pytest.fixture
async def limiter(server: RedisProcess) -> AsyncIterator[Limiter]:
    limiter = Limiter.from_url(
        server.url, timeout=0.2, retry_interval=RETRY_INTERVAL, namespace="outage"
    )
    yield limiter
    await limiter.aclose()


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "authgate.limits"]


async def timed_hit(limiter: Limiter, limit: Limit) -> tuple[Decision, float]:
    started = time.monotonic()
    decision = await limiter.hit(limit, "client", "c1")
    return decision, time.monotonic() - started


async def wait_for_recovery(limiter: Limiter) -> Decision:
    """Hit until the store decides again (bounded)."""
    deadline = time.monotonic() + 20
    while True:
        decision = await limiter.hit(OPEN, "client", "c1")
        if not decision.store_failed or time.monotonic() > deadline:
            return decision
        await asyncio.sleep(RETRY_INTERVAL / 2)


async def test_killed_redis_fails_open_and_closed_then_recovers(
    server: RedisProcess, limiter: Limiter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="authgate.limits")
    assert (await limiter.hit(OPEN, "client", "c1")).allowed
    assert (await limiter.hit(CLOSED, "client", "c1")).allowed
    assert limiter.store_available

    server.kill()
    for _ in range(5):
        opened, took_open = await timed_hit(limiter, OPEN)
        closed, took_closed = await timed_hit(limiter, CLOSED)
        assert took_open < ANSWERED_WITHIN
        assert took_closed < ANSWERED_WITHIN
        assert opened.allowed
        assert opened.store_failed
        assert not closed.allowed
        assert closed.store_failed
        assert closed.status == 503
    assert not limiter.store_available

    answer = refusal([closed])
    assert answer is not None
    assert answer.status == 503
    assert answer.error.to_dict()["error"] == "temporarily_unavailable"
    headers = dict(answer.headers)
    assert int(headers["Retry-After"]) >= 1
    assert "RateLimit" not in headers  # nothing is known of the quota
    assert headers["RateLimit-Policy"] == '"closed";q=1000;w=1'
    # Fail-open answers carry the policy only, and no refusal.
    assert refusal([opened]) is None
    assert dict(rate_limit_headers([opened])) == {"RateLimit-Policy": '"open";q=1000;w=1'}

    metrics = limiter.metrics
    assert metrics.outages == 1
    assert not metrics.store_up
    assert metrics.store_errors >= 1
    assert metrics.decisions[("open", "fail_open")] == 5
    assert metrics.decisions[("closed", "fail_closed")] == 5
    lines = outage_lines(caplog)
    assert len(lines) == 1
    assert "unavailable" in lines[0]
    assert server.url.removesuffix("/0") in lines[0]

    # Back on the same port: the same limiter recovers (a new Redis, without the script).
    server.start()
    recovered = await wait_for_recovery(limiter)
    assert not recovered.store_failed
    assert recovered.allowed
    assert limiter.store_available
    assert metrics.store_up
    assert (await limiter.hit(CLOSED, "client", "c1")).allowed
    lines = outage_lines(caplog)
    assert len(lines) == 2
    assert "answers again" in lines[1]

    # A second outage is a second transition: one more line, one more outage.
    server.kill()
    assert (await limiter.hit(OPEN, "client", "c1")).store_failed
    assert metrics.outages == 2
    assert len(outage_lines(caplog)) == 3


async def test_hung_redis_answers_within_the_timeout_then_recovers(
    server: RedisProcess, limiter: Limiter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="authgate.limits")
    assert (await limiter.hit(CLOSED, "client", "c1")).allowed
    server.freeze()
    try:
        # Many at once: none waits past the timeout, and all get their failure-mode answer.
        started = time.monotonic()
        answers = await asyncio.gather(
            *(limiter.hit(limit, "client", str(i)) for i in range(20) for limit in (OPEN, CLOSED))
        )
        assert time.monotonic() - started < ANSWERED_WITHIN
        assert all(d.store_failed for d in answers)
        assert all(d.allowed for d in answers if d.limit is OPEN)
        assert not any(d.allowed for d in answers if d.limit is CLOSED)
        # During the quiet time after a failure, nothing waits on the store at all.
        quiet = limiter.hit_nowait(CLOSED, "client", "c1")
        assert quiet is not None
        assert quiet.status == 503
        assert len(outage_lines(caplog)) == 1
    finally:
        server.thaw()
    recovered = await wait_for_recovery(limiter)
    assert not recovered.store_failed
    assert limiter.metrics.outages == 1
    assert len(outage_lines(caplog)) == 2


async def test_nowait_defers_to_the_loop_while_redis_answers(limiter: Limiter) -> None:
    assert limiter.hit_nowait(OPEN, "client", "c1") is None
    assert (await limiter.hit(OPEN, "client", "c1")).allowed


async def test_an_unreachable_redis_from_the_start_never_leaks_its_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="authgate.limits")
    url = f"redis://:s3cret-pass@127.0.0.1:{free_port()}/0"
    limiter = Limiter.from_url(url, timeout=0.2, retry_interval=RETRY_INTERVAL)
    try:
        decision = await limiter.hit(CLOSED, "client", "c1")
        assert decision.status == 503
        with pytest.raises(StoreUnavailable) as caught:
            await limiter.reset(CLOSED, "client", "c1")
    finally:
        await limiter.aclose()
    assert "s3cret" not in str(caught.value)
    lines = outage_lines(caplog)
    assert len(lines) == 1
    assert "s3cret" not in lines[0]
    assert "127.0.0.1" in lines[0]
