"""Lockouts after failed client authentication (`authgate.server.lockouts`, RFC 6749 §2.3.1),
through the server on the test's clock, counted in memory and in the shared Redis (a namespace per
test): a lockout starts after the configured failures, grows on repetition up to its cap and ends
by itself; a right secret is refused while it lasts; per client id and per address are apart; and
hostile client ids cost the store a bounded number of short keys, each with an expiry."""

from __future__ import annotations

import base64
import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from authgate.limits import FailMode
from authgate.server.clients.authentication import secret_client_id
from authgate.server.config import (
    Config,
    HttpSettings,
    LimitsSettings,
    LockoutSettings,
)
from authgate.server.grants import DEVICE_CODE_GRANT
from authgate.server.http.forms import Form
from authgate.server.models import Client
from tests.support.limits import (
    SHARED_REDIS,
    RedisProcess,
    delete_namespace,
    keys_of,
    shared_redis,
)
from tests.support.server_harness import (
    FakeClock,
    Harness,
    make_config,
    project_root,
    running,
)

API = "https://api.example.test"
# Small numbers: three failures per client id, five per address, a lockout of 10 s doubling to 80.
CLIENT = LockoutSettings(failures=3, window=600, lockout=10, max_lockout=80)
ADDRESS = LockoutSettings(failures=5, window=600, lockout=10, max_lockout=80)


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """The `[limits]` store settings: this process, or the shared Redis under a new namespace."""
    if request.param == "memory":
        yield {}
        return
    client = shared_redis()
    namespace = f"test-{uuid.uuid4().hex[:16]}"
    # A generous timeout: on a loaded machine 100 ms can pass, and the failure mode would answer.
    yield {"redis_url": SHARED_REDIS, "namespace": namespace, "timeout": 5.0}
    delete_namespace(client, namespace)
    client.close()


def _config(tmp_path: Path, store: dict[str, Any], **limits: Any) -> Config:
    limits.setdefault("client_auth", CLIENT)
    limits.setdefault("client_auth_address", ADDRESS)
    return make_config(
        f"sqlite:///{tmp_path / 'authgate.db'}",
        limits=LimitsSettings(**store, **limits),
        # The test's transport is 127.0.0.1: X-Forwarded-For then names the client's address.
        http=HttpSettings(cache_ttl=0, trusted_proxies=("127.0.0.1/32",)),
    )


async def _client(h: Harness) -> tuple[Client, str]:
    await h.create_api(API)
    client, secret = await h.create_client(scopes=("read",))
    assert secret is not None
    return client, secret


async def _token(h: Harness, client_id: str, secret: str, address: str = "198.51.100.1") -> Any:
    return await _token_from(h, client_id, secret, address)


async def _token_from(h: Harness, client_id: str, secret: str, address: str) -> Any:
    return await h.http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        headers={"X-Forwarded-For": address},
    )


def _locked(answer: httpx.Response, seconds: int, policy: str) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.json() == {
        "error": "temporarily_unavailable",
        "error_description": "too many requests; retry later",
    }
    assert answer.headers["retry-after"] == str(seconds)
    assert answer.headers["ratelimit-policy"] == policy
    assert answer.headers["ratelimit"].startswith(policy.split(";", maxsplit=1)[0] + ";r=0;t=")
    assert answer.headers["cache-control"] == "no-store"


CLIENT_POLICY = '"client_auth";q=3;w=600'


async def test_the_lockout_starts_grows_to_its_cap_and_ends(
    tmp_path: Path, clock: FakeClock, store: dict[str, Any]
) -> None:
    async with running(_config(tmp_path, store), clock) as h:
        client, secret = await _client(h)
        cid = client.client_id
        addresses = (f"198.51.100.{i}" for i in itertools.count(1))

        async def _token(h: Harness, client_id: str, secret: str) -> Any:
            return await _token_from(h, client_id, secret, next(addresses))

        # Three wrong secrets are answered 401; the fourth starts a lockout of 10 s.
        for _ in range(3):
            assert (await _token(h, cid, "wrong")).status_code == 401
        _locked(await _token(h, cid, "wrong"), 10, CLIENT_POLICY)
        # The right secret is refused too while it lasts (checked first; the same answer).
        _locked(await _token(h, cid, secret), 10, CLIENT_POLICY)
        clock.advance(4)
        _locked(await _token(h, cid, secret), 6, CLIENT_POLICY)
        clock.advance(6)
        # Ended by itself: the right secret works (and clears the failures).
        assert (await _token(h, cid, secret)).status_code == 200
        # Each failure while a lockout is remembered locks out at once, twice as long, up to 80.
        for seconds in (20, 40, 80, 80):
            _locked(await _token(h, cid, "wrong"), seconds, CLIENT_POLICY)
            clock.advance(seconds)
            assert (await _token(h, cid, secret)).status_code == 200
        # Forgotten one lockout per 80 s without another: then three failures again.
        clock.advance(5 * 80)
        for _ in range(3):
            assert (await _token(h, cid, "wrong")).status_code == 401
        _locked(await _token(h, cid, "wrong"), 10, CLIENT_POLICY)
        decisions = h.server.limits.metrics.decisions
        assert decisions[("client_auth_lock", "allowed")] == 6  # six lockouts started


