"""Issue 10's budget, measured whole: health, metrics, request ids and JSON logs together may cost
at most 3 % of the token endpoint's and of the gateway's throughput. One command measures both,
each with observability on and off, in the same run and in interleaved rounds:

    .venv/bin/python benchmarks/observability.py [--rounds 7] [--tokens 300] [--requests 3000]
        [--connections 16] [--probe-interval 10] [--json]

- token endpoint (in process, as `server/bench_observability.py`: client_credentials, RS256,
  SQLite, 16 in flight). Off: no request-id/metrics layer, text log lines without ids. On: the
  `RequestObservation` layer (request id, `X-Request-Id`, counters, latency histogram), JSON log
  lines carrying the id, and the probes (below). Measured: this process's CPU per token.
- gateway (two `authgate gateway` processes in front of one nginx upstream, RS256 token, a route
  requiring a scope). Off: `access_log = false`, `metrics_path = false`. On: the JSON access log
  (to a file), the admin listener (`[admin] listen`) and the probes (below). Measured: the
  gateway process's CPU per request (all its threads' run time, in nanoseconds, from
  /proc/PID/task/*/schedstat), the load coming from this process (keep-alive connections,
  asyncio). The gateway's counters cannot be switched off: they are in both. A third gateway,
  configured as "off", is measured in the same rounds as an A/A control: its ratio to "off" shows
  how far two identical gateway processes differ on this machine, i.e. what on/off ratio is noise.
- probes: in each "on" round, one `/healthz`, `/readyz` and `/metrics` is answered and its CPU
  measured; it is counted as one set every `--probe-interval` seconds (default 10, a Kubernetes
  probe period; Prometheus scrapes every 15-60 s) of a fully busy CPU, i.e. the round's CPU per
  request is multiplied by (1 + probe CPU / interval).

Each round runs the four in turn (the order rotates), so that load from elsewhere on the machine
falls on on and off alike; the ratio on/off is taken per round, and its median and spread (lowest
and highest round, and the interquartile range) are reported. Throughput at full CPU is the
inverse of CPU per request, so a ratio of 1.03 is the 3 % budget. The gateway is pinned to the
last CPU, nginx and the load to the first (`taskset`). Needs nginx (apt-get install nginx-light).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from authgate.jose import JWK, jwt

HERE = Path(__file__).resolve().parent


def _load(relative: str) -> ModuleType:
    """A benchmark script of this folder as a module (the folder is not a package)."""
    path = HERE / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


gateway_bench = _load("gateway/run.py")
server_bench = _load("server/bench_observability.py")
PROBES = ("/healthz", "/readyz", "/metrics")


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """Send one request on a keep-alive connection and read its response; return the status."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _load_gateway(port: int, request: bytes, requests: int, connections: int) -> None:
    """`requests` requests over `connections` keep-alive connections; any non-200 stops the run."""
    left = requests

    async def worker() -> None:
        nonlocal left
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while left > 0:
                left -= 1
                status = await _exchange(reader, writer, request)
                if status != 200:
                    raise RuntimeError(f"the gateway answered {status}")
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))


def _run_time(pid: int) -> float:
    """CPU seconds the process `pid` has run so far, all its threads (nanosecond counters)."""
    return (
        sum(
            int(path.read_text().split()[0])
            for path in Path(f"/proc/{pid}/task").glob("*/schedstat")
        )
        / 1e9
    )


async def _probe(port: int) -> None:
    for path in PROBES:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            request = f"GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
            status = await _exchange(reader, writer, request.encode())
        finally:
            writer.close()
        if status != 200:
            raise RuntimeError(f"admin {path} answered {status}")


class Gateways:
    """The gateways (on, off, and "control", a second off), their upstream and the request they
    are loaded with."""

    def __init__(self, work: Path) -> None:
        run = gateway_bench
        key = JWK.generate("RSA", alg="RS256", kid="bench-key")
        jwks = run.JWKSServer(key)
        now = int(time.time())
        claims = {"iss": jwks.url, "aud": run.AUDIENCE, "sub": "bench-user", "client_id": "bench",
                  "scope": "orders:read", "iat": now, "exp": now + 7200}  # fmt: skip
        token = jwt.encode(claims, key, "RS256")
        self.request = (
            f"GET /api/orders HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n"
        ).encode()
        ports = {name: run.free_port() for name in ("upstream", "on", "off", "control", "admin")}
        self.ports = ports
        self.processes = [run.nginx_upstream(work, ports["upstream"])]
        try:
            admin = f'[admin]\nlisten = "127.0.0.1:{ports["admin"]}"\n'
            on = run.authgate_gateway(work, ports["on"], jwks, ports["upstream"], extra=admin)
            self.processes.append(on)
            self.pids = {"on": on.pid}
            for name in ("off", "control"):
                off = run.authgate_gateway(
                    work,
                    ports[name],
                    jwks,
                    ports["upstream"],
                    access_log=False,
                    extra="metrics_path = false\n",
                )
                self.processes.append(off)
                self.pids[name] = off.pid
        except BaseException:
            self.close()
            raise

    async def measure(self, mode: str, requests: int, connections: int) -> float:
        """The gateway's CPU seconds per request over one round in `mode`."""
        before = _run_time(self.pids[mode])
        await _load_gateway(self.ports[mode], self.request, requests, connections)
        return (_run_time(self.pids[mode]) - before) / requests

    async def probe(self) -> float:
        """CPU seconds of the "on" gateway for one set of probes on its admin listener."""
        before = _run_time(self.pids["on"])
        await _probe(self.ports["admin"])
        return _run_time(self.pids["on"]) - before

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(10)


