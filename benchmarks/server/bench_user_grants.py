"""Authorization-code redemptions and refresh-token grants per second on one `authgate serve`
process on PostgreSQL, with the server's CPU per grant, and the client_credentials rate of the same
server in the same run for comparison.

    .venv/bin/python benchmarks/server/bench_user_grants.py [--duration 10] [--connections 16]

What it measures (loopback, `wrk` as the load generator, 16 connections by default):
- `authorization_code`: a confidential client (client_secret_basic) redeems a code with PKCE
  (S256) and `redirect_uri`; each answer holds an RS256 JWT access token and a refresh token (scope
  `offline_access read`): the code is consumed, the token signed and recorded under its grant, the
  refresh-token family created. Codes are minted through the store just before the run (they live
  60 seconds), one per request.
- `refresh_token`: the same client rotates a refresh token; each answer holds a new access token
  and a new refresh token (family locked, rotated, the response sealed for the grace window).
  Families are minted through the store before the run, one per request, so every request is a
  first rotation, as in real traffic.
- `client_credentials` at the same concurrency: the baseline the two are compared with.
CPU is user + system time of the server process (all threads) from /proc, divided by the number
of answers; PostgreSQL's own CPU is not included. Every answer is checked: a run with any non-2xx
answer (a code or family used twice, or too few minted) is reported as failed. Results are printed
and written to benchmarks/results/server-user-grants.json. Needs `wrk` and the PostgreSQL server
at 127.0.0.1:5432 (user postgres).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from bench_token_endpoint import (
    AUTHGATE,
    ROOT,
    cpu_seconds,
    free_port,
    measure,
    run_wrk,
    wait_ready,
)

from authgate.server import admin
from authgate.server.auth_server import open_storage
from authgate.server.config import Config
from authgate.server.config_loader import load_config
from authgate.server.flows.refresh_tokens import new_family
from authgate.server.models import AuthorizationCode
from authgate.server.secret_key import ServerSecret
from authgate.server.storage import Storage

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
API = "https://api.bench.test"
REDIRECT = "https://app.bench.test/callback"
SCOPES = ("offline_access", "read")
VERIFIER = secrets.token_urlsafe(48)
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=")
MINT_CONCURRENCY = 32
WARM_UP = 3  # seconds


class Bench:
    """The server under test, its database, and minting through its store."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.database = f"authgate_bench_{secrets.token_hex(6)}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "AUTHGATE_CONFIG": "",
            "AUTHGATE_ISSUER": self.url,
            "AUTHGATE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{self.database}",
            "AUTHGATE_SECRET_KEY": secrets.token_urlsafe(32),
        }
        self.config: Config = load_config(None, self.env)
        self.secret = ServerSecret(self.config.secret_key)
        subprocess.run(
            [AUTHGATE, "db", "upgrade"], env=self.env, cwd=workdir, check=True, capture_output=True
        )
        self.client_id, client_secret, self.user_id = asyncio.run(self._register())
        self.auth = base64.b64encode(f"{self.client_id}:{client_secret}".encode()).decode()
        self.process = subprocess.Popen(
            [AUTHGATE, "serve", "--port", str(port), "--log-level", "warning"],
            env=self.env,
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=(workdir / "authgate.log").open("wb"),
        )
        wait_ready(self.url + "/.well-known/jwks.json")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    async def _register(self) -> tuple[str, str, str]:
        storage = await open_storage(self.config)
        now = int(time.time())
        try:
            await admin.create_api(storage, self.config, identifier=API, scopes=("read",), now=now)
            client, client_secret = await admin.create_client(
                storage,
                self.secret,
                name="bench",
                grant_types=("client_credentials", "authorization_code", "refresh_token"),
                scopes=("read",),
                redirect_uris=(REDIRECT,),
                now=now,
            )
            user = await admin.create_user(
                storage, username="bench", password=secrets.token_urlsafe(16), now=now
            )
        finally:
            await storage.close()
        assert client_secret is not None
        return client.client_id, client_secret, user.user_id

    def mint_codes(self, count: int) -> list[str]:
        """`count` fresh codes, stored through the store's `save_code`."""

        async def main() -> list[str]:
            storage = await open_storage(self.config)
            codes = [secrets.token_urlsafe(32) for _ in range(count)]
            pending = iter(codes)
            now = int(time.time())

            async def worker() -> None:
                for code in pending:
                    await self._save_code(storage, code, now)

            try:
                await asyncio.gather(*(worker() for _ in range(MINT_CONCURRENCY)))
            finally:
                await storage.close()
            return codes

        return asyncio.run(main())

    async def _save_code(self, storage: Storage, code: str, now: int) -> None:
        await storage.save_code(
            AuthorizationCode(
                code_hash=self.secret.hash_token(code),
                grant_id=secrets.token_urlsafe(16),
                client_id=self.client_id,
                redirect_uri=REDIRECT,
                redirect_uri_in_request=True,
                code_challenge=CHALLENGE.decode(),
                scopes=SCOPES,
                audiences=(API,),
                nonce=None,
                user_id=self.user_id,
                auth_time=now,
                amr=("pwd",),
                issued_at=now,
                expires_at=now + self.config.tokens.authorization_code_ttl,
            )
        )

    def mint_families(self, count: int) -> list[str]:
        """`count` refresh tokens, each the first of its own family (the store's
        `create_family`)."""

        async def main() -> list[str]:
            storage = await open_storage(self.config)
            tokens: list[str] = []
            now = int(time.time())

            async def worker(n: int) -> None:
                for _ in range(n):
                    token, family = new_family(
                        hash_token=self.secret.hash_token,
                        grant_id=secrets.token_urlsafe(16),
                        client_id=self.client_id,
                        user_id=self.user_id,
                        scopes=SCOPES,
                        audiences=(API,),
                        auth_time=now,
                        amr=("pwd",),
                        now=now,
                    )
                    await storage.create_family(family)
                    tokens.append(token)

            share, extra = divmod(count, MINT_CONCURRENCY)
            try:
                await asyncio.gather(
                    *(worker(share + (i < extra)) for i in range(MINT_CONCURRENCY))
                )
            finally:
                await storage.close()
            return tokens

        return asyncio.run(main())

    def load(
        self, prefix: str, values: list[str], connections: int, duration: int
    ) -> dict[str, Any]:
        """wrk POSTs `prefix + value` to /token, one value per request, spread over threads."""
        threads = 1 if connections == 1 else 2
        values_file = self.workdir / "values.txt"
        values_file.write_text("\n".join(values) + "\n")
        script = self.workdir / "grants.lua"
        script.write_text(
            _LUA.replace("@FILE@", json.dumps(str(values_file)))
            .replace("@THREADS@", str(threads))
            .replace("@PREFIX@", json.dumps(prefix))
            .replace("@AUTH@", self.auth)
        )
        before = cpu_seconds(self.process.pid)
        result = run_wrk(script, self.url + "/token", connections, duration)
        used = cpu_seconds(self.process.pid) - before
        result["cpu_us_per_grant"] = round(used / max(result["requests"], 1) * 1e6, 1)
        result["minted"] = len(values)
        return result


