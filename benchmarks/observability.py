"""Issue 10's budget, measured whole: health, metrics, request ids and JSON logs together may cost
at most 3 % of the token endpoint's and of the gateway's throughput. One command measures both,
each with observability on and off, in the same run, in many short interleaved slices:

    .venv/bin/python benchmarks/observability.py [--rounds 7] [--tokens 300] [--requests 3000]
        [--slices 4] [--connections 16] [--probe-interval 10] [--seed N] [--json]

- token endpoint (in process, as `server/bench_observability.py`: client_credentials, RS256,
  SQLite, 16 in flight). Off: no request-id/metrics layer, text log lines without ids. On: the
  `RequestObservation` layer (request id, `X-Request-Id`, counters, latency histogram), JSON log
  lines carrying the id, and the probes (below). Measured: this process's CPU per token. Four
  apps on one database: two "on" (a, b) and two "off" (a, b), each with its own client.
- gateway (four `authgate gateway` processes in front of one nginx upstream, RS256 token, a route
  requiring a scope): two "on", two "off". Off: `access_log = false`, `metrics_path = false`. On:
  the JSON access log (stderr, to a file of its own in the run's temporary directory, on the
  filesystem of `tempfile.gettempdir()`), the admin listener (`[admin] listen`) and the probes
  (below). Measured: the gateway process's CPU per request (all its threads' run time, in
  nanoseconds, from /proc/PID/task/*/schedstat; the access log is written by the event loop's
  thread, and the thread count is checked to be the same at the end as at the start, so no
  thread's time went missing with its exit), the load coming from this process (keep-alive
  connections, asyncio). The gateway's counters cannot be switched off: they are in both. The
  four start in an order drawn from `--seed` that alternates on and off (so process age, pid and
  memory placement fall on both modes alike), and it is reported.
- probes: once per round, one `/healthz`, `/readyz` and `/metrics` is answered by an "on" gateway
  (a and b in turn) and by an "on" app, and its CPU measured; it is counted as one set every
  `--probe-interval` seconds (default 10, a Kubernetes probe period; Prometheus scrapes every
  15-60 s) of a fully busy CPU, i.e. the "on" CPU per request is multiplied by
  (1 + median probe CPU / interval).

How: every process and app is first warmed with the same load (two slices each, interleaved).
Each round is cut into `--slices` slices; a slice measures all eight (four apps, four gateways)
once, each with `tokens / slices` or `requests / slices` requests, in an order that rotates from
slice to slice and runs backwards every other cycle, so that no one of them keeps a place; a
`gc.collect()` precedes each measurement. Per slice the on/off ratio is (on a + on b) / (off a +
off b); its median over all slices with a 95 % bootstrap interval of that median, the
interquartile range, the lowest and highest slice, and the pooled ratio (all "on" CPU over all
"off" CPU) are reported. Two A/A controls per part show what the machine's noise alone makes of
two identical setups: "on a"/"on b" and "off a"/"off b" per slice. They compare one copy with
one, where the on/off ratio compares sums of two, so their spread is about 1.4 times what the
same noise gives the on/off ratio; a median outside the controls' spread is a finding.
Throughput at full CPU is the inverse of CPU per
request, so a ratio of 1.03 is the 3 % budget. The gateways are pinned to the last CPU, nginx
and the load to the first (`taskset`). Needs nginx (apt-get install nginx-light).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import os
import random
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
COPIES = ("on-a", "on-b", "off-a", "off-b")


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


def _threads(pid: int) -> list[Path]:
    return list(Path(f"/proc/{pid}/task").glob("*/schedstat"))


def _run_time(pid: int) -> float:
    """CPU seconds the process `pid` has run so far, all its threads (nanosecond counters)."""
    return sum(int(path.read_text().split()[0]) for path in _threads(pid)) / 1e9


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


def start_order(rng: random.Random) -> list[str]:
    """The four copies in an order that alternates on and off, which mode and which letter
    lead drawn from `rng`: each started pair of neighbours holds one "on" and one "off"."""
    modes = ["on", "off"]
    rng.shuffle(modes)
    letters = [["a", "b"], ["a", "b"]]
    for pair in letters:
        rng.shuffle(pair)
    return [f"{modes[i % 2]}-{letters[i % 2][i // 2]}" for i in range(4)]


def slice_order(names: list[str], index: int) -> list[str]:
    """`names` rotated by `index`, backwards on every other cycle: over 2 * len(names) slices
    each name takes every place once forwards and once backwards."""
    shift = index % len(names)
    order = names[shift:] + names[:shift]
    return order[::-1] if (index // len(names)) % 2 else order


class Gateways:
    """Four gateways (two on, two off, started in `order`), their upstream and the request they
    are loaded with."""

    def __init__(self, work: Path, order: list[str]) -> None:
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
        self.ports = {name: run.free_port() for name in (*COPIES, "upstream")}
        self.admin = {name: run.free_port() for name in ("on-a", "on-b")}
        self.processes = [run.nginx_upstream(work, self.ports["upstream"])]
        self.pids: dict[str, int] = {}
        try:
            for name in order:
                if name.startswith("on"):
                    extra = f'[admin]\nlisten = "127.0.0.1:{self.admin[name]}"\n'
                    process = run.authgate_gateway(
                        work, self.ports[name], jwks, self.ports["upstream"], extra=extra
                    )
                else:
                    process = run.authgate_gateway(
                        work,
                        self.ports[name],
                        jwks,
                        self.ports["upstream"],
                        access_log=False,
                        extra="metrics_path = false\n",
                    )
                self.processes.append(process)
                self.pids[name] = process.pid
        except BaseException:
            self.close()
            raise
        self.threads = {name: len(_threads(pid)) for name, pid in self.pids.items()}

    async def measure(self, name: str, requests: int, connections: int) -> float:
        """The CPU seconds per request of gateway `name` over one slice."""
        pid = self.pids[name]
        before = _run_time(pid)
        await _load_gateway(self.ports[name], self.request, requests, connections)
        return (_run_time(pid) - before) / requests

    async def probe(self, name: str) -> float:
        """CPU seconds of the "on" gateway `name` for one set of probes on its admin listener."""
        before = _run_time(self.pids[name])
        await _probe(self.admin[name])
        return _run_time(self.pids[name]) - before

    def check_threads(self) -> None:
        """Fail if a gateway's thread count changed: an exited thread's run time is no longer
        in /proc/PID/task, so a slice it ended in would be under-counted."""
        now = {name: len(_threads(pid)) for name, pid in self.pids.items()}
        if now != self.threads:
            raise RuntimeError(f"gateway thread counts changed: {self.threads} -> {now}")

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(10)


def _median_ci(ratios: list[float], resamples: int = 2000) -> list[float]:
    """A 95 % bootstrap interval of the median of `ratios` (slices drawn again with
    replacement; a fixed seed, so the same slices give the same interval)."""
    rng = random.Random(0)
    medians = sorted(
        statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(resamples)
    )
    return [medians[int(resamples * 0.025)], medians[int(resamples * 0.975) - 1]]


def _spread(ratios: list[float]) -> dict[str, Any]:
    ratios = sorted(ratios)
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    return {
        "median": statistics.median(ratios),
        "median_ci95": _median_ci(ratios),
        "min": ratios[0],
        "max": ratios[-1],
        "iqr": [quartiles[0], quartiles[2]],
        "ratios": ratios,
    }


def _summary(costs: dict[str, list[float]], probes: list[float], interval: float) -> dict[str, Any]:
    """Per slice: on (a + b, with the probes prorated) over off (a + b); their median, spread and
    the pooled ratio; and the two A/A controls."""
    factor = 1 + statistics.median(probes) / interval
    on = [(a + b) * factor for a, b in zip(costs["on-a"], costs["on-b"], strict=True)]
    off = [a + b for a, b in zip(costs["off-a"], costs["off-b"], strict=True)]
    spread = _spread([a / b for a, b in zip(on, off, strict=True)])
    return {
        "cpu_on_us": statistics.median(on) / 2 * 1e6,
        "cpu_off_us": statistics.median(off) / 2 * 1e6,
        "probe_set_cpu_ms": statistics.median(probes) * 1e3,
        "ratio_pooled": sum(on) / sum(off),
        "ratios": spread.pop("ratios"),
        **{f"ratio_{key}": value for key, value in spread.items()},
        "control": _spread([a / b for a, b in zip(costs["off-a"], costs["off-b"], strict=True)]),
        "control_on": _spread([a / b for a, b in zip(costs["on-a"], costs["on-b"], strict=True)]),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    costs: dict[str, dict[str, list[float]]] = {
        part: {name: [] for name in COPIES} for part in ("token", "gateway")
    }
    probes: dict[str, list[float]] = {"token": [], "gateway": []}
    tokens = max(1, args.tokens // args.slices)
    requests = max(1, args.requests // args.slices)
    os.sched_setaffinity(0, {int(gateway_bench.LOAD_CPU)})  # with the load and the upstream
    gateway_order = start_order(rng)
    token_order = start_order(rng)
    with tempfile.TemporaryDirectory(prefix="authgate-observability-") as tmp:
        gateways = Gateways(Path(tmp), gateway_order)
        try:
            async with server_bench.token_endpoint(token_order) as endpoint:

                async def one(part: str, name: str, *, record: bool = True) -> None:
                    gc.collect()
                    if part == "token":
                        cost = float(await endpoint.measure(name, tokens))
                    else:
                        cost = await gateways.measure(name, requests, args.connections)
                    if record:
                        costs[part][name].append(cost)

                names = [(part, name) for name in COPIES for part in ("token", "gateway")]
                rng.shuffle(names)
                for index in range(2):  # warm-up: pools, caches, the first keys; alike for all
                    for part, name in slice_order(names, index):
                        await one(part, name, record=False)
                for round_ in range(args.rounds):
                    on = ("on-a", "on-b")[round_ % 2]
                    gc.collect()
                    probes["gateway"].append(await gateways.probe(on))
                    gc.collect()
                    probes["token"].append(await endpoint.probe(on))
                    for k in range(args.slices):
                        for part, name in slice_order(names, round_ * args.slices + k):
                            await one(part, name)
                    print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr, flush=True)
                gateways.check_threads()
        finally:
            gateways.close()
    return {
        "rounds": args.rounds,
        "slices_per_round": args.slices,
        "cpus": len(gateway_bench.CPUS),
        "probe_interval_s": args.probe_interval,
        "seed": seed,
        "log_filesystem": tempfile.gettempdir(),
        "token_endpoint": {
            "tokens_per_round": args.tokens,
            "start_order": token_order,
            **_summary(costs["token"], probes["token"], args.probe_interval),
        },
        "gateway": {
            "requests_per_round": args.requests,
            "connections": args.connections,
            "start_order": gateway_order,
            **_summary(costs["gateway"], probes["gateway"], args.probe_interval),
        },
    }


def _print(result: dict[str, Any]) -> None:
    slices = result["rounds"] * result["slices_per_round"]
    print(
        f"{result['cpus']} CPUs, {result['rounds']} rounds x {result['slices_per_round']} "
        f"interleaved slices (seed {result['seed']}); CPU per request, on/off per slice "
        f"(1.03 = the 3 % budget); probes: one set per {result['probe_interval_s']:g} s\n"
    )
    print(
        f"| part | CPU/request off | CPU/request on | on/off median of {slices} slices "
        "| its 95 % CI | IQR | lowest-highest slice | pooled | one probe set |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, key in (("token endpoint", "token_endpoint"), ("gateway", "gateway")):
        row = result[key]
        low, high = row["ratio_iqr"]
        ci_low, ci_high = row["ratio_median_ci95"]
        print(
            f"| {label} | {row['cpu_off_us']:.1f} µs | {row['cpu_on_us']:.1f} µs | "
            f"{row['ratio_median']:.3f} | {ci_low:.3f}-{ci_high:.3f} | {low:.3f}-{high:.3f} | "
            f"{row['ratio_min']:.3f}-{row['ratio_max']:.3f} | {row['ratio_pooled']:.3f} | "
            f"{row['probe_set_cpu_ms']:.2f} ms |"
        )
        for control, what in (("control_on", "on a / on b"), ("control", "off a / off b")):
            spread = row[control]
            low, high = spread["iqr"]
            ci_low, ci_high = spread["median_ci95"]
            print(
                f"| {label}, A/A control: {what} | | | {spread['median']:.3f} | "
                f"{ci_low:.3f}-{ci_high:.3f} | {low:.3f}-{high:.3f} | "
                f"{spread['min']:.3f}-{spread['max']:.3f} | | |"
            )
    print(
        f"\nstart order: gateways {', '.join(result['gateway']['start_order'])}; "
        f"apps {', '.join(result['token_endpoint']['start_order'])}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds (probes once per round)")
    parser.add_argument("--slices", type=int, default=4, help="interleaved slices per round")
    parser.add_argument("--tokens", type=int, default=300, help="token requests per round")
    parser.add_argument("--requests", type=int, default=3000, help="gateway requests per round")
    parser.add_argument("--connections", type=int, default=16, help="gateway connections")
    parser.add_argument(
        "--probe-interval", type=float, default=10.0, help="seconds between probe sets"
    )
    parser.add_argument("--seed", type=int, help="the start and slice orders' seed (default: new)")
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