async def test_a_success_clears_the_failures_of_its_client_id_only(
    tmp_path: Path, clock: FakeClock, store: dict[str, Any]
) -> None:
    async with running(_config(tmp_path, store), clock) as h:
        client, secret = await _client(h)
        cid = client.client_id
        for _ in range(2):  # a working client with a typo now and then is never locked out
            for _ in range(2):
                assert (await _token(h, cid, "wrong", "198.51.100.1")).status_code == 401
            assert (await _token(h, cid, secret, "198.51.100.1")).status_code == 200
        # Four failures of the id, but cleared by each success: two more are still 401.
        for _ in range(2):
            assert (await _token(h, cid, "wrong", "203.0.113.9")).status_code == 401
        # A success never clears the address: its fifth failure is 401, the sixth locks it out.
        assert (await _token(h, "nobody", "wrong", "198.51.100.1")).status_code == 401
        address_policy = '"client_auth_address";q=5;w=600'
        _locked(await _token(h, "nobody", "wrong", "198.51.100.1"), 10, address_policy)
        _locked(await _token(h, cid, secret, "198.51.100.1"), 10, address_policy)
        assert (await _token(h, cid, secret, "203.0.113.9")).status_code == 200


async def test_per_client_id_and_per_address_are_apart(
    tmp_path: Path, clock: FakeClock, store: dict[str, Any]
) -> None:
    async with running(_config(tmp_path, store), clock) as h:
        (a, secret_a) = await _client(h)
        b, secret_b = await h.create_client(scopes=("read",))
        assert secret_b is not None
        for _ in range(4):
            await _token(h, a.client_id, "wrong", "198.51.100.1")
        # Client A is locked out from every address; B from the same address is not (four
        # failures there, one short of the address's five).
        _locked(await _token(h, a.client_id, secret_a, "203.0.113.9"), 10, CLIENT_POLICY)
        assert (await _token(h, b.client_id, secret_b, "198.51.100.1")).status_code == 200
        # Unknown ids, each below its own limit, lock the address out after five in all.
        for _ in range(1):
            assert (await _token(h, "nobody-1", "x", "198.51.100.1")).status_code == 401
        _locked(
            await _token(h, "nobody-2", "x", "198.51.100.1"), 10, '"client_auth_address";q=5;w=600'
        )
        # Then every method from that address is refused, a right secret of B included.
        _locked(
            await _token(h, b.client_id, secret_b, "198.51.100.1"),
            10,
            '"client_auth_address";q=5;w=600',
        )
        assert (await _token(h, b.client_id, secret_b, "203.0.113.9")).status_code == 200


async def test_a_public_client_is_not_locked_out_by_its_id(
    tmp_path: Path, clock: FakeClock, store: dict[str, Any]
) -> None:
    """Anyone may send wrong secrets under a public client's id (ids are not secret): that locks
    out client secrets for that id, never the public client, which has no secret to guess."""
    async with running(_config(tmp_path, store), clock) as h:
        await h.create_api(API)
        public, _ = await h.create_client(
            auth_method="none", grant_types=(DEVICE_CODE_GRANT,), scopes=("read",)
        )
        for address in ("198.51.100.1", "198.51.100.2"):  # two addresses, below their limits
            for _ in range(2):
                await _token(h, public.client_id, "guess", address)
        _locked(await _token(h, public.client_id, "guess", "198.51.100.3"), 10, CLIENT_POLICY)
        device = await h.http.post(
            "/device_authorization",
            data={"client_id": public.client_id, "scope": "read"},
            headers={"X-Forwarded-For": "192.0.2.7"},
        )
        assert device.status_code == 200, device.text


