"""Gateway benchmark: the upstream alone, the authgate gateway, the reference Node.js gateway
(Express + jsonwebtoken + jwks-rsa + http-proxy-middleware, `node_gateway.mjs`) and HAProxy with
its native `jwt_verify` (Debian's `haproxy`, 2.6), each with a valid RS256 token, at 1, 16 and 64
connections; the forward-auth endpoint's decisions per second; and the verifier's cached
verifications per second; and the authgate gateway again with `access_log = false`, so that the
cost of its JSON access lines shows as the ratio on/off in the same run.

    .venv/bin/python benchmarks/gateway/run.py [--duration 10] [--repeat 3] [--connections 1,16,64]
        [--limits] [--no-node] [--no-haproxy] [--peers-only] [--before SRC]

HAProxy checks the token in its configuration language: the signature with `jwt_verify` (the
issuer's public key as a PEM file), then `iss`, `aud`, `exp` (present and in the future) and the
route's scope with `http-request deny` rules on `jwt_payload_query`; no cache. When `haproxy` is
not installed (apt-get install -y haproxy) its row is skipped with a message. Before timing, every
gateway must accept the valid token and refuse an expired one, one signed by another key (same
`kid`), and ones for another audience or issuer, with 401 or 403; otherwise the run stops.

`--peers-only` leaves out the forward-auth rows and the access-log pair. `--before SRC` adds a
second authgate gateway that imports authgate from another source tree (e.g. `git worktree add
/tmp/gw-before main`, then `--before /tmp/gw-before/src`), measured in the same rounds: the way to
measure a change to the request path. Each round also gives same-round ratios (authgate against
HAProxy, Node and the `--before` build, in requests per second, p99 and CPU per request); the
table shows their median and range over rounds.

`--limits` adds two more authgate gateways to the same run, identical but for a rate limit on the
route (keyed by the token's subject, high enough never to refuse: every request is counted): one
counting in memory, one in Redis, and one in memory that also puts the RateLimit fields on every
allowed answer (`[limits] headers = "all"`). The Redis is the run's
own `redis-server` (apt-get install redis-server) on a free port, pinned with the load generator,
as it would run on another machine in production rather than on the gateway's core; its script
calls, commands (`INFO commandstats`) and CPU per request are reported for the Redis-limited
gateway. Each is
reported as a share of the unlimited gateway: of its requests per second, and of its CPU per
request (the gateway process's user and system time over the requests wrk counted), which other
work on the machine disturbs much less than wall-clock rates. `--no-node` leaves the Node.js
gateway out.

Needs `wrk` and `nginx` (apt-get install wrk nginx-light), Node.js and the test peers
(`cd tests/node && npm ci`). Every server listens on loopback. One core each: the process under
test is pinned to the last CPU, the load generator and the upstream (nginx, one worker) to the first
(on a 2-core machine they share it; the upstream-alone row pins nginx to the last CPU instead).
The targets are measured in interleaved rounds and each one's median round is reported, so that
load from elsewhere on the machine hits them alike. Prints a Markdown table; writes JSON to
benchmarks/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import redis

from authgate.jose import JWK, jwt
from authgate.verifier import BearerCredential, IssuerConfig, Verifier, VerifierConfig

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "tests" / "node" / "node_modules"
AUDIENCE = "https://api.example.com"
CPUS = sorted(os.sched_getaffinity(0))
LOAD_CPU, TEST_CPU = str(CPUS[0]), str(CPUS[-1])
HAPROXY = shutil.which("haproxy") or (
    "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, process: subprocess.Popen[bytes], name: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited early (status {process.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            time.sleep(0.05)
        else:
            return
    raise SystemExit(f"{name} did not start listening on {port}")


class JWKSServer:
    """Serves the issuer's JWKS on loopback (fetched once at start by each gateway)."""

    def __init__(self, key: JWK) -> None:
        body = json.dumps({"keys": [key.public().to_dict()]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "max-age=3600")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def nginx_upstream(directory: Path, port: int) -> subprocess.Popen[bytes]:
    temp = " ".join(
        f"{n}_temp_path {directory / n};"
        for n in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = directory / "upstream.conf"
    conf.write_text(f"""
daemon off; master_process off; worker_processes 1;
pid {directory / "nginx.pid"}; error_log {directory / "nginx.log"} warn;
events {{ worker_connections 4096; }}
http {{
  access_log off; {temp}
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{ default_type application/json; return 200 '{{"ok":true}}'; }}
  }}
}}
""")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    process = subprocess.Popen(
        ["taskset", "-c", LOAD_CPU, nginx, "-p", str(directory), "-c", str(conf)]
    )
    wait_port(port, process, "nginx")
    return process


REDIS_URL = "redis://127.0.0.1:6379/0"  # replaced by the run's own redis-server with --limits
# Never refuses at these rates, so every request pays for a decision and its fields.
BENCH_RATE = "1000000/second"


def limits_toml(limits: str, namespace: str) -> tuple[str, str]:
    """(top-level table, route keys) for a gateway with `limits` "off", "memory" or "redis"."""
    if limits == "off":
        return "", ""
    route = f'rate_limit = "{BENCH_RATE}"\n'
    if limits == "memory":
        return "", route
    if limits == "memory-fields":  # the RateLimit fields on allowed answers too
        return '[limits]\nheaders = "all"\n', route
    return f'[limits]\nredis_url = "{REDIS_URL}"\nnamespace = "{namespace}"\n', route


def authgate_gateway(
    directory: Path,
    port: int,
    jwks: JWKSServer,
    upstream: int,
    *,
    limits: str = "off",
    namespace: str = "bench",
    access_log: bool = True,
    extra: str = "",
    src: Path | None = None,
) -> subprocess.Popen[bytes]:
    """An `authgate gateway` on `port` in front of `upstream`; `extra`: more top-level keys;
    `src`: the source tree to import authgate from (default: this interpreter's)."""
    directory = directory / f"authgate-{limits}-{port}"
    directory.mkdir()
    top, route = limits_toml(limits, namespace)
    config = directory / "gateway.toml"
    config.write_text(f"""
listen = "127.0.0.1:{port}"
access_log = {str(access_log).lower()}
{extra}
{top}
[[issuers]]
issuer = "{jwks.url}"
jwks_uri = "{jwks.url}/jwks.json"
audiences = ["{AUDIENCE}"]
[[routes]]
path = "/api"
upstream = "http://127.0.0.1:{upstream}"
scopes = ["orders:read"]
{route}
""")
    log = (directory / f"authgate-{port}.log").open("wb")
    process = subprocess.Popen(
        ["taskset", "-c", TEST_CPU, str(Path(sys.executable).with_name("authgate")), "gateway",
         "--config", str(config)],
        stderr=log,
        env={**os.environ, "PYTHONPATH": str(src)} if src is not None else None,
    )  # fmt: skip
    wait_port(port, process, "authgate gateway")
    return process


def node_gateway(
    directory: Path, port: int, jwks: JWKSServer, upstream: int
) -> subprocess.Popen[bytes]:
    # ESM resolves packages next to the script: run a copy beside a link to the test peers.
    (directory / "node_modules").symlink_to(NODE_MODULES)
    script = directory / "node_gateway.mjs"
    shutil.copy(Path(__file__).with_name("node_gateway.mjs"), script)
    env = {
        **os.environ,
        "PORT": str(port),
        "JWKS_URI": f"{jwks.url}/jwks.json",
        "ISSUER": jwks.url,
        "AUDIENCE": AUDIENCE,
        "UPSTREAM": f"http://127.0.0.1:{upstream}",
        "NODE_ENV": "production",
    }
    process = subprocess.Popen(
        ["taskset", "-c", TEST_CPU, "node", str(script)], env=env, stdout=subprocess.DEVNULL
    )
    wait_port(port, process, "node gateway")
    return process


def haproxy_gateway(
    directory: Path, port: int, key: JWK, issuer: str, upstream: int
) -> subprocess.Popen[bytes]:
    """HAProxy (Debian's `haproxy`, 2.6+) checking the token in its own configuration language:
    the RS256 signature with `jwt_verify`, then `iss`, `aud`, `exp` and the scope with deny rules
    on `jwt_payload_query`; no cache. One thread, like the others, on the test CPU."""
    pem = directory / "haproxy-key.pem"
    pem.write_bytes(key.public().to_pem())
    scope = re.escape("orders:read")
    config = directory / "haproxy.cfg"
    config.write_text(rf"""
global
  nbthread 1
  maxconn 8192
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend gateway
  bind 127.0.0.1:{port}
  http-request deny deny_status 401 unless {{ req.hdr_cnt(authorization) eq 1 }}
  http-request set-var(txn.bearer) http_auth_bearer
  http-request deny deny_status 401 unless {{ var(txn.bearer) -m found }}
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('$.alg')
  http-request deny deny_status 401 unless {{ var(txn.alg) -m str RS256 }}
  http-request deny deny_status 401 unless {{ var(txn.bearer),jwt_verify(txn.alg,"{pem}") -m int 1 }}
  http-request set-var(txn.iss) var(txn.bearer),jwt_payload_query('$.iss')
  http-request deny deny_status 401 unless {{ var(txn.iss) -m str {issuer} }}
  http-request set-var(txn.aud) var(txn.bearer),jwt_payload_query('$.aud')
  http-request deny deny_status 401 unless {{ var(txn.aud) -m str {AUDIENCE} }}
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')
  http-request deny deny_status 401 unless {{ var(txn.exp) -m found }}
  http-request set-var(txn.now) date
  http-request deny deny_status 401 if {{ var(txn.exp),sub(txn.now) -m int le 0 }}
  http-request set-var(txn.scope) var(txn.bearer),jwt_payload_query('$.scope')
  http-request deny deny_status 403 unless {{ var(txn.scope) -m reg (^|\ ){scope}(\ |$) }}
  http-request set-header X-Auth-Subject %[var(txn.bearer),jwt_payload_query('$.sub')]
  http-request del-header Authorization
  default_backend upstream
backend upstream
  server up 127.0.0.1:{upstream} maxconn 1024
""")  # noqa: E501 - HAProxy configuration lines
    process = subprocess.Popen(
        ["taskset", "-c", TEST_CPU, HAPROXY, "-db", "-f", str(config)],
        stdout=subprocess.DEVNULL,
    )
    wait_port(port, process, "haproxy")
    return process


def status_of(url: str, headers: dict[str, str]) -> int:
    """The status of one GET (a new connection)."""
    host, _, rest = url.removeprefix("http://").partition("/")
    connection = http.client.HTTPConnection(host, timeout=10)
    try:
        connection.request("GET", "/" + rest, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def check_rejections(targets: dict[str, str], tokens: dict[str, str]) -> None:
    """Every gateway refuses each bad token with 401 or 403, and accepts the good one; stop the
    run otherwise (its figures would not compare like with like)."""
    for name, url in targets.items():
        if name == "upstream alone":
            continue
        for label, token in tokens.items():
            status = status_of(url, {"Authorization": f"Bearer {token}"})
            ok = status == 200 if label == "valid" else status in (401, 403)
            if not ok:
                raise SystemExit(f"{name} answered {status} to the {label} token")
        print(f"{name}: refuses {', '.join(t for t in tokens if t != 'valid')}", flush=True)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url: str, connections: int, duration: float, headers: dict[str, str]) -> dict[str, float]:
    seconds = max(1, round(duration))
    command = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
               "--latency", "--timeout", "5s"]  # fmt: skip
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = re.search(r"(\d+) requests in", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "requests": int(total.group(1)) if total else 0,
        "p99_ms": float(p99.group(1)) * _UNITS[p99.group(2)] if p99 else float("nan"),
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "",  # type: ignore[dict-item]
    }


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(url: str, c: int, duration: float, headers: dict[str, str], pid: int | None) -> Any:
    """`wrk`, plus the CPU the process `pid` spent per request meanwhile (µs), when given."""
    before = cpu_seconds(pid) if pid is not None else 0.0
    row: dict[str, Any] = wrk(url, c, duration, headers)
    if pid is not None and row["requests"]:
        row["cpu_us"] = (cpu_seconds(pid) - before) / row["requests"] * 1e6
    return row


def redis_counters(url: str) -> tuple[int, int, float]:
    """The run's own Redis: script calls served (the limits store sends one per batch of
    decisions), every command (those the scripts run included; INFO left out), its CPU seconds."""
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        stats = client.info("commandstats")
        cpu = client.info("cpu")
    finally:
        client.close()
    calls = sum(stats.get(f"cmdstat_{c}", {}).get("calls", 0) for c in ("evalsha", "eval"))
    commands = sum(v["calls"] for k, v in stats.items() if k != "cmdstat_info")
    return calls, commands, float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def pin(pid: int, cpu: str) -> None:
    subprocess.run(["taskset", "-pc", cpu, str(pid)], check=True, capture_output=True)


def record(
    runs: list[dict[str, Any]], target: str, c: int, round_: int, row: dict[str, Any]
) -> None:
    runs.append({"target": target, "connections": c, "round": round_, **row})
    bad = f"  NON-2xx: {row['non_2xx']}" if row["non_2xx"] else ""
    unit = "decisions/s" if target == "forward-auth" else "req/s"
    cpu = f"  CPU {row['cpu_us']:.1f} µs/request" if "cpu_us" in row else ""
    print(
        f"round {round_ + 1} {target:>23} c={c:<3} {row['rps']:>10.0f} {unit}  "
        f"p99 {row['p99_ms']:.2f} ms{cpu}{bad}",
        flush=True,
    )


def medians(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per target and connection count, the round with the median rate (and, where measured,
    the median CPU per request over the rounds)."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["target"], run["connections"]), []).append(run)
    out = []
    for group in groups.values():
        ordered = sorted(group, key=lambda r: r["rps"])
        row = dict(ordered[len(ordered) // 2])
        for field in ("cpu_us", "redis_calls", "redis_commands", "redis_cpu_us"):
            values = sorted(r[field] for r in group if field in r)
            if values:
                row[field] = values[len(values) // 2]
        out.append(row)
    return out


def cached_verifications(jwks: JWKSServer, token: str, n: int = 1_000_000) -> float:
    """`Verifier.authenticate_nowait` on a cache hit, n times, on the test CPU."""
    os.sched_setaffinity(0, {int(TEST_CPU)})

    async def measure() -> float:
        config = VerifierConfig(
            issuers=(IssuerConfig(jwks.url, (AUDIENCE,), jwks_uri=f"{jwks.url}/jwks.json"),)
        )
        verifier = Verifier(config)
        await verifier.start(background=False)
        credential = BearerCredential(token)
        await verifier.authenticate(credential)
        check = verifier.authenticate_nowait
        started = time.perf_counter()
        for _ in range(n):
            check(credential)
        elapsed = time.perf_counter() - started
        await verifier.aclose()
        return n / elapsed

    try:
        return asyncio.run(measure())
    finally:
        os.sched_setaffinity(0, set(CPUS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--connections", default="1,16,64", help="comma-separated counts")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (the median is reported)")
    parser.add_argument(
        "--limits", action="store_true", help="add gateways with rate limits in memory and Redis"
    )
    parser.add_argument("--no-node", action="store_true", help="leave the Node.js gateway out")
    parser.add_argument("--no-haproxy", action="store_true", help="leave HAProxy out")
    parser.add_argument(
        "--peers-only",
        action="store_true",
        help="only authgate and its peers: no forward-auth, no access-log pair",
    )
    parser.add_argument(
        "--before",
        type=Path,
        metavar="SRC",
        help="add an authgate gateway run from another source tree (its src/), e.g. main's",
    )
    args = parser.parse_args()
    needed = ("wrk", "taskset", *(() if args.no_node else ("node",)))
    for tool in (*needed, *(("redis-server",) if args.limits else ())):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is required (see the module docstring)")
    if not args.no_node and not NODE_MODULES.is_dir():
        raise SystemExit("run `cd tests/node && npm ci` first (or pass --no-node)")
    connections = [int(c) for c in args.connections.split(",")]

    key = JWK.generate("RSA", alg="RS256", kid="bench-key")
    jwks = JWKSServer(key)
    now = int(time.time())
    claims = {"iss": jwks.url, "aud": AUDIENCE, "sub": "bench-user", "client_id": "bench",
              "scope": "orders:read", "iat": now, "exp": now + 7200}  # fmt: skip
    token = jwt.encode(claims, key, "RS256")
    auth = {"Authorization": f"Bearer {token}"}
    other = JWK.generate("RSA", alg="RS256", kid="bench-key")  # same kid, another key
    bad_tokens = {
        "valid": token,
        "expired": jwt.encode({**claims, "exp": now - 60}, key, "RS256"),
        "wrong-signature": jwt.encode(claims, other, "RS256"),
        "wrong-audience": jwt.encode({**claims, "aud": "https://other.example"}, key, "RS256"),
        "wrong-issuer": jwt.encode({**claims, "iss": "https://other.example"}, key, "RS256"),
    }
    if HAPROXY is None and not args.no_haproxy:
        print("haproxy is not installed: HAProxy's row is skipped "
              "(apt-get install -y haproxy, see benchmarks/README.md)", flush=True)  # fmt: skip

    results: dict[str, Any] = {"cpus": len(CPUS), "duration": args.duration, "repeat": args.repeat}
    runs: list[dict[str, Any]] = []
    namespace = f"bench-{os.getpid()}"
    global REDIS_URL  # noqa: PLW0603 - the run's own Redis, set once before any gateway starts
    with tempfile.TemporaryDirectory(prefix="authgate-bench-") as tmp:
        work = Path(tmp)
        names = ["upstream", "authgate", *LIMITED, "node", "haproxy", "before", "redis", "quiet"]
        ports = {name: free_port() for name in names}
        processes = [nginx_upstream(work, ports["upstream"])]
        if args.limits:
            processes.append(redis_server(work, ports["redis"]))
            REDIS_URL = f"redis://127.0.0.1:{ports['redis']}/0"
        try:
            processes.append(authgate_gateway(work, ports["authgate"], jwks, ports["upstream"]))
            pids = {"authgate": processes[-1].pid}
            targets = {
                "upstream alone": f"http://127.0.0.1:{ports['upstream']}/api/orders",
                "authgate": f"http://127.0.0.1:{ports['authgate']}/api/orders",
            }
            if args.limits:
                for name, mode in LIMITED.items():
                    processes.append(
                        authgate_gateway(
                            work,
                            ports[name],
                            jwks,
                            ports["upstream"],
                            limits=mode,
                            namespace=namespace,
                        )
                    )
                    pids[name] = processes[-1].pid
                    targets[name] = f"http://127.0.0.1:{ports[name]}/api/orders"
            if args.before is not None:
                processes.append(
                    authgate_gateway(
                        work, ports["before"], jwks, ports["upstream"], src=args.before
                    )
                )
                targets["authgate (before)"] = f"http://127.0.0.1:{ports['before']}/api/orders"
                pids["authgate (before)"] = processes[-1].pid
            if not args.peers_only:
                # The same gateway without its access log: what the JSON lines cost.
                processes.append(
                    authgate_gateway(
                        work, ports["quiet"], jwks, ports["upstream"], access_log=False
                    )
                )
                targets["authgate, no access log"] = f"http://127.0.0.1:{ports['quiet']}/api/orders"
            if not args.no_node:
                processes.append(node_gateway(work, ports["node"], jwks, ports["upstream"]))
                targets["node"] = f"http://127.0.0.1:{ports['node']}/api/orders"
                pids["node"] = processes[-1].pid
            if HAPROXY is not None and not args.no_haproxy:
                processes.append(
                    haproxy_gateway(work, ports["haproxy"], key, jwks.url, ports["upstream"])
                )
                targets["haproxy"] = f"http://127.0.0.1:{ports['haproxy']}/api/orders"
                pids["haproxy"] = processes[-1].pid
            check_rejections(targets, bad_tokens)
            for name, url in targets.items():  # warm-up (JIT, pools, caches)
                if name != "upstream alone":
                    wrk(url, 16, min(3.0, args.duration), auth)
            check = f"http://127.0.0.1:{ports['authgate']}/_authgate/check"
            check_headers = {**auth, "X-Original-URI": "/api/orders", "X-Original-Method": "GET"}
            # Rounds interleave the targets, so that load from elsewhere hits them alike; the
            # table reports each target's median round.
            for round_ in range(args.repeat):
                for c in connections:
                    order = list(targets.items())
                    shift = round_ % len(order)  # rotate, so that no target always goes first
                    for name, url in order[shift:] + order[:shift]:
                        upstream_alone = name == "upstream alone"
                        if upstream_alone:  # the upstream gets the test CPU for its own row
                            pin(processes[0].pid, TEST_CPU)
                        counted = LIMITED.get(name) == "redis"
                        redis_before = redis_counters(REDIS_URL) if counted else (0, 0, 0.0)
                        row = measured(url, c, args.duration, auth, pids.get(name))
                        if counted and row["requests"]:
                            # Redis commands and Redis CPU per gateway request: the decisions of
                            # concurrent requests share one script call.
                            calls, commands, cpu = redis_counters(REDIS_URL)
                            n = row["requests"]
                            row["redis_calls"] = (calls - redis_before[0]) / n
                            row["redis_commands"] = (commands - redis_before[1]) / n
                            row["redis_cpu_us"] = (cpu - redis_before[2]) / n * 1e6
                        if upstream_alone:
                            pin(processes[0].pid, LOAD_CPU)
                        record(runs, name, c, round_, row)
                for c in () if args.peers_only else (16, 64):
                    row = measured(check, c, args.duration, check_headers, pids["authgate"])
                    record(runs, "forward-auth", c, round_, row)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(10)
    results["runs"] = runs
    results["rows"] = medians(runs)
    rates = sorted(cached_verifications(jwks, token) for _ in range(args.repeat))
    results["cached_verifications_per_s"] = rates[len(rates) // 2]
    print_table(results)
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / f"gateway-{int(time.time())}.json").write_text(json.dumps(results, indent=2))


LIMITED = {
    "authgate, memory limits": "memory",
    "authgate, Redis limits": "redis",
    "authgate, memory limits, fields": "memory-fields",
}


def redis_server(directory: Path, port: int) -> subprocess.Popen[bytes]:
    """The run's own Redis, on the load generator's CPU, nothing saved to disk."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    process = subprocess.Popen(
        ["taskset", "-c", LOAD_CPU, binary, "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    wait_port(port, process, "redis-server")
    return process


# (label, numerator target, denominator target, measure): ratios taken within each round.
PAIRS = (
    ("authgate / HAProxy, req/s", "authgate", "haproxy", "rps"),
    ("authgate / Node, req/s", "authgate", "node", "rps"),
    ("authgate / Node, p99", "authgate", "node", "p99_ms"),
    ("authgate / HAProxy, p99", "authgate", "haproxy", "p99_ms"),
    ("HAProxy / authgate, CPU per request", "haproxy", "authgate", "cpu_us"),
    ("Node / authgate, CPU per request", "node", "authgate", "cpu_us"),
    ("authgate / authgate (before), req/s", "authgate", "authgate (before)", "rps"),
    ("authgate (before) / authgate, CPU per request", "authgate (before)", "authgate", "cpu_us"),
)


def paired(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each pair's ratio in every round (the two ran moments apart), per connection count: the
    median and the range over rounds."""
    at = {(r["target"], r["connections"], r["round"]): r for r in results["runs"]}
    out = []
    for label, top, bottom, measure in PAIRS:
        for c in sorted({r["connections"] for r in results["runs"]}):
            ratios = sorted(
                at[top, c, n][measure] / at[bottom, c, n][measure]
                for n in range(results["repeat"])
                if (top, c, n) in at and (bottom, c, n) in at
                and at[bottom, c, n].get(measure) and measure in at[top, c, n]
            )  # fmt: skip
            if ratios:
                out.append({"pair": label, "connections": c, "median": ratios[len(ratios) // 2],
                            "min": ratios[0], "max": ratios[-1]})  # fmt: skip
    return out


def print_paired(results: dict[str, Any]) -> None:
    rows = paired(results)
    results["paired"] = rows
    if not rows:
        return
    print("\n| same-round ratio | connections | median | range over rounds |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['pair']} | {r['connections']} | {r['median']:.2f} | "
              f"{r['min']:.2f}-{r['max']:.2f} |")  # fmt: skip


def print_table(results: dict[str, Any]) -> None:
    rows = results["rows"]
    by = {(r["target"], r["connections"]): r for r in rows}
    print(
        f"\n{results['cpus']} CPUs, {results['duration']:.0f} s per measurement, "
        f"median of {results['repeat']} rounds\n"
    )
    counts = sorted({r["connections"] for r in rows if r["target"] == "authgate"})
    peers = [t for t in ("authgate (before)", "haproxy", "node") if (t, counts[0]) in by]
    if peers:
        print("| connections | upstream alone req/s | authgate req/s (p99, CPU/request) | "
              + " | ".join(f"{t} req/s (p99, CPU/request)" for t in peers) + " |")  # fmt: skip
        print("|---:|---:|---:|" + "---:|" * len(peers))
        for c in counts:
            cells = [by[("upstream alone", c)]["rps"]]
            line = f"| {c} | {cells[0]:,.0f} |"
            for t in ("authgate", *peers):
                r = by[(t, c)]
                line += (f" {r['rps']:,.0f} ({r['p99_ms']:.2f} ms, "
                         f"{r.get('cpu_us', float('nan')):.0f} µs) |")  # fmt: skip
            print(line)
    if any(r["target"] in LIMITED for r in rows):
        # Two views of the same runs: requests per second (wall clock, which other work on the
        # machine disturbs), and the gateway's CPU per request (which it barely does): on a core
        # of its own, a CPU-bound gateway serves 1 / (CPU per request).
        print("\n| connections | authgate, no limits: req/s, CPU/request | memory limits | "
              "Redis limits | memory limits, fields on allowed answers |")  # fmt: skip
        print("|---:|---:|---:|---:|---:|")
        for c in counts:
            off = by[("authgate", c)]
            cells = [f"{off['rps']:,.0f}, {off.get('cpu_us', float('nan')):.1f} µs"]
            for name in LIMITED:
                row = by[(name, c)]
                cpu_share = off.get("cpu_us", float("nan")) / row.get("cpu_us", float("nan"))
                cells.append(
                    f"{row['rps']:,.0f} ({row['rps'] / off['rps']:.1%}), "
                    f"{row.get('cpu_us', float('nan')):.1f} µs ({cpu_share:.1%})"
                )
            print(f"| {c} | {' | '.join(cells)} |")
        print("\nshares: of the unlimited gateway's req/s, and its CPU per request over this one's")
        for c in counts:
            row = by[("authgate, Redis limits", c)]
            if "redis_calls" in row:
                print(
                    f"Redis limits, {c} connections, per gateway request:"
                    f" {row['redis_calls']:.3f} script calls ({row['redis_commands']:.2f} commands"
                    f" with those the scripts run), {row['redis_cpu_us']:.1f} µs of Redis CPU"
                )
    print_paired(results)
    for c in counts if any(r["target"] == "authgate, no access log" for r in rows) else ():
        on, off = by[("authgate", c)], by[("authgate, no access log", c)]
        print(f"\naccess log on/off, {c} connections: {on['rps'] / off['rps']:.3f}", end="")
    for r in rows:
        if r["target"] == "forward-auth":
            print(f"\nforward-auth, {r['connections']} connections: {r['rps']:,.0f} decisions/s "
                  f"(p99 {r['p99_ms']:.2f} ms)", end="")  # fmt: skip
    print(f"\nverifier, cached verifications: {results['cached_verifications_per_s']:,.0f} /s")
    if any(r["non_2xx"] for r in rows):
        print("\nWARNING: some responses were not 2xx; see the JSON results")


if __name__ == "__main__":
    main()
