"""Token endpoint and introspection throughput: authgate vs npm oidc-provider, in the same run.

    .venv/bin/python benchmarks/server/bench_token_endpoint.py [--duration 10]
        [--connections 1,16,64]
    .venv/bin/python benchmarks/server/bench_token_endpoint.py --limits off,memory,redis
        [--rounds 3] [--duration 10] [--limits-connections 16]

With `--limits`: the token endpoint (client_credentials, ES256) with its limits (the per-client
limit and the lockouts after failed client authentication) off, in memory (RateLimit fields on
refusals only, or with `memory_all` on every answer) and in Redis (127.0.0.1:6379), servers on one
database measured in turn (the order rotating each round), in the same run; the median req/s of
each and its ratio to "off", and each mode's CPU share per round (off's CPU per token over the
mode's), median and range (benchmarks/results/server-token-limits.json).

What it measures (one server process each, loopback, `wrk` as the load generator; each server
pinned to the last CPU and wrk to the first with `taskset`, as the issue's figures were taken:
one core per server; `--no-pin` leaves placement to the kernel):
- client_credentials with client_secret_basic and an RFC 8707 `resource`, JWT access tokens signed
  RS256 and ES256, at 1, 16 and 64 connections: requests per second and server CPU per token
  (user + system time of the server process, all threads, from /proc);
- introspection of an opaque authgate token (RFC 7662) at 16 connections.
Every response is checked (wrk counts non-2xx answers; a run with any is reported as failed).
Needs `wrk` (Debian package) and `npm install` in tests/node (oidc-provider). Results are printed
as a table and written to benchmarks/results/server-token-endpoint.json.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
AUTHGATE = str(Path(sys.executable).parent / "authgate")
PEER = Path(__file__).with_name("oidc_provider_peer.mjs")
RS256 = "https://rs256.bench.test"
ES256 = "https://es256.bench.test"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads and all its live descendants (the worker
    processes of `authgate serve --workers N`); with one worker, the same as `cpu_seconds`."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                )
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    total = 0.0
    for member in tree:
        try:
            total += cpu_seconds(member)
        except OSError:
            continue
    return total


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"server at {url} did not start")


# `taskset` prefixes: the server under test on the last CPU, the load on the first (`--no-pin`
# empties both).
_CPUS = sorted(os.sched_getaffinity(0))
SERVER_PIN = ["taskset", "-c", str(_CPUS[-1])] if len(_CPUS) > 1 else []
LOAD_PIN = ["taskset", "-c", str(_CPUS[0])] if len(_CPUS) > 1 else []


def wrk(
    *, url: str, body: str, auth: str, connections: int, duration: int, workdir: Path
) -> dict[str, Any]:
    script = workdir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
        f'wrk.headers["Authorization"] = "Basic {auth}"\n'
    )
    return run_wrk(script, url, connections, duration)


def run_wrk(script: Path, url: str, connections: int, duration: int) -> dict[str, Any]:
    """Run wrk with a Lua `script`; requests, rate, non-2xx answers and median latency."""
    threads = 1 if connections == 1 else 2
    out = subprocess.run(
        [
            *LOAD_PIN,
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)$", out, re.MULTILINE)
    return {
        "requests": requests,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "non_2xx": int(errors.group(1)) if errors else 0,
        "p50": p50.group(1) if p50 else "?",
    }


def measure(
    *, pid: int, url: str, body: str, auth: str, connections: int, duration: int, workdir: Path
) -> dict[str, Any]:
    load = {"url": url, "body": body, "auth": auth, "connections": connections, "workdir": workdir}
    wrk(**load, duration=2)  # warm-up
    before = cpu_seconds(pid)
    result = wrk(**load, duration=duration)
    used = cpu_seconds(pid) - before
    result["cpu_us_per_request"] = round(used / max(result["requests"], 1) * 1e6, 1)
    return result


def start_authgate(
    workdir: Path, env: dict[str, str] | None = None, config: str = ""
) -> tuple[subprocess.Popen[bytes], str, dict[str, Any], str]:
    """Set up the APIs and clients and serve them; `env` (filled in when given) is the server's
    environment, for more servers on the same database; `config` a TOML configuration."""
    env = env if env is not None else {}
    env.update(os.environ)
    config_path = ""
    if config:
        config_path = str(workdir / "authgate.toml")
        Path(config_path).write_text(config)
    env.update({"AUTHGATE_CONFIG": config_path, "AUTHGATE_SECRET_KEY": secrets.token_urlsafe(32)})
    port = free_port()
    env["AUTHGATE_ISSUER"] = f"http://127.0.0.1:{port}"

    def cli(*args: str) -> Any:
        out = subprocess.run(
            [AUTHGATE, *args, "--json"],
            cwd=workdir,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return json.loads(out)

    cli("api", "create", "--identifier", RS256, "--scope", "read", "--alg", "RS256")
    cli("api", "create", "--identifier", ES256, "--scope", "read", "--alg", "ES256")
    cli(
        "api",
        "create",
        "--identifier",
        "https://opaque.bench.test",
        "--scope",
        "read",
        "--token-format",
        "opaque",
    )
    client = cli(
        "client",
        "create",
        "--name",
        "bench",
        "--grant",
        "client_credentials",
        "--scope",
        f"{RS256}#read",
        "--scope",
        f"{ES256}#read",
        "--scope",
        "https://opaque.bench.test#read",
    )
    rs = cli("client", "create", "--name", "rs", "--introspect", "https://opaque.bench.test")
    process, url = serve(workdir, env, port)
    rs_auth = base64.b64encode(f"{rs['client_id']}:{rs['client_secret']}".encode()).decode()
    return process, url, client, rs_auth


def serve(
    workdir: Path, env: dict[str, str], port: int, name: str = "authgate"
) -> tuple[subprocess.Popen[bytes], str]:
    """`authgate serve` on `port` with `env`, once it answers."""
    process = subprocess.Popen(
        [*SERVER_PIN, AUTHGATE, "serve", "--port", str(port), "--log-level", "warning"],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(workdir / f"{name}.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/.well-known/jwks.json")
    return process, url


# The limits on POST /token in each mode: off (the token limit and both lockouts after failed
# client authentication), or on with a token limit high enough that no request is refused (what is
# measured is the cost of deciding, not of refusing): the lockouts and the token limit, one store
# operation after client authentication (one Redis call), with the RateLimit fields on refusals
# only (the default) or, in "memory_all", on every admitted answer too (`[limits] headers = "all"`).
_NO_LOCKOUTS = (
    "[limits.client_auth]\nenabled = false\n[limits.client_auth_address]\nenabled = false\n"
)
_HIGH = '[limits.token]\nrate = "1000000/second"\nburst = 1000000\n'
LIMIT_MODES = {
    "off": "[limits.token]\nenabled = false\n" + _NO_LOCKOUTS,
    "memory": _HIGH,
    "memory_all": '[limits]\nheaders = "all"\n' + _HIGH,
    "redis": (
        '[limits]\nredis_url = "redis://127.0.0.1:6379/0"\nnamespace = "bench-{tag}"\n' + _HIGH
    ),
}


def limits_run(args: argparse.Namespace) -> None:
    """The token endpoint (client_credentials, ES256) with the token limit off, in memory and in
    Redis: three servers on one database, measured in turn, `--rounds` times, in the same run;
    the medians and their ratios to "off"."""
    modes = args.limits.split(",")
    rounds: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        base_env: dict[str, str] = {}
        first, _, client, _ = start_authgate(workdir, base_env)
        first.terminate()
        first.wait(timeout=10)
        auth = base64.b64encode(
            f"{client['client_id']}:{client['client_secret']}".encode()
        ).decode()
        body = f"grant_type=client_credentials&scope=read&resource={ES256}"
        servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
        try:
            for mode in modes:
                config = workdir / f"{mode}.toml"
                config.write_text(LIMIT_MODES[mode].format(tag=secrets.token_hex(4)))
                # One issuer for all (the clients' audience); each server on a port of its own.
                env = {**base_env, "AUTHGATE_CONFIG": str(config)}
                servers[mode] = serve(workdir, env, free_port(), mode)
            for round_ in range(args.rounds):
                # The order rotates each round, so that no mode always runs first (after a
                # pause) or right after another one.
                shift = round_ % len(modes)
                for mode in modes[shift:] + modes[:shift]:
                    process, url = servers[mode]
                    r = measure(
                        pid=process.pid,
                        url=url + "/token",
                        body=body,
                        auth=auth,
                        connections=args.limits_connections,
                        duration=args.duration,
                        workdir=workdir,
                    )
                    rounds[mode].append(r)
                    print(
                        f"limits={mode:7} c={args.limits_connections:<3} {r['rps']:>8.0f} req/s  "
                        f"{r['cpu_us_per_request']:>7.1f} us CPU/token  non-2xx {r['non_2xx']}",
                        flush=True,
                    )
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait(timeout=10)
    medians = {
        mode: sorted(r["rps"] for r in runs)[len(runs) // 2] for mode, runs in rounds.items()
    }
    results: dict[str, Any] = {"duration_s": args.duration, "rounds": rounds, "medians": medians}
    if "off" in medians:
        print("\nratio to limits=off (median req/s):")
        for mode, value in medians.items():
            ratio = value / medians["off"] if medians["off"] else 0.0
            results.setdefault("ratios", {})[mode] = round(ratio, 3)
            print(f"  {mode:7} {ratio:.3f}")
    if "off" in rounds:
        # CPU per token is the steadier measure on a shared machine: off's over each mode's, per
        # round (the throughput a CPU-bound server keeps), median and range over rounds.
        print("\nCPU share (off's CPU per token over the mode's, per round): median (range)")
        for mode, runs in rounds.items():
            if mode == "off":
                continue
            shares = sorted(
                off["cpu_us_per_request"] / run["cpu_us_per_request"]
                for off, run in zip(rounds["off"], runs, strict=True)
                if run["cpu_us_per_request"]
            )
            if shares:
                results.setdefault("cpu_shares", {})[mode] = shares
                median = shares[len(shares) // 2]
                print(f"  {mode:7} {median:.3f} ({shares[0]:.3f}-{shares[-1]:.3f})")
    out = ROOT / "benchmarks" / "results" / "server-token-limits.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwritten to {out.relative_to(ROOT)}")


def start_peer(client_id: str, secret: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [*SERVER_PIN, "node", str(PEER), str(port), client_id, secret],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "NODE_ENV": "production"},
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/.well-known/openid-configuration")
    return process, url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", default="1,16,64")
    parser.add_argument(
        "--limits",
        default="",
        help="instead: the token limit's modes to compare in one run, e.g. off,memory,redis",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds per mode with --limits")
    parser.add_argument("--limits-connections", type=int, default=16)
    parser.add_argument(
        "--no-pin", action="store_true", help="no taskset: the kernel places servers and load"
    )
    args = parser.parse_args()
    if args.no_pin:
        SERVER_PIN.clear()
        LOAD_PIN.clear()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    if args.limits:
        limits_run(args)
        return
    connections = [int(c) for c in args.connections.split(",")]
    results: dict[str, Any] = {"duration_s": args.duration, "cpus": os.cpu_count(), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        # The token limit (6000/minute per client by default) and the lockouts off, as in
        # `--limits off`: oidc-provider has none, and with it on much of a run is answered 429.
        # The introspection limit too, for the introspection run.
        config = LIMIT_MODES["off"] + "[limits.introspection]\nenabled = false\n"
        ours, our_url, client, rs_auth = start_authgate(workdir, config=config)
        peer, peer_url = start_peer(client["client_id"], client["client_secret"])
        auth = base64.b64encode(
            f"{client['client_id']}:{client['client_secret']}".encode()
        ).decode()
        try:
            for resource, alg in ((RS256, "RS256"), (ES256, "ES256")):
                body = f"grant_type=client_credentials&scope=read&resource={resource}"
                for c in connections:
                    for name, process, url in (
                        ("authgate", ours, our_url),
                        ("oidc-provider", peer, peer_url),
                    ):
                        r = measure(
                            pid=process.pid,
                            url=url + "/token",
                            body=body,
                            auth=auth,
                            connections=c,
                            duration=args.duration,
                            workdir=workdir,
                        )
                        results["runs"].append({"server": name, "alg": alg, "connections": c, **r})
                        print(
                            f"{name:14} {alg} c={c:<3} {r['rps']:>8.0f} req/s  "
                            f"{r['cpu_us_per_request']:>7.1f} us CPU/token  p50 {r['p50']:>8}  "
                            f"non-2xx {r['non_2xx']}",
                            flush=True,
                        )
            token = httpx.post(
                our_url + "/token",
                auth=(client["client_id"], client["client_secret"]),
                data={"grant_type": "client_credentials", "resource": "https://opaque.bench.test"},
            ).json()["access_token"]
            r = measure(
                pid=ours.pid,
                url=our_url + "/introspect",
                body=f"token={token}",
                auth=rs_auth,
                connections=16,
                duration=args.duration,
                workdir=workdir,
            )
            results["runs"].append(
                {"server": "authgate", "endpoint": "introspect (opaque)", "connections": 16, **r}
            )
            print(
                f"authgate       introspect c=16 {r['rps']:>8.0f} req/s  "
                f"{r['cpu_us_per_request']:>7.1f} us CPU/request  non-2xx {r['non_2xx']}"
            )
        finally:
            for process in (ours, peer):
                process.terminate()
                process.wait(timeout=10)
    # Two ratios: req/s, and CPU per token (oidc-provider's / authgate's: how many tokens authgate
    # signs for the CPU one of oidc-provider's costs). On a shared machine req/s swings with the
    # other load; the CPU per token is the steadier figure.
    print("\nratio authgate / oidc-provider (req/s; CPU per token, oidc-provider's / authgate's):")
    for alg in ("RS256", "ES256"):
        for c in connections:
            pair = {
                r["server"]: r
                for r in results["runs"]
                if r.get("alg") == alg and r["connections"] == c
            }
            ours, peer = pair["authgate"], pair.get("oidc-provider")
            ratio = ours["rps"] / peer["rps"] if peer and peer["rps"] else 0
            cpu = (
                peer["cpu_us_per_request"] / ours["cpu_us_per_request"]
                if peer and ours["cpu_us_per_request"]
                else 0
            )
            print(f"  {alg} c={c:<3} {ratio:.2f}x req/s   {cpu:.2f}x CPU per token")
            results.setdefault("ratios", {})[f"{alg}/c{c}"] = round(ratio, 2)
            results.setdefault("cpu_ratios", {})[f"{alg}/c{c}"] = round(cpu, 2)
    out = ROOT / "benchmarks" / "results" / "server-token-endpoint.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwritten to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
