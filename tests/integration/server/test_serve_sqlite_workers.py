"""`authgate serve` with no configuration at all, and with several workers on one SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.server_harness import free_port, wait_ready

AUTHGATE = str(Path(sys.executable).parent / "authgate")


@pytest.mark.parametrize("workers", [1, 2])
def test_zero_config_serve(tmp_path: Path, workers: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHGATE_")}
    port = free_port()

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
    process = subprocess.Popen(
        [AUTHGATE, "serve", "--port", str(port), "--workers", str(workers)],
        cwd=tmp_path,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, process, log)
        metadata = httpx.get(url + "/.well-known/oauth-authorization-server").json()
        assert metadata["issuer"] == url  # the issuer follows where the server listens
        kids = set()
        with httpx.Client() as http:
            for _ in range(20):
                response = http.post(
                    url + "/token",
                    data={"grant_type": "client_credentials"},
                    auth=(client["client_id"], client["client_secret"]),
                )
                assert response.status_code == 200, response.text
                header = response.json()["access_token"].split(".")[0]
                kids.add(header)
        assert len(kids) == 1  # every worker signs with the same key
        assert (tmp_path / "authgate.db").exists()
        assert (tmp_path / "authgate.secret").stat().st_mode & 0o077 == 0
    finally:
        process.terminate()
        process.wait(timeout=15)
