"""`authgate serve --workers 2`: whichever worker answers a scrape, `/metrics` counts the requests
of both (and of a worker that has exited), through the shared metrics directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.server_harness import free_port, wait_ready

AUTHGATE = str(Path(sys.executable).parent / "authgate")
TOKEN_200 = ("authgate_server_requests_total", (("endpoint", "token"), ("status", "200")))
IN_USE = ("authgate_server_db_pool_connections_in_use", ())
DEPARTED = {
    "written_at": 0,  # long ago: its gauges no longer count, its counters do
    "families": {
        "authgate_server_requests": [[TOKEN_200[0], [list(p) for p in TOKEN_200[1]], 1000]],
        "authgate_server_db_pool_connections_in_use": [[IN_USE[0], [], 500]],
    },
}


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url + "/metrics", timeout=10).text  # a new connection each time
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def _start(
    tmp_path: Path, env: dict[str, str]
) -> tuple[str, subprocess.Popen[bytes], dict[str, str]]:
    """A client-credentials client, then `serve --workers 2` on SQLite in `tmp_path`."""

    def cli(*args: str) -> dict[str, str]:
        out = subprocess.run(
            [AUTHGATE, *args, "--json"],
            cwd=tmp_path,
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        result: dict[str, str] = json.loads(out)
        return result

    cli("api", "create", "--identifier", "https://api.example.test", "--scope", "read")
    client = cli(
        "client", "create", "--name", "svc", "--grant", "client_credentials", "--scope", "read"
    )
    log = tmp_path / "serve.log"
    port = free_port()
    process = subprocess.Popen(
        [AUTHGATE, "serve", "--port", str(port), "--workers", "2"],
        cwd=tmp_path,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log)
    except BaseException:
        process.terminate()
        process.wait(timeout=15)
        raise
    return url, process, client


def _tokens(url: str, client: dict[str, str], n: int) -> None:
    for _ in range(n):  # a new connection each: the workers share them
        response = httpx.post(
            url + "/token",
            data={"grant_type": "client_credentials"},
            auth=(client["client_id"], client["client_secret"]),
        )
        assert response.status_code == 200, response.text


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AUTHGATE_")}


def test_any_worker_answers_for_all(tmp_path: Path) -> None:
    shared = tmp_path / "metrics"
    env = {**_environment(), "AUTHGATE_METRICS_DIR": str(shared)}
    url, process, client = _start(tmp_path, env)
    try:
        _wait_for(lambda: len(list(shared.glob("*.json"))) == 2, "both workers write metrics")
        (shared / "1.json").write_text(json.dumps(DEPARTED), encoding="utf-8")
        _tokens(url, client, 20)

        def every_worker_counts_all() -> bool:
            # Whichever worker answers: ten scrapes in a row, each with every worker's counts
            # (a worker sees its peer's samples at most about a second late).
            for _ in range(10):
                values = _scrape(url)
                issued = [
                    v for (n, _), v in values.items() if n == "authgate_server_tokens_issued_total"
                ]
                if values.get(TOKEN_200) != 1020 or sum(issued) != 20:
                    return False
                assert values[IN_USE] < 500  # the exited worker's gauge is left out
            return True

        _wait_for(every_worker_counts_all, "every worker's tokens counted, by either worker")
    finally:
        process.terminate()
        process.wait(timeout=15)
    assert not list(shared.glob("*.partial"))


def test_the_default_directory_is_temporary(tmp_path: Path) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = {**_environment(), "TMPDIR": str(temporary)}
    url, process, client = _start(tmp_path, env)
    try:
        _wait_for(
            lambda: len(list(temporary.glob("authgate-metrics-*/*.json"))) == 2,
            "both workers write metrics in a temporary directory",
        )
        _tokens(url, client, 6)
        _wait_for(lambda: _scrape(url).get(TOKEN_200) == 6, "every worker's tokens counted")
    finally:
        process.terminate()
        process.wait(timeout=15)
    assert list(temporary.iterdir()) == []  # removed once the workers stopped