_LUA = """
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  values = {}
  for line in io.lines(@FILE@) do values[#values + 1] = line end
  n = 0
  headers = {}
  headers["Content-Type"] = "application/x-www-form-urlencoded"
  headers["Authorization"] = "Basic @AUTH@"
end
function request()
  local value = values[n * @THREADS@ + id + 1] or "exhausted"
  n = n + 1
  return wrk.format("POST", nil, headers, @PREFIX@ .. value)
end
"""


def measure_grant(bench: Bench, kind: str, connections: int, duration: int) -> dict[str, Any]:
    """Warm up, estimate the rate, mint enough for the timed run, run it."""
    if kind == "code":
        prefix = (
            f"grant_type=authorization_code&redirect_uri={quote(REDIRECT, safe='')}"
            f"&code_verifier={VERIFIER}&code="
        )
        mint = bench.mint_codes
    else:
        prefix = "grant_type=refresh_token&refresh_token="
        mint = bench.mint_families
    warm = bench.load(prefix, mint(4000), connections, WARM_UP)
    needed = int(warm["rps"] * duration * 1.6) + 2000
    return bench.load(prefix, mint(needed), connections, duration)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement (<=30)")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if not 1 <= args.duration <= 30:
        raise SystemExit("--duration must be 1-30 s: codes live 60 s from minting")
    results: dict[str, Any] = {
        "duration_s": args.duration,
        "connections": args.connections,
        "cpus": os.cpu_count(),
        "runs": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp))
        try:
            baseline = measure(
                pid=bench.process.pid,
                url=bench.url + "/token",
                body=f"grant_type=client_credentials&scope=read&resource={quote(API)}",
                auth=bench.auth,
                connections=args.connections,
                duration=args.duration,
                workdir=bench.workdir,
            )
            baseline["cpu_us_per_grant"] = baseline.pop("cpu_us_per_request")
            results["runs"]["client_credentials"] = baseline
            for kind, name in (("code", "authorization_code"), ("refresh", "refresh_token")):
                results["runs"][name] = measure_grant(bench, kind, args.connections, args.duration)
        finally:
            bench.close()
    cpus = os.cpu_count()
    print(f"authgate serve, 1 process, PostgreSQL, {args.connections} connections, {cpus} CPUs")
    baseline = results["runs"]["client_credentials"]["rps"]
    for name, run in results["runs"].items():
        failed = " FAILED: non-2xx answers" if run["non_2xx"] else ""
        print(
            f"  {name:19} {run['rps']:>8.0f} grants/s  {run['cpu_us_per_grant']:>7.1f} us CPU/grant"
            f"  p50 {run['p50']:>8}  {run['rps'] / baseline:.2f}x client_credentials{failed}"
        )
    out = ROOT / "benchmarks" / "results" / "server-user-grants.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwritten to {out.relative_to(ROOT)}")
    if any(run["non_2xx"] for run in results["runs"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
