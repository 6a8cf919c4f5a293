"""Two real `authgate serve` processes (one PostgreSQL database, one Redis) share the server's
limits through Redis: together they admit what the configured rate admits, not twice it (each
counting for itself, as with `memory://`, would admit the burst in each), and a lockout after
failed client authentication started through one holds in the other."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from authgate.server import admin
from authgate.server.secret_key import ServerSecret
from tests.support.e2e import API
from tests.support.e2e_served import AUTHGATE, Served
from tests.support.limits import SHARED_REDIS, delete_namespace, keys_of, shared_redis
from tests.support.server_harness import free_port, wait_ready

# 5 an hour, all at once: one every 720 s. Any span of L seconds admits at most
# burst + ceil(L / 720) - 1 (`authgate.limits.gcra`), so exactly 5 in a test far shorter than that.
RATE, BURST, INTERVAL = "5/hour", 5, 720
FAILURES = 4


@dataclass
class TwoProcesses:
    first: Served
    second_url: str
    client_id: str
    secret: str
    namespace: str


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoProcesses]:
    namespace = f"test-{uuid.uuid4().hex[:16]}"
    extra = (
        # A generous timeout: on a loaded machine 100 ms can pass, and the failure mode would
        # answer (uncounted) instead of the shared count.
        f'[limits]\nredis_url = "{SHARED_REDIS}"\nnamespace = "{namespace}"\ntimeout = "5s"\n'
        f'[limits.token]\nrate = "{RATE}"\nburst = {BURST}\n'
        f'[limits.client_auth]\nfailures = {FAILURES}\nwindow = "1h"\n'
        'lockout = "1h"\nmax_lockout = "1h"\n'
    )
    workdir = tmp_path_factory.mktemp("shared-limits")
    first = Served.start(None, workdir, extra_config=extra)
    port = free_port()
    second_url = f"http://127.0.0.1:{port}"
    log = workdir / "serve-second.log"
    second = subprocess.Popen(
        [AUTHGATE, "serve", "--port", str(port), "--log-format", "json"],
        env=first.env,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    try:
        wait_ready(second_url, second, log)

        async def register(storage: object) -> tuple[str, str]:
            client, secret = await admin.create_client(
                storage,  # type: ignore[arg-type]
                ServerSecret(first.config.secret_key),
                name="machine",
                grant_types=("client_credentials",),
                scopes=("read",),
                apis=(API,),
                now=int(time.time()),
            )
            assert secret is not None
            return client.client_id, secret

        client_id, secret = first.run(register)
        yield TwoProcesses(first, second_url, client_id, secret, namespace)
    finally:
        second.terminate()
        try:
            second.wait(timeout=15)
        except subprocess.TimeoutExpired:
            second.kill()
            second.wait(timeout=5)
        first.stop()
        redis = shared_redis()
        delete_namespace(redis, namespace)
        redis.close()


async def _tokens(urls: list[str], client_id: str, secret: str) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30) as http:
        return await asyncio.gather(
            *(
                http.post(
                    url + "/token",
                    data={"grant_type": "client_credentials", "scope": "read"},
                    auth=(client_id, secret),
                )
                for url in urls
            )
        )


def test_two_processes_admit_the_configured_rate_not_twice_it(
    two_processes: TwoProcesses,
) -> None:
    p = two_processes
    started = time.monotonic()
    answers = asyncio.run(_tokens([p.first.url, p.second_url] * 10, p.client_id, p.secret))
    elapsed = time.monotonic() - started
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {200, 429}, [a.text for a in answers if a.status_code not in (200, 429)]
    # The exact bound for the time the requests took (far below one interval: the burst).
    bound = BURST + -(-int(elapsed + 1) // INTERVAL) - 1
    assert bound == BURST
    assert statuses.count(200) == BURST
    refused = [a for a in answers if a.status_code == 429]
    assert len(refused) == 20 - BURST
    for answer in refused:
        assert answer.json()["error"] == "temporarily_unavailable"
        assert 1 <= int(answer.headers["retry-after"]) <= INTERVAL
        assert answer.headers["ratelimit-policy"] == f'"token";q={BURST};w=3600'
    # Both processes answered, and both refused: the count is one.
    first_half = {a.status_code for a in answers[0::2]}
    second_half = {a.status_code for a in answers[1::2]}
    assert 429 in first_half
    assert 429 in second_half
    # Every key written expires by itself.
    redis = shared_redis()
    try:
        keys = keys_of(redis, p.namespace)
        assert keys
        assert all(redis.pttl(k) > 0 for k in keys)
    finally:
        redis.close()


def test_a_lockout_started_through_one_process_holds_in_the_other(
    two_processes: TwoProcesses,
) -> None:
    p = two_processes
    urls = [p.first.url, p.second_url]
    with httpx.Client(timeout=30) as http:

        def token(url: str, secret: str) -> httpx.Response:
            return http.post(
                url + "/token",
                data={"grant_type": "client_credentials"},
                auth=(p.client_id, secret),
            )

        # The failures alternate between the processes and are counted once.
        statuses = [token(urls[i % 2], "wrong").status_code for i in range(FAILURES + 1)]
        assert statuses == [401] * FAILURES + [429]
        for url in urls:  # the right secret is refused by both while the lockout lasts
            locked = token(url, p.secret)
            assert locked.status_code == 429
            assert 3500 <= int(locked.headers["retry-after"]) <= 3600
            assert locked.headers["ratelimit-policy"] == f'"client_auth";q={FAILURES};w=3600'
