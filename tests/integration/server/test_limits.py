"""The sign-in throttle counting in Redis (`[limits] redis_url`), end to end in process: failed
sign-ins are throttled per account as with the database; a Redis of the test's own (never the
shared one) stopped mid-run turns sign-in into a 503 page with Retry-After (fail closed, the
default) or lets it through uncounted (fail open), never a 500; started again, the throttle
counts again without a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from authgate.limits import FailMode
from authgate.server.config import LimitsSettings, ThrottleStoreSettings
from tests.support.e2e import PASSWORD, USERNAME, WEB_REDIRECT, Flow, set_up_flow
from tests.support.limits import RedisProcess
from tests.support.server_harness import FakeClock, make_config, running


@pytest.fixture
def redis_server() -> Iterator[RedisProcess]:
    server = RedisProcess()
    server.start()
    yield server
    server.kill()


@pytest.fixture(params=[FailMode.CLOSED, FailMode.OPEN], ids=["closed", "open"])
async def flow(
    request: pytest.FixtureRequest, redis_server: RedisProcess, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Flow]:
    limits = LimitsSettings(
        redis_url=redis_server.url,
        timeout=0.2,
        retry_interval=0.05,
        throttle=ThrottleStoreSettings(request.param),
    )
    url = f"sqlite:///{tmp_path / 'authgate.db'}"  # a database of this test's own
    async with running(make_config(url, limits=limits), clock) as harness:
        yield await set_up_flow(harness)


async def sign_in(flow: Flow, password: str) -> httpx.Response:
    agent = flow.agent()
    page = await agent.authorize(
        response_type="code",
        client_id=flow.web.client_id,
        redirect_uri=WEB_REDIRECT,
        scope="openid read",
        state="s",
    )
    return await agent.sign_in(page, USERNAME, password)


async def test_sign_in_throttle_in_redis_through_an_outage(
    flow: Flow, redis_server: RedisProcess
) -> None:
    server = flow.harness.server
    assert server.throttle_redis is not None
    mode = server.config.limits.throttle.on_store_failure
    for _ in range(6):  # five free attempts; the sixth makes the next one wait
        assert (await sign_in(flow, "not the password")).status_code == 200
    blocked = await sign_in(flow, PASSWORD)
    assert blocked.status_code == 429
    assert "Too many sign-in attempts" in blocked.text

    redis_server.kill()
    during = await sign_in(flow, PASSWORD)
    if mode is FailMode.CLOSED:
        assert during.status_code == 503
        assert "Sign-in is briefly unavailable" in during.text
        assert int(during.headers["retry-after"]) >= 1
    else:  # let through uncounted: the right password signs in
        assert during.status_code == 200
        assert "Too many" not in during.text
        assert "briefly unavailable" not in during.text
    assert not server.throttle_redis.metrics.store_up

    redis_server.start()  # empty: what was counted before the outage is gone
    for _ in range(300):  # recovery without a restart, within 15 s
        answer = await sign_in(flow, "not the password")
        if answer.status_code == 200 and server.throttle_redis.metrics.store_up:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the throttle did not count in Redis again")
    for _ in range(5):
        await sign_in(flow, "not the password")
    assert (await sign_in(flow, PASSWORD)).status_code == 429
