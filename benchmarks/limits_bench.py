"""Rate-limit decisions per second, memory and Redis stores, against one ES256 verification.

    .venv/bin/python benchmarks/limits_bench.py            # 9 rounds, about a minute
    .venv/bin/python benchmarks/limits_bench.py --quick    # 3 short rounds, a rough table
    .venv/bin/python benchmarks/limits_bench.py --json     # the same measurements as JSON

Subjects, each timed in interleaved rounds (median over rounds):

- es256_verify: `authgate.jose.jwt.decode` of an ES256 token, iss/aud/exp checked: the yardstick;
- memory_nowait: `Limiter.hit_nowait` on the memory store (what a WSGI thread or sync caller pays);
- memory_async: `await Limiter.hit` on the memory store, inside a running event loop;
- redis_serial: `await Limiter.hit` on Redis, one decision at a time (bound by the round trip);
- redis_concurrent: the same with 32 decisions in flight (what a busy gateway worker sees);
- memory_admit, redis_admit: `await Limiter.admit` (what a client-authenticated server request
  pays after authentication: the lockouts of its address and client id checked, its limit
  counted, the id's failures cleared if any; one store operation), Redis with 32 in flight.

Each row reports decisions per second of wall time and this process's CPU per decision; Redis
rows add the Redis server's CPU per decision (from `INFO cpu`; the server shares the machine).
Shares compare CPU per decision with one ES256 verification measured in the same rounds. Keys
rotate over 1000 client ids; the limit (1000/second per id) is never the bottleneck. Keys go under
a namespace of the run's own and are deleted at the end. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from authgate.jose import JWK
from authgate.jose import jwt as ag_jwt
from authgate.limits import FailMode, Limit, Limiter, parse_rate
from authgate.limits.lockouts import Lockout

ISSUER = "https://issuer.example"
AUDIENCE = "api://orders"
CLIENTS = [f"client-{i}" for i in range(1000)]
LIMIT = Limit("bench", parse_rate("1000/second"))
CONCURRENCY = 32
LOCKOUTS = [
    Lockout.build(name, failures=10, window=600, first=60, longest=900, mode=FailMode.OPEN)
    for name in ("bench_auth", "bench_auth_address")
]


@dataclass
class Sample:
    wall: float  # seconds
    cpu: float  # this process's CPU seconds
    server_cpu: float | None  # Redis's CPU seconds
    ops: int


@dataclass
class Subject:
    name: str
    samples: list[Sample] = field(default_factory=list)

    def median(self, attr: str) -> float | None:
        values = [getattr(s, attr) / s.ops for s in self.samples if getattr(s, attr) is not None]
        return statistics.median(values) if values else None


def redis_cpu(client: redis.Redis | None) -> float | None:
    if client is None:
        return None
    info: dict[str, Any] = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def es256_op() -> Callable[[], object]:
    key = JWK.generate("EC", crv="P-256")
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "u", "aud": AUDIENCE, "iat": now, "exp": now + 3600}
    token = ag_jwt.encode(claims, key, "ES256")
    public = key.public()
    return lambda: ag_jwt.decode(
        token, public, algorithms=["ES256"], issuer=ISSUER, audience=AUDIENCE, required=("exp",)
    )


def time_sync(op: Callable[[int], object], ops: int) -> Sample:
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(ops):
        op(i)
    return Sample(time.perf_counter() - wall, time.process_time() - cpu, None, ops)


async def time_async(
    op: Callable[[int], Awaitable[object]], ops: int, concurrency: int, server: redis.Redis | None
) -> Sample:
    async def worker(start: int) -> None:
        for i in range(start, ops, concurrency):
            await op(i)

    gc.collect()
    before = redis_cpu(server)
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    after = redis_cpu(server)
    server_cpu = None if before is None or after is None else after - before
    return Sample(wall, cpu, server_cpu, ops)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    namespace = f"bench-{uuid.uuid4().hex[:12]}"
    verify = es256_op()
    memory = Limiter.from_url("memory://", namespace=namespace)
    shared = Limiter.from_url(args.redis_url, timeout=1.0, namespace=namespace)
    server = redis.Redis.from_url(args.redis_url, socket_timeout=5)
    server.ping()
    subjects = {
        name: Subject(name)
        for name in ("es256_verify", "memory_nowait", "memory_async", "redis_serial",
                     "redis_concurrent", "memory_admit", "redis_admit")
    }  # fmt: skip

    def nowait(i: int) -> object:
        return memory.hit_nowait(LIMIT, "client", CLIENTS[i % 1000])

    def on(limiter: Limiter) -> Callable[[int], Awaitable[object]]:
        return lambda i: limiter.hit(LIMIT, "client", CLIENTS[i % 1000])

    def admit(limiter: Limiter) -> Callable[[int], Awaitable[object]]:
        def op(i: int) -> Awaitable[object]:
            client = CLIENTS[i % 1000]
            locks = [(LOCKOUTS[1], ("address", "198.51.100.7")), (LOCKOUTS[0], ("client", client))]
            return limiter.admit(locks, [(LIMIT, ("client", client))], locks[1])

        return op

    n = args.ops
    runs: list[tuple[str, Callable[[], Awaitable[Sample]]]] = [
        ("es256_verify", lambda: _sync(time_sync(lambda _: verify(), n // 20))),
        ("memory_nowait", lambda: _sync(time_sync(nowait, n))),
        ("memory_async", lambda: time_async(on(memory), n, 1, None)),
        ("redis_serial", lambda: time_async(on(shared), n // 10, 1, server)),
        ("redis_concurrent", lambda: time_async(on(shared), n // 4, CONCURRENCY, server)),
        ("memory_admit", lambda: time_async(admit(memory), n, 1, None)),
        ("redis_admit", lambda: time_async(admit(shared), n // 4, CONCURRENCY, server)),
    ]
    try:
        # Warm-up: connections, the script cache, the key hashing.
        await time_async(on(shared), 200, CONCURRENCY, None)
        for round_no in range(args.rounds):
            shift = round_no % len(runs)
            for name, runner in runs[shift:] + runs[:shift]:
                subjects[name].samples.append(await runner())
    finally:
        await shared.aclose()
        keys = list(server.scan_iter(match=f"{namespace}:*", count=1000))
        if keys:
            server.delete(*keys)
        server.close()
    return report(subjects, args)


async def _sync(sample: Sample) -> Sample:
    return sample


def report(subjects: dict[str, Subject], args: argparse.Namespace) -> dict[str, Any]:
    verify_cpu = subjects["es256_verify"].median("cpu")
    memory_wall = subjects["memory_async"].median("wall")
    assert verify_cpu is not None
    assert memory_wall is not None
    rows = []
    for subject in subjects.values():
        wall, cpu = subject.median("wall"), subject.median("cpu")
        server = subject.median("server_cpu")
        assert wall is not None
        assert cpu is not None
        total = cpu + (server or 0.0)
        rows.append(
            {
                "subject": subject.name,
                "per_second": 1 / wall,
                "cpu_us": cpu * 1e6,
                "server_cpu_us": None if server is None else server * 1e6,
                "cpu_share_of_es256_verify": total / verify_cpu,
                # If a request cost one ES256 verification of CPU, the share of throughput kept.
                "kept_if_request_is_one_verify": verify_cpu / (verify_cpu + total),
                "wall_vs_memory_async": memory_wall / wall,
            }
        )
    return {
        "meta": {
            "python": sys.version.split()[0],
            "rounds": args.rounds,
            "ops": args.ops,
            "redis_url": args.redis_url,
            "cpus": os.cpu_count(),
        },
        "rows": rows,
    }


def print_table(result: dict[str, Any]) -> None:
    print(
        f"{'subject':<18}{'per s (wall)':>14}{'CPU us':>9}{'Redis us':>10}"
        f"{'CPU vs ES256':>14}{'kept*':>8}{'wall vs mem':>13}"
    )
    for row in result["rows"]:
        server = row["server_cpu_us"]
        print(
            f"{row['subject']:<18}{row['per_second']:>14,.0f}{row['cpu_us']:>9.1f}"
            f"{'-' if server is None else f'{server:.1f}':>10}"
            f"{row['cpu_share_of_es256_verify']:>13.1%}"
            f"{row['kept_if_request_is_one_verify']:>8.1%}"
            f"{row['wall_vs_memory_async']:>13.3f}"
        )
    print(
        "* throughput kept if a request's CPU were one ES256 verification plus this decision "
        "(client and Redis CPU); the es256_verify row is the yardstick itself."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 short rounds")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 9, quick 3)")
    parser.add_argument("--ops", type=int, help="decisions per memory batch (default 40000)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (3 if args.quick else 9)
    args.ops = args.ops or (8000 if args.quick else 40000)
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