async def test_turned_off(tmp_path: Path, clock: FakeClock, store: dict[str, Any]) -> None:
    off = LockoutSettings(failures=1, window=60, lockout=10, max_lockout=10, enabled=False)
    config = _config(tmp_path, store, client_auth=off, client_auth_address=off)
    async with running(config, clock) as h:
        client, secret = await _client(h)
        for _ in range(25):  # what the issue saw: never a 429
            assert (await _token(h, client.client_id, "wrong")).status_code == 401
        assert (await _token(h, client.client_id, secret)).status_code == 200


async def test_twenty_five_wrong_secrets_meet_a_lockout_by_default(
    tmp_path: Path, clock: FakeClock
) -> None:
    """The issue's case with the default settings: 25 wrong secrets in a row, 10 answered 401."""
    config = make_config(f"sqlite:///{tmp_path / 'authgate.db'}")
    async with running(config, clock) as h:
        client, _ = await _client(h)
        statuses = [(await _token(h, client.client_id, "wrong")).status_code for _ in range(25)]
        assert statuses == [401] * 10 + [429] * 15


HOSTILE_IDS = ["x" * 10_000, "ünï:cødé 🔑", "a\tb;=%", "client:a", "\u202e" * 300]


async def test_hostile_client_ids_cost_a_bounded_number_of_short_expiring_keys(
    tmp_path: Path, clock: FakeClock
) -> None:
    namespace = f"test-{uuid.uuid4().hex[:16]}"
    shared = redis.Redis.from_url(SHARED_REDIS)
    config = _config(tmp_path, {"redis_url": SHARED_REDIS, "namespace": namespace, "timeout": 5.0})
    try:
        async with running(config, clock) as h:
            await _client(h)
            for i in range(40):
                client_id = HOSTILE_IDS[i % len(HOSTILE_IDS)] + str(i)
                answer = await h.http.post(  # client_secret_post: any length of id
                    "/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": client_id,
                        "client_secret": "guess",
                    },
                    headers={"X-Forwarded-For": "198.51.100.1"},
                )
                assert answer.status_code in (401, 429), answer.text
                assert "guess" not in answer.text
        keys = keys_of(shared, namespace)
        # Five failures lock the address out; after that nothing more is counted: a key per id
        # counted (five), and the address's failures, lockouts remembered and lockout.
        assert len(keys) <= 5 + 3 + 3
        assert len({len(k) for k in keys if b":client_auth:" in k}) == 1
        for key in keys:
            assert len(key) < 100
            assert 0 < shared.pttl(key) <= 600_000  # every key expires by itself
            assert b"x" * 20 not in key
            assert "ünï".encode() not in key
    finally:
        delete_namespace(shared, namespace)
        shared.close()


DEFAULTS = {
    "token": ("6000/minute", 600, FailMode.OPEN),
    "authorize": ("300/minute", 100, FailMode.OPEN),
    "consent": ("120/minute", 30, FailMode.OPEN),
    "device": ("120/minute", 30, FailMode.OPEN),
    "device_authorization": ("60/minute", 20, FailMode.CLOSED),
    "introspection": ("6000/minute", 600, FailMode.OPEN),
    "revocation": ("600/minute", 100, FailMode.OPEN),
}


def test_defaults_are_pinned_and_documented() -> None:
    limits = LimitsSettings()
    assert limits.client_auth == LockoutSettings(10, 600, 60, 900, FailMode.OPEN)
    assert limits.client_auth_address == LockoutSettings(30, 600, 60, 900, FailMode.OPEN)
    assert limits.headers == "refusals"
    docs = (project_root() / "docs" / "limits.md").read_text(encoding="utf-8")
    for name, (rate, burst, mode) in DEFAULTS.items():
        setting = getattr(limits, name)
        assert (setting.rate, setting.burst, setting.on_store_failure) == (rate, burst, mode)
        # Each default has its row in docs/limits.md: name, rate and burst, failure mode.
        row = next(line for line in docs.splitlines() if line.startswith(f"| `{name}` |"))
        assert f"{rate}, burst {burst}" in row
        assert f"| {mode.value} |" in row
    for name in ("client_auth", "client_auth_address"):
        row = next(line for line in docs.splitlines() if line.startswith(f"| `{name}` |"))
        lockout = getattr(limits, name)
        assert f"{lockout.failures} failures in {lockout.window // 60} minutes" in row


