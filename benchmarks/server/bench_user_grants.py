"""Authorization-code redemptions and refresh-token grants per second on one `authgate serve`
process on PostgreSQL, with the server's CPU per grant, and the client_credentials rate of the same
server in the same run for comparison.

    .venv/bin/python benchmarks/server/bench_user_grants.py [--duration 10] [--connections 16]
        [--database postgresql,sqlite] [--rounds 1] [--before OTHER/src]

(`--before`: a second server runs another authgate's `src`, measured alternately with this one in
every round; see benchmarks/README.md.)

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
CPU is user + system time of the server process (all threads, and its worker processes if any)
from /proc, divided by the number of answers; PostgreSQL's own CPU is not included. Every answer
is checked: a run with any non-2xx answer (a code or family used twice, or too few minted) is
reported as failed. Results are printed and written to benchmarks/results/server-user-grants.json.
Needs `wrk` and the PostgreSQL server at 127.0.0.1:5432 (user postgres).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import secrets
import statistics
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
    LIMIT_MODES,
    ROOT,
    free_port,
    measure,
    run_wrk,
    tree_cpu_seconds,
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
# Codes are redeemed with `openid` (an ID token, a second RS256 signature); refreshes without.
CODE_SCOPES = ("openid", "offline_access", "read")
SCOPES = ("offline_access", "read")
VERIFIER = secrets.token_urlsafe(48)
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=")
MINT_CONCURRENCY = 32
WARM_UP = 3  # seconds


class Bench:
    """The server under test, its database, and minting through its store."""

    def __init__(
        self,
        workdir: Path,
        backend: str = "postgresql",
        src: str | None = None,
        workers: int = 1,
        limits: str = LIMIT_MODES["off"],
    ) -> None:
        """`src`: the `src` folder of the authgate the server runs (default: this checkout's);
        `workers`: `authgate serve --workers` (the CPU measured is that of all its processes);
        `limits`: the server's `[limits]` configuration (default: the token limit and lockouts
        off)."""
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.database = f"authgate_bench_{secrets.token_hex(6)}"
        self.backend = backend
        if backend == "postgresql":
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.database}"')
            url = f"postgresql://postgres@127.0.0.1:5432/{self.database}"
        else:
            url = f"sqlite:///{workdir / 'authgate.db'}"
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "PYTHONPATH": src or str(ROOT / "src"),
            "AUTHGATE_CONFIG": "",
            "AUTHGATE_ISSUER": self.url,
            "AUTHGATE_DATABASE_URL": url,
            "AUTHGATE_SECRET_KEY": secrets.token_urlsafe(32),
        }
        self.config: Config = load_config(None, self.env)
        # The token limit off: the baseline's thousands of client_credentials per second from one
        # client would otherwise be refused (429) and measure the cost of refusing.
        config_file = workdir / "authgate.toml"
        config_file.write_text(limits)
        self.env["AUTHGATE_CONFIG"] = str(config_file)
        self.secret = ServerSecret(self.config.secret_key)
        subprocess.run(
            [AUTHGATE, "db", "upgrade"], env=self.env, cwd=workdir, check=True, capture_output=True
        )
        self.client_id, client_secret, self.user_id = asyncio.run(self._register())
        self.auth = base64.b64encode(f"{self.client_id}:{client_secret}".encode()).decode()
        command = [AUTHGATE, "serve", "--port", str(port), "--workers", str(workers)]
        self.process = subprocess.Popen(
            [*command, "--log-level", "warning"],
            env=self.env,
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=(workdir / "authgate.log").open("wb"),
        )
        wait_ready(self.url + "/.well-known/jwks.json")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)
        if self.backend != "postgresql":
            return
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
                scopes=CODE_SCOPES,
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
        before = tree_cpu_seconds(self.process.pid)
        result = run_wrk(script, self.url + "/token", connections, duration)
        used = tree_cpu_seconds(self.process.pid) - before
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


def measure_round(bench: Bench, connections: int, duration: int) -> dict[str, Any]:
    """client_credentials, then code redemptions, then refreshes, on one server."""
    baseline = measure(
        pid=bench.process.pid,
        url=bench.url + "/token",
        body=f"grant_type=client_credentials&scope=read&resource={quote(API)}",
        auth=bench.auth,
        connections=connections,
        duration=duration,
        workdir=bench.workdir,
    )
    baseline["cpu_us_per_grant"] = baseline.pop("cpu_us_per_request")
    runs = {"client_credentials": baseline}
    for kind, name in (("code", "authorization_code"), ("refresh", "refresh_token")):
        runs[name] = measure_grant(bench, kind, connections, duration)
    return runs


def _spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 3),
        "min": round(ordered[0], 3),
        "max": round(ordered[-1], 3),
    }


def _fmt(spread: dict[str, float]) -> str:
    return f"{spread['median']:.2f} ({spread['min']:.2f}-{spread['max']:.2f})"


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per grant: median CPU per grant and rate; per round ratios to client_credentials (CPU)."""
    out: dict[str, Any] = {}
    for name in ("client_credentials", "authorization_code", "refresh_token"):
        out[name] = {
            "cpu_us_per_grant": _spread([r[name]["cpu_us_per_grant"] for r in rounds]),
            "rps": _spread([r[name]["rps"] for r in rounds]),
        }
        if name != "client_credentials":
            out[name]["cpu_vs_client_credentials"] = _spread(
                [
                    r[name]["cpu_us_per_grant"] / r["client_credentials"]["cpu_us_per_grant"]
                    for r in rounds
                ]
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement (<=30)")
    parser.add_argument("--connections", default="16", help="comma-separated, e.g. 1,16,64")
    parser.add_argument("--database", default="postgresql", help="postgresql, sqlite or both")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--before",
        metavar="SRC",
        help="also serve the authgate in SRC (a `src` folder, e.g. of `git archive main`), "
        "measured alternately with this checkout in every round",
    )
    args = parser.parse_args()
    if not 1 <= args.duration <= 30:
        raise SystemExit("--duration must be 1-30 s: codes live 60 s from minting")
    connections = [int(c) for c in args.connections.split(",")]
    backends = args.database.split(",")
    versions = {"after": None, "before": args.before} if args.before else {"current": None}
    results: dict[str, Any] = {
        "duration_s": args.duration,
        "cpus": os.cpu_count(),
        "rounds": args.rounds,
        "runs": {},
    }
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            benches = {
                v: Bench(Path(tmp) / f"{backend}-{v}", backend, src) for v, src in versions.items()
            }
            try:
                for n in connections:
                    per_version: dict[str, list[dict[str, Any]]] = {v: [] for v in versions}
                    for r in range(args.rounds):
                        order = list(versions)
                        if r % 2:
                            order.reverse()
                        for v in order:
                            runs = measure_round(benches[v], n, args.duration)
                            failed |= any(run["non_2xx"] for run in runs.values())
                            per_version[v].append(runs)
                    for v, rounds in per_version.items():
                        summary = summarize(rounds)
                        results["runs"][f"{backend}/{n}/{v}"] = {"rounds": rounds, **summary}
                        print(f"{backend}, {n} connections, {v}:")
                        for name, row in summary.items():
                            vs = row.get("cpu_vs_client_credentials")
                            ratio = "" if vs is None else f"  {_fmt(vs)}x client_credentials CPU"
                            print(
                                f"  {name:19} {row['rps']['median']:>8.0f} grants/s"
                                f"  {row['cpu_us_per_grant']['median']:>7.1f} us CPU/grant{ratio}"
                            )
                    if "before" in per_version:
                        for name in ("authorization_code", "refresh_token"):
                            cpu = _spread(
                                [
                                    a[name]["cpu_us_per_grant"] / b[name]["cpu_us_per_grant"]
                                    for a, b in zip(
                                        per_version["after"], per_version["before"], strict=True
                                    )
                                ]
                            )
                            results["runs"][f"{backend}/{n}/after_vs_before/{name}"] = cpu
                            print(f"  {name} CPU after/before {_fmt(cpu)}")
            finally:
                for bench in benches.values():
                    bench.close()
    out = ROOT / "benchmarks" / "results" / "server-user-grants.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwritten to {out.relative_to(ROOT)}")
    if failed:
        print("FAILED: non-2xx answers")
        sys.exit(1)


if __name__ == "__main__":
    main()
