"""Sign-in throttling per client address behind a reverse proxy (`[http] trusted_proxies`): users
behind one proxy are counted apart, and without the setting a client cannot pick its address by
sending X-Forwarded-For."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from authgate.server.config import HttpSettings, ThrottleSettings
from authgate.server.flows.throttle import LOGIN_ADDRESS_POLICY
from tests.support.e2e import PASSWORD, USERNAME, Flow, set_up_flow
from tests.support.server_harness import FakeClock, make_config, running

# The harness's requests come from 127.0.0.1: here that is the reverse proxy.
PROXY = "127.0.0.1"


def settings(trusted: tuple[str, ...]) -> dict[str, object]:
    return {
        "http": HttpSettings(cache_ttl=0, trusted_proxies=trusted),
        # Few free attempts per address, many per account: only the address can block.
        "throttle": ThrottleSettings(
            login_address=dataclasses.replace(LOGIN_ADDRESS_POLICY, free_attempts=3)
        ),
    }


@pytest.fixture(params=[(PROXY,), ()], ids=["behind-proxy", "no-proxy-setting"])
async def proxied(
    request: pytest.FixtureRequest, database_url: str, clock: FakeClock
) -> AsyncIterator[tuple[Flow, bool]]:
    async with running(make_config(database_url, **settings(request.param)), clock) as harness:
        yield await set_up_flow(harness), bool(request.param)


async def sign_in(flow: Flow, forwarded_for: str, username: str, password: str) -> int:
    agent = flow.agent()
    agent.http.headers["X-Forwarded-For"] = forwarded_for
    page = await flow.authorization_page(
        agent,
        scope="openid read",
        state="s",
    )
    return (await agent.sign_in(page, username, password)).status_code


async def test_one_attacker_behind_the_proxy_does_not_lock_out_everyone(
    proxied: tuple[Flow, bool],
) -> None:
    flow, behind_proxy = proxied
    # The attacker forges an address of its own left of the one the proxy appends.
    attacker = "192.0.2.66, 198.51.100.7"
    for n in range(4):  # three free attempts, the fourth makes the address wait
        assert await sign_in(flow, attacker, f"guess{n}", "wrong") == 200
    assert await sign_in(flow, attacker, "guess-more", "wrong") == 429
    # Another user behind the same proxy signs in.
    victim = await sign_in(flow, "203.0.113.5", USERNAME, PASSWORD)
    # Without `trusted_proxies` the header is not believed: everyone is the proxy's address
    # (the old behaviour, and the right one when no proxy is configured).
    assert victim == (200 if behind_proxy else 429)
    # Rewriting the forged part does not give the attacker a new address.
    assert await sign_in(flow, "192.0.2.99, 198.51.100.7", "again", "wrong") == 429