@pytest.mark.parametrize("mode", [FailMode.OPEN, FailMode.CLOSED])
async def test_lockouts_through_a_redis_outage(
    tmp_path: Path, clock: FakeClock, mode: FailMode
) -> None:
    """A Redis of the test's own, killed: open lets client authentication go on uncounted (a
    right secret 200, a wrong one 401), closed refuses it with 503 and `Retry-After`."""
    own = RedisProcess()
    own.start()
    lockout = LockoutSettings(3, 600, 10, 80, on_store_failure=mode)
    store = {"redis_url": own.url, "timeout": 0.2, "retry_interval": 0.05}
    config = _config(tmp_path, store, client_auth=lockout, client_auth_address=lockout)
    try:
        async with running(config, clock) as h:
            client, secret = await _client(h)
            assert (await _token(h, client.client_id, secret)).status_code == 200
            own.kill()
            right = await _token(h, client.client_id, secret)
            wrong = await _token(h, client.client_id, "wrong")
            if mode is FailMode.OPEN:
                assert (right.status_code, wrong.status_code) == (200, 401)
            else:
                for answer in (right, wrong):
                    assert answer.status_code == 503
                    assert answer.json()["error"] == "temporarily_unavailable"
                    assert int(answer.headers["retry-after"]) >= 1
            assert not h.server.limits.metrics.store_up
    finally:
        own.kill()


def _basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    ("authorization", "form", "counted"),
    [
        (_basic(b"my%3Aapp:s3cret"), {}, "my:app"),  # Basic: form-urlencoded, then decoded
        (None, {"client_id": ["app"], "client_secret": ["s"]}, "app"),  # client_secret_post
        (None, {"client_id": ["app"]}, None),  # a public client names itself: nothing to guess
        (None, {"client_id": ["app"], "client_assertion": ["x.y.z"]}, None),  # private_key_jwt
        ("Bearer abc", {"client_id": ["app"]}, None),  # not Basic: the address counts it
        (_basic(b"no-colon"), {}, None),
        ("Basic %%%", {}, None),
    ],
)
def test_which_client_id_a_failure_counts_against(
    authorization: str | None, form: dict[str, list[str]], counted: str | None
) -> None:
    assert secret_client_id(authorization, Form(form)) == counted


async def test_a_guess_during_a_lockout_is_counted_and_answered_as_a_right_secret(
    tmp_path: Path, clock: FakeClock, store: dict[str, Any]
) -> None:
    """The credentials are checked before the lockout is: a wrong guess while it lasts is counted
    as a failure, and its answer is the very answer a right secret gets (nothing to learn)."""
    async with running(_config(tmp_path, store), clock) as h:
        client, secret = await _client(h)
        cid = client.client_id
        for _ in range(4):
            await _token(h, cid, "wrong", "198.51.100.1")
        failures = h.server.counters.client_auth_failures
        before = sum(failures.values())
        right = await _token(h, cid, secret, "198.51.100.2")
        wrong = await _token(h, cid, "wrong", "198.51.100.3")
        assert sum(failures.values()) == before + 1  # the guess is counted, the right one not
        for answer in (right, wrong):
            _locked(answer, 10, CLIENT_POLICY)
        assert right.content == wrong.content
        shown = [
            {k: v for k, v in a.headers.items() if k != "x-request-id"} for a in (right, wrong)
        ]
        assert shown[0] == shown[1]


async def test_a_client_authenticated_request_costs_one_redis_call(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Both lockouts and the token limit, checked and counted in one script call per request
    (a Redis of the test's own, so that nobody else's calls are counted)."""
    own = RedisProcess()
    own.start()
    store = {"redis_url": own.url, "timeout": 5.0}
    try:
        async with running(_config(tmp_path, store), clock) as h:
            client, secret = await _client(h)
            assert (await _token(h, client.client_id, secret)).status_code == 200  # warm
            assert (await _token(h, client.client_id, "wrong")).status_code == 401
            counter = redis.Redis.from_url(own.url)
            before = _script_calls(counter)
            for _ in range(3):
                assert (await _token(h, client.client_id, secret)).status_code == 200
                assert (await _token(h, client.client_id, "wrong")).status_code == 401
            assert _script_calls(counter) - before == 6
            counter.close()
    finally:
        own.kill()


def _script_calls(client: redis.Redis) -> int:
    """The calls the server made (a script's own commands are counted apart, as GET, SET...)."""
    stats = client.info("commandstats")
    return sum(
        int(v["calls"]) for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval")
    )
