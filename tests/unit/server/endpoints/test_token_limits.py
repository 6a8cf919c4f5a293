"""POST /token rate-limited per authenticated client (`[limits.token]`): refusals are 429 with the
OAuth error body, Retry-After and the RateLimit fields; counted in memory or shared through Redis
by two servers (a namespace per test on the shared Redis); through a Redis outage (a Redis of the
test's own, never the shared one) the limit answers by its failure mode and then recovers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from authgate.limits import FailMode
from authgate.server.config import Config, LimitSettings, LimitsSettings
from tests.support.limits import (
    SHARED_REDIS,
    RedisProcess,
    delete_namespace,
    keys_of,
    shared_redis,
)
from tests.support.server_harness import FakeClock, Harness, make_config, running

API = "https://api.example.test"


def _config(tmp_path: Path, token: LimitSettings, **limits: object) -> Config:
    settings = LimitsSettings(token=token, **limits)  # type: ignore[arg-type]
    return make_config(f"sqlite:///{tmp_path / 'authgate.db'}", limits=settings)


async def _clients(h: Harness, n: int) -> list[tuple[object, str | None]]:
    await h.create_api(API)
    return [await h.create_client(scopes=("read",)) for _ in range(n)]


@pytest.fixture
def namespace() -> Iterator[str]:
    client = shared_redis()
    name = f"test-{uuid.uuid4().hex[:16]}"
    yield name
    delete_namespace(client, name)
    client.close()


async def test_a_client_over_its_rate_gets_429_and_others_do_not(
    tmp_path: Path, clock: FakeClock
) -> None:
    config = _config(tmp_path, LimitSettings("3/hour", burst=3), headers="all")
    async with running(config, clock) as h:
        (a, secret_a), (b, secret_b) = await _clients(h, 2)
        # Failed client authentication is refused before the limit and spends none of it.
        assert (await h.token(a, "wrong-secret")).status_code == 401  # type: ignore[arg-type]
        for remaining in (2, 1, 0):
            ok = await h.token(a, secret_a)  # type: ignore[arg-type]
            assert ok.status_code == 200
            assert ok.headers["ratelimit-policy"] == '"token";q=3;w=3600'
            assert ok.headers["ratelimit"].startswith(f'"token";r={remaining};t=')
            assert ok.headers["cache-control"] == "no-store"
        refused = await h.token(a, secret_a)  # type: ignore[arg-type]
        assert refused.status_code == 429
        assert refused.json() == {
            "error": "temporarily_unavailable",
            "error_description": "too many requests; retry later",
        }
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["ratelimit"].startswith('"token";r=0;t=')
        assert refused.headers["cache-control"] == "no-store"
        assert secret_a not in refused.text  # type: ignore[operator]
        # Another client is untouched.
        assert (await h.token(b, secret_b)).status_code == 200  # type: ignore[arg-type]
        assert h.server.limits.metrics.decisions[("token", "limited")] == 1
        assert h.server.limits.metrics.decisions[("token", "allowed")] == 4


async def test_admitted_answers_carry_no_rate_limit_fields_by_default(
    tmp_path: Path, clock: FakeClock
) -> None:
    """As at the gate: the fields go on refusals only unless `headers = "all"` (building them
    cost every admitted token answer most of the limiter's time)."""
    config = _config(tmp_path, LimitSettings("2/hour", burst=2))
    assert config.limits.headers == "refusals"
    async with running(config, clock) as h:
        ((client, secret),) = await _clients(h, 1)
        for _ in range(2):
            admitted = await h.token(client, secret)  # type: ignore[arg-type]
            assert admitted.status_code == 200
            assert "ratelimit" not in admitted.headers
            assert "ratelimit-policy" not in admitted.headers
        refused = await h.token(client, secret)  # type: ignore[arg-type]
        assert refused.status_code == 429
        assert refused.headers["ratelimit-policy"] == '"token";q=2;w=3600'
        assert refused.headers["ratelimit"].startswith('"token";r=0;t=')


async def test_browsers_may_read_the_rate_limit_fields(tmp_path: Path, clock: FakeClock) -> None:
    config = _config(tmp_path, LimitSettings("1/hour", burst=1))
    async with running(config, clock) as h:
        ((client, secret),) = await _clients(h, 1)
        for status in (200, 429):
            answer = await h.http.post(
                "/token",
                data={"grant_type": "client_credentials"},
                auth=(client.client_id, secret),  # type: ignore[attr-defined, arg-type]
                headers={"Origin": "https://app.example"},
            )
            assert answer.status_code == status
            exposed = answer.headers["access-control-expose-headers"]
            for name in ("Retry-After", "RateLimit", "RateLimit-Policy"):
                assert name in exposed


async def test_the_limit_can_be_turned_off(tmp_path: Path, clock: FakeClock) -> None:
    config = _config(tmp_path, LimitSettings("1/hour", burst=1, enabled=False))
    async with running(config, clock) as h:
        ((client, secret),) = await _clients(h, 1)
        for _ in range(3):
            answer = await h.token(client, secret)  # type: ignore[arg-type]
            assert answer.status_code == 200
            assert "ratelimit" not in answer.headers


async def test_two_servers_share_one_limit_through_redis(
    tmp_path: Path, clock: FakeClock, namespace: str
) -> None:
    """Two servers (each its own limiter and Redis connections, as two processes) admit exactly
    the burst of one client between them, not twice it; every key they write expires."""
    limit = LimitSettings("10/hour", burst=10)
    # A generous store timeout: on a loaded machine 100 ms (the default) can pass while 30
    # requests start at once, and a timed-out decision is admitted uncounted (fail open).
    config = _config(tmp_path, limit, redis_url=SHARED_REDIS, namespace=namespace, timeout=5.0)
    async with running(config, clock) as first, running(config, clock) as second:
        ((client, secret),) = await _clients(first, 1)
        answers = await asyncio.gather(
            *(h.token(client, secret) for h in (first, second) * 15)  # type: ignore[arg-type]
        )
        statuses = [a.status_code for a in answers]
        assert statuses.count(200) == 10  # the hour admits 10 + 10 - 1 at most; at once: 10
        assert statuses.count(429) == 20
    shared = redis.Redis.from_url(SHARED_REDIS)
    keys = keys_of(shared, namespace)
    assert len(keys) == 1
    assert 0 < shared.pttl(keys[0]) <= 3_600_000
    assert client.client_id.encode() not in keys[0]  # type: ignore[attr-defined]
    shared.close()


@pytest.mark.parametrize("mode", [FailMode.OPEN, FailMode.CLOSED])
async def test_token_limit_through_a_redis_outage(
    tmp_path: Path, clock: FakeClock, mode: FailMode
) -> None:
    own = RedisProcess()
    own.start()
    limit = LimitSettings("100/hour", burst=100, on_store_failure=mode)
    config = _config(
        tmp_path, limit, redis_url=own.url, timeout=0.2, retry_interval=0.05, headers="all"
    )
    try:
        async with running(config, clock) as h:
            ((client, secret),) = await _clients(h, 1)
            assert "ratelimit" in (await h.token(client, secret)).headers  # type: ignore[arg-type]
            own.kill()
            during = await h.token(client, secret)  # type: ignore[arg-type]
            assert "ratelimit" not in during.headers  # nothing is known of the quota
            if mode is FailMode.OPEN:
                assert during.status_code == 200
            else:
                assert during.status_code == 503
                assert during.json()["error"] == "temporarily_unavailable"
                assert int(during.headers["retry-after"]) >= 1
            assert not h.server.limits.metrics.store_up
            own.start()
            for _ in range(300):  # recovery without a restart, within 15 s
                answer = await h.token(client, secret)  # type: ignore[arg-type]
                if answer.status_code == 200 and "ratelimit" in answer.headers:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the token limit did not count in Redis again")
            assert h.server.limits.metrics.outages == 1
    finally:
        own.kill()


def test_the_default_limit_is_documented_and_open() -> None:
    default = LimitsSettings().token
    assert (default.rate, default.burst, default.on_store_failure) == (
        "6000/minute",
        600,
        FailMode.OPEN,
    )
    assert replace(default, enabled=False).limit("token") is None


async def test_hostile_client_ids_never_reach_the_limit(tmp_path: Path, clock: FakeClock) -> None:
    config = _config(tmp_path, LimitSettings("1/hour", burst=1))
    async with running(config, clock) as h:
        await _clients(h, 0)
        for client_id in ("x" * 5000, "ünï:cødé", "a\x00b", "client:a"):
            answer = await h.http.post(
                "/token",
                data={"grant_type": "client_credentials", "client_id": client_id},
            )
            assert answer.status_code in (400, 401)
        # The token limit is never spent; the failures count against the address's lockout.
        decisions = h.server.limits.metrics.decisions
        assert not any(name == "token" for name, _ in decisions)
