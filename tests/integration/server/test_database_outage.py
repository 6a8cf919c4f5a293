"""PostgreSQL goes away for 20 seconds under a steady stream of grants (issue 10, faults).

The test owns a PostgreSQL instance (never the shared one) and runs two `authgate serve` processes
on it. Four client threads send client_credentials grants and refreshes, alternating between the
servers, while the instance is stopped (`pg_ctl stop -m fast`: the servers' connections die) and
started again 20 s later. Every answer must be 200, or 503 `temporarily_unavailable` with
`Retry-After`: no 500, no dropped connection, no `invalid_grant` on a refresh chain. After the
restart both servers answer 200 again without being restarted, and every refresh chain continues.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from authgate.server import admin
from authgate.server.secret_key import ServerSecret
from authgate.server.storage import Storage
from tests.support.e2e import API
from tests.support.e2e_served import AUTHGATE, Served
from tests.support.own_postgres import OwnPostgres, own_postgres_instance
from tests.support.server_harness import free_port, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

# Short database limits so that a dead database is answered quickly; the defaults work the same,
# only slower.
DATABASE = "[database]\nlock_timeout = 2\nstatement_timeout = 5\npool_timeout = 3\n"
THREADS = 4
PAUSE = 0.25  # between one thread's requests: about 16 requests a second in all
DOWN_AT, DOWN_FOR, TOTAL = 5.0, 20.0, 35.0  # seconds since the stream started
CLIENT_TIMEOUT = 30.0  # bound on every request; far beyond the server's own database limits


@dataclass
class Outcome:
    """What the threads saw, shared under a lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    answers: Counter[str] = field(default_factory=Counter)
    bad: list[str] = field(default_factory=list)
    # (seconds since the start, status) of every answer, for the recovery check
    # (answered, server, status, kind, sent): seconds since the start
    timeline: list[tuple[float, int, int, str, float]] = field(default_factory=list)

    def record(
        self, started: float, sent: float, server: int, kind: str, response: httpx.Response
    ) -> None:
        status = response.status_code
        with self.lock:
            self.answers[f"{kind} {status}"] += 1
            self.timeline.append((time.monotonic() - started, server, status, kind, sent))
            if status == 200:
                return
            if (
                status == 503
                and response.headers.get("retry-after", "").isdigit()
                and response.json().get("error") == "temporarily_unavailable"
            ):
                return
            self.bad.append(f"{kind} on server {server}: {status} {response.text[:200]}")

    def failed(self, server: int, kind: str, error: Exception) -> None:
        with self.lock:
            self.answers[f"{kind} {type(error).__name__}"] += 1
            self.bad.append(f"{kind} on server {server}: {type(error).__name__}: {error}")


@dataclass
class Second:
    """Another `authgate serve` on the same database and configuration as a `Served`."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[OwnPostgres, list[str], Served]]:
    with own_postgres_instance() as own:
        first = Served.start(own.url, tmp_path, extra_config=DATABASE)
        try:
            port = free_port()
            log = tmp_path / "serve-2.log"
            process = subprocess.Popen(
                [AUTHGATE, "serve", "--port", str(port)],
                env=first.env,
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=log.open("wb"),
            )
            second = Second(f"http://127.0.0.1:{port}", process, log)
            try:
                wait_ready(second.url, process, log)
                yield own, [first.url, second.url], first
                assert second.process.poll() is None, "the second server exited"
            finally:
                second.stop()
            assert first.process.poll() is None, "the first server exited"
        finally:
            first.stop()


def test_grants_survive_a_20_second_postgresql_outage(
    two_servers: tuple[OwnPostgres, list[str], Served],
) -> None:
    own, urls, served = two_servers
    machine_id, machine_secret = _machine_client(served)
    chains = [served.web_tokens()["refresh_token"] for _ in range(THREADS)]
    web_auth = (served.web.client_id, served.web_secret)
    outcome = Outcome()
    stop = threading.Event()
    started = time.monotonic()

    def worker(n: int) -> None:
        with httpx.Client(timeout=CLIENT_TIMEOUT) as http:
            i = 0
            while not stop.is_set():
                server = (n + i) % 2
                kind = "refresh" if i % 2 else "client_credentials"
                sent = time.monotonic() - started
                try:
                    if kind == "refresh":
                        form = {"grant_type": "refresh_token", "refresh_token": chains[n]}
                        response = http.post(urls[server] + "/token", data=form, auth=web_auth)
                        if response.status_code == 200:
                            chains[n] = response.json()["refresh_token"]
                    else:
                        form = {"grant_type": "client_credentials", "scope": "read"}
                        auth = (machine_id, machine_secret)
                        response = http.post(urls[server] + "/token", data=form, auth=auth)
                    outcome.record(started, sent, server, kind, response)
                except httpx.HTTPError as error:
                    outcome.failed(server, kind, error)
                i += 1
                stop.wait(PAUSE)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(DOWN_AT)
        own.stop("fast")
        stopped_at = time.monotonic() - started
        time.sleep(DOWN_FOR)
        # Answers before this moment met a database that was down throughout; `own.start()`
        # returns only once the database accepts connections, so a refresh may succeed in it.
        restarting_at = time.monotonic() - started
        own.start()
        restarted_at = time.monotonic() - started
        time.sleep(max(0.0, TOTAL - (time.monotonic() - started)))
    finally:
        stop.set()
        for thread in threads:
            thread.join(CLIENT_TIMEOUT + 5)
    assert not any(thread.is_alive() for thread in threads)

    print(dict(outcome.answers))  # the counts, shown with -s (and in the CI log on failure)
    assert outcome.bad == [], outcome.bad
    during = [
        (kind, status)
        for at, _, status, kind, sent in outcome.timeline
        if stopped_at < sent and at < restarting_at  # sent and answered while it was down
    ]
    assert during, "no answer while the database was down"
    # A refresh needs the database: every one is 503. A client-credentials JWT from a client the
    # process has cached needs none, so it may still be issued (200) during the outage.
    refreshes = {status for kind, status in during if kind == "refresh"}
    assert refreshes == {503}, "the outage was not seen as 503 by the refreshes"
    # Recovery without a restart of either server: each answers 200 after the database is back.
    for server in (0, 1):
        assert any(
            status == 200 and at > restarted_at
            for at, s, status, _, _ in outcome.timeline
            if s == server
        ), f"server {server} did not recover"
    # Every refresh chain continues, on both servers.
    with httpx.Client(timeout=CLIENT_TIMEOUT) as http:
        for n in range(THREADS):
            for url in urls:
                form = {"grant_type": "refresh_token", "refresh_token": chains[n]}
                response = http.post(url + "/token", data=form, auth=web_auth)
                assert response.status_code == 200, response.text
                chains[n] = response.json()["refresh_token"]


def _machine_client(served: Served) -> tuple[str, str]:
    async def register(storage: Storage) -> tuple[str, str]:
        client, secret = await admin.create_client(
            storage,
            ServerSecret(served.config.secret_key),
            name="Machine",
            grant_types=("client_credentials",),
            scopes=("read",),
            apis=(API,),
            now=int(time.time()),
        )
        assert secret is not None
        return client.client_id, secret

    machine: tuple[str, str] = served.run(register)
    return machine
