"""`authgate serve` stops gracefully on SIGTERM (issue 10): a refresh in flight (held up by a table
lock that the test holds) still completes with 200 after the signal, new connections are refused,
and the process exits 0 once the request is done."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from authgate.server.secret_key import ServerSecret
from authgate.server.storage import Storage
from tests.support.e2e_served import Served

pytestmark = pytest.mark.postgres

BOUND = 30.0  # bound on every wait of the test; the lock wait below is longer than any of them


@pytest.fixture(params=[1, 2], ids=["1-worker", "2-workers"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    server = Served.start(
        None, tmp_path, workers=request.param, extra_config="[database]\nlock_timeout = 60\n"
    )
    try:
        yield server
    finally:
        server.stop()


def test_sigterm_lets_a_refresh_in_flight_finish(served: Served) -> None:
    token = served.web_tokens()["refresh_token"]
    url = served.env["AUTHGATE_DATABASE_URL"]
    database = urlsplit(url).path.lstrip("/")
    result: dict[str, httpx.Response | Exception] = {}

    def refresh() -> None:
        form = {"grant_type": "refresh_token", "refresh_token": token}
        try:
            result["response"] = httpx.post(
                served.url + "/token",
                data=form,
                auth=(served.web.client_id, served.web_secret),
                timeout=BOUND * 2,
            )
        except httpx.HTTPError as error:
            result["response"] = error

    with psycopg.connect(url) as outside:
        outside.execute("LOCK TABLE refresh_families, refresh_tokens IN ACCESS EXCLUSIVE MODE")
        thread = threading.Thread(target=refresh, daemon=True)
        thread.start()
        _wait_until(lambda: _waiting_for_a_lock(database), "the refresh never waited for the lock")
        served.process.send_signal(signal.SIGTERM)
        if served_workers(served) == 1:
            # The listening socket goes first; the refresh is still waiting. (With workers,
            # uvicorn's supervisor keeps the shared socket open until the workers are done: a new
            # connection waits in the backlog, unanswered, and is reset when the process exits.)
            _wait_until(lambda: _refused(served.url), "new connections are still accepted")
        else:
            time.sleep(1)  # the workers have the signal; the refresh is still waiting
        assert thread.is_alive()
        assert served.process.poll() is None
        outside.rollback()  # releases the lock: the refresh goes on
    thread.join(BOUND)
    response = result["response"]
    assert isinstance(response, httpx.Response), response
    assert response.status_code == 200, response.text
    assert served.process.wait(BOUND) == 0
    # The rotation the client was told about was committed.
    assert served.run(lambda storage: _generation(storage, served, token)) == 1


def served_workers(served: Served) -> int:
    command = [str(part) for part in served.process.args]  # type: ignore[union-attr]
    return int(command[command.index("--workers") + 1])


def _wait_until(condition: object, message: str) -> None:
    deadline = time.monotonic() + BOUND
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


def _waiting_for_a_lock(database: str) -> bool:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test") as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
            (database,),
        ).fetchone()
    return row is not None and row[0] > 0


def _refused(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


async def _generation(storage: Storage, served: Served, token: str) -> int:
    family = await storage.find_family(ServerSecret(served.config.secret_key).hash_token(token))
    assert family is not None
    assert family.revoked_at is None
    return family.generation
