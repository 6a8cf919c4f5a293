"""Refresh tokens against a stalled database, in process, on SQLite and PostgreSQL (issue 8).

Another connection holds the refresh tables' lock (PostgreSQL: `LOCK TABLE`; SQLite: an outside
writer's `BEGIN IMMEDIATE`) while a client refreshes. With short `[database]` timeouts the refresh
ends in 503 `temporarily_unavailable` with `Retry-After` and changes nothing; once the lock is
released the same refresh token rotates and the family is intact (no reuse alarm, the user stays
signed in). A client that gave up, or hung up before the rotation was committed, leaves the family
as it was too: in process at the ASGI level, and through a real `authgate serve` whose client times
out while the refresh waits for the lock. A frozen PostgreSQL (SIGSTOP, on an instance of the test's
own) answers 503 as well, through the driver's own time limit, and the family survives the freeze.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg
import pytest

from authgate.server.config import DatabaseSettings
from authgate.server.secret_key import ServerSecret
from authgate.server.storage import Database, Storage
from authgate.server.storage.migrate import upgrade
from tests.support.e2e import Flow, set_up_flow
from tests.support.e2e_served import Served
from tests.support.own_postgres import OwnPostgres, own_postgres_instance
from tests.support.server_harness import FakeClock, make_config, running

# Short limits so that the tests are quick; the lock is held far longer than any of them.
TIMEOUTS = DatabaseSettings(lock_timeout=1, statement_timeout=5, pool_timeout=5)
# A bound on every wait of the test itself (the code before the fix waited without end).
BOUND = 30


@contextlib.contextmanager
def refresh_tables_locked(database_url: str) -> Iterator[None]:
    """Hold the lock that every refresh needs, from another connection, for the block."""
    if database_url.startswith("sqlite"):
        outside = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            outside.execute("BEGIN IMMEDIATE")  # the database's single write lock
            yield
            outside.execute("ROLLBACK")
        finally:
            outside.close()
        return
    with psycopg.connect(database_url) as outside:
        outside.execute("LOCK TABLE refresh_families, refresh_tokens IN ACCESS EXCLUSIVE MODE")
        yield
        outside.rollback()


@contextlib.asynccontextmanager
async def stall_flow(database_url: str, clock: FakeClock) -> Any:
    config = make_config(database_url, database=TIMEOUTS)
    server = running(config, clock)
    async with server as harness:
        yield server.app, await set_up_flow(harness)


async def refresh(flow: Flow, token: str) -> httpx.Response:
    return await asyncio.wait_for(
        flow.token(grant_type="refresh_token", refresh_token=token), BOUND
    )


async def family_state(flow: Flow, token: str) -> tuple[int, int | None]:
    family = await flow.harness.server.storage.find_family(
        flow.harness.server.secret.hash_token(token)
    )
    assert family is not None
    return family.generation, family.revoked_at


def expect_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "temporarily_unavailable"
    assert int(response.headers["retry-after"]) > 0
    assert response.headers["cache-control"] == "no-store"


async def test_a_stalled_database_answers_503_and_the_family_survives(
    database_url: str, clock: FakeClock
) -> None:
    async with stall_flow(database_url, clock) as (_, flow):
        first = await flow.web_tokens()
        with refresh_tables_locked(database_url):
            # The client's first try and its retry with the same token both fail fast.
            expect_unavailable(await refresh(flow, first["refresh_token"]))
            clock.advance(12)
            expect_unavailable(await refresh(flow, first["refresh_token"]))
        assert await family_state(flow, first["refresh_token"]) == (0, None)

        clock.advance(30)  # far past any grace window: a rotation would now make it reuse
        rotated = await refresh(flow, first["refresh_token"])
        assert rotated.status_code == 200, rotated.text
        assert await family_state(flow, first["refresh_token"]) == (1, None)
        # The family lives on: the new token rotates, the access tokens are still active.
        assert (await refresh(flow, rotated.json()["refresh_token"])).status_code == 200
        assert (await flow.introspect(first["access_token"]))["active"] is True


async def test_a_refresh_the_client_gave_up_on_commits_nothing(
    database_url: str, clock: FakeClock
) -> None:
    """The client stops waiting while the refresh waits for the lock (the in-process transport
    cancels the request, as a server does on shutdown); its later retry is not reuse."""
    slow = DatabaseSettings(lock_timeout=20, statement_timeout=30, pool_timeout=5)
    async with running(make_config(database_url, database=slow), clock) as harness:
        flow = await set_up_flow(harness)
        first = await flow.web_tokens()
        with refresh_tables_locked(database_url):
            request = asyncio.ensure_future(
                flow.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
            )
            done, _ = await asyncio.wait([request], timeout=1)
            assert not done  # still waiting for the lock
            request.cancel()
            with pytest.raises(asyncio.CancelledError):
                await request
        assert await family_state(flow, first["refresh_token"]) == (0, None)
        clock.advance(60)
        retry = await refresh(flow, first["refresh_token"])
        assert retry.status_code == 200, retry.text
        assert await family_state(flow, first["refresh_token"]) == (1, None)


async def test_a_client_that_hung_up_before_the_commit_rotates_nothing(
    database_url: str, clock: FakeClock
) -> None:
    """At the ASGI level: the request body arrives, then the connection is reported closed
    (`http.disconnect`) before the rotation is committed."""
    async with stall_flow(database_url, clock) as (app, flow):
        first = await flow.web_tokens()
        body = urlencode(
            {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
        ).encode()
        status = await _call_and_hang_up(app, flow, body)
        assert status != 200
        assert await family_state(flow, first["refresh_token"]) == (0, None)
        clock.advance(60)  # a rotated-away token would now be reuse and revoke the family
        retry = await refresh(flow, first["refresh_token"])
        assert retry.status_code == 200, retry.text
        assert await family_state(flow, first["refresh_token"]) == (1, None)


async def _call_and_hang_up(app: Any, flow: Flow, body: bytes) -> int:
    credentials = base64.b64encode(f"{flow.web.client_id}:{flow.web_secret}".encode()).decode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": "/token",
        "raw_path": b"/token",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"auth.example.test"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Basic {credentials}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("auth.example.test", 443),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        # The body, then only the news that the client has gone.
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send), BOUND)
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1
    status: int = starts[0]["status"]
    return status


# -- a real server: the client times out while the refresh waits -----------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served_slowly(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """`authgate serve` whose lock waits outlast its clients' patience (10 s against 1 s)."""
    workdir = tmp_path_factory.mktemp("serve-stall")
    url = f"sqlite:///{workdir / 'authgate.db'}" if request.param == "sqlite" else None
    server = Served.start(url, workdir, extra_config="[database]\nlock_timeout = 10\n")
    try:
        yield server
    finally:
        server.stop()