def _spread(ratios: list[float]) -> dict[str, Any]:
    ratios = sorted(ratios)
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    return {
        "median": statistics.median(ratios),
        "min": ratios[0],
        "max": ratios[-1],
        "iqr": [quartiles[0], quartiles[2]],
        "ratios": ratios,
    }


def _summary(
    on: list[float], off: list[float], probes: list[float], interval: float
) -> dict[str, Any]:
    """Per round: on (with its probes prorated) over off; their median and spread."""
    on = [cost * (1 + probe / interval) for cost, probe in zip(on, probes, strict=True)]
    spread = _spread([a / b for a, b in zip(on, off, strict=True)])
    return {
        "cpu_on_us": statistics.median(on) * 1e6,
        "cpu_off_us": statistics.median(off) * 1e6,
        "probe_set_cpu_ms": statistics.median(probes) * 1e3,
        "ratios": spread.pop("ratios"),
        **{f"ratio_{key}": value for key, value in spread.items()},
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    costs: dict[str, list[float]] = {
        f"{part}-{mode}": [] for part in ("token", "gateway") for mode in ("on", "off")
    }
    costs["gateway-control"] = []
    probes: dict[str, list[float]] = {"token": [], "gateway": []}
    os.sched_setaffinity(0, {int(gateway_bench.LOAD_CPU)})  # with the load and the upstream
    with tempfile.TemporaryDirectory(prefix="authgate-observability-") as tmp:
        gateways = Gateways(Path(tmp))
        try:
            async with server_bench.token_endpoint() as endpoint:

                async def one(name: str, size: float) -> float:
                    part, mode = name.split("-")
                    if part == "token":
                        if mode == "on" and size == 1.0:
                            probes["token"].append(await endpoint.probe())
                        count = max(1, int(args.tokens * size))
                        return float(await endpoint.measure(mode, count))
                    if mode == "on" and size == 1.0:
                        probes["gateway"].append(await gateways.probe())
                    count = max(1, int(args.requests * size))
                    return await gateways.measure(mode, count, args.connections)

                names = list(costs)
                for name in names:  # warm-up: pools, caches, the first keys
                    await one(name, 0.25)
                for round_ in range(args.rounds):
                    shift = round_ % len(names)
                    for name in names[shift:] + names[:shift]:
                        costs[name].append(await one(name, 1.0))
                    print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        finally:
            gateways.close()
    return {
        "rounds": args.rounds,
        "cpus": len(gateway_bench.CPUS),
        "probe_interval_s": args.probe_interval,
        "token_endpoint": {
            "tokens_per_round": args.tokens,
            **_summary(costs["token-on"], costs["token-off"], probes["token"], args.probe_interval),
        },
        "gateway": {
            "requests_per_round": args.requests,
            "connections": args.connections,
            **_summary(
                costs["gateway-on"], costs["gateway-off"], probes["gateway"], args.probe_interval
            ),
            "control": _spread(
                [a / b for a, b in zip(costs["gateway-control"], costs["gateway-off"], strict=True)]
            ),
        },
    }


def _print(result: dict[str, Any]) -> None:
    print(
        f"{result['cpus']} CPUs, {result['rounds']} interleaved rounds; CPU per request, on/off "
        f"(1.03 = the 3 % budget); probes: one set per {result['probe_interval_s']:g} s\n"
    )
    print(
        "| part | CPU/request off | CPU/request on | on/off median | lowest-highest round | IQR "
        "| one probe set |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, key in (("token endpoint", "token_endpoint"), ("gateway", "gateway")):
        row = result[key]
        low, high = row["ratio_iqr"]
        print(
            f"| {label} | {row['cpu_off_us']:.1f} µs | {row['cpu_on_us']:.1f} µs | "
            f"{row['ratio_median']:.3f} | {row['ratio_min']:.3f}-{row['ratio_max']:.3f} | "
            f"{low:.3f}-{high:.3f} | {row['probe_set_cpu_ms']:.2f} ms |"
        )
    control = result["gateway"]["control"]
    low, high = control["iqr"]
    print(
        f"| A/A control: two gateways both off | | | {control['median']:.3f} | "
        f"{control['min']:.3f}-{control['max']:.3f} | {low:.3f}-{high:.3f} | |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--tokens", type=int, default=300, help="token requests per round")
    parser.add_argument("--requests", type=int, default=3000, help="gateway requests per round")
    parser.add_argument("--connections", type=int, default=16, help="gateway connections")
    parser.add_argument(
        "--probe-interval", type=float, default=10.0, help="seconds between probe sets"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result)
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / f"observability-{int(time.time())}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