def test_a_served_refresh_whose_client_timed_out_rotates_nothing(served_slowly: Served) -> None:
    """The review's case: the client's refresh times out while the database is locked; when the
    lock goes, the server finishes the refresh for nobody. It must not rotate: the client still
    holds the old token, which would otherwise be reuse once the grace window has passed."""
    served = served_slowly
    tokens = served.web_tokens()
    token = tokens["refresh_token"]
    auth = (served.web.client_id, served.web_secret)
    form = {"grant_type": "refresh_token", "refresh_token": token}
    answered = _token_lines(served.log)
    with refresh_tables_locked(served.env["AUTHGATE_DATABASE_URL"]):
        with pytest.raises(httpx.TimeoutException):
            httpx.post(served.url + "/token", data=form, auth=auth, timeout=1)
        time.sleep(1)  # the connection is closed; the server is still waiting for the lock
    deadline = time.monotonic() + BOUND
    while _token_lines(served.log) == answered:  # the server's answer to nobody
        assert time.monotonic() < deadline, served.log.read_text()
        time.sleep(0.1)
    assert served.run(lambda storage: _generation(storage, served, token)) == (0, None)
    retry = httpx.post(served.url + "/token", data=form, auth=auth, timeout=BOUND)
    assert retry.status_code == 200, retry.text
    assert served.run(lambda storage: _generation(storage, served, token)) == (1, None)


def _token_lines(log: Path) -> int:
    # The access lines of /token (the server logs JSON lines here).
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    return sum(line["msg"].startswith("POST /token ") for line in lines)


async def _generation(storage: Storage, served: Served, token: str) -> tuple[int, int | None]:
    family = await storage.find_family(ServerSecret(served.config.secret_key).hash_token(token))
    assert family is not None
    return family.generation, family.revoked_at


# -- a frozen PostgreSQL ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[OwnPostgres]:
    with own_postgres_instance() as own:
        asyncio.run(_upgrade(own.url))
        yield own


async def _upgrade(url: str) -> None:
    db = Database(url)
    try:
        await upgrade(db)
    finally:
        await db.close()


async def test_a_frozen_postgresql_answers_503_and_the_family_survives(
    own_postgres: OwnPostgres, clock: FakeClock
) -> None:
    """The review's 30 s freeze: every refresh during it fails with 503 within the configured
    limits (the server cannot enforce its own timeouts while frozen; the driver does), and after
    it the token the client holds still rotates."""
    settings = DatabaseSettings(lock_timeout=1, statement_timeout=2, pool_timeout=2)
    async with running(make_config(own_postgres.url, database=settings), clock) as harness:
        flow = await set_up_flow(harness)
        first = await flow.web_tokens()
        own_postgres.signal(signal.SIGSTOP)
        try:
            expect_unavailable(await refresh(flow, first["refresh_token"]))
            clock.advance(12)  # the client's retry with the same token
            expect_unavailable(await refresh(flow, first["refresh_token"]))
        finally:
            own_postgres.signal(signal.SIGCONT)
        clock.advance(30)
        rotated = await refresh(flow, first["refresh_token"])
        assert rotated.status_code == 200, rotated.text
        assert await family_state(flow, first["refresh_token"]) == (1, None)
