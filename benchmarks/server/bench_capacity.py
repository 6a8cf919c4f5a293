"""Throughput and cost per grant versus worker processes: `authgate serve --workers N` on one
PostgreSQL, for the capacity model (docs/capacity.md).

    .venv/bin/python benchmarks/server/bench_capacity.py [--workers 1,2,4] [--duration 5]
        [--connections 12] [--rounds 1] [--grants client_credentials,refresh_token] [--out FILE]

For each worker count, a fresh PostgreSQL database (127.0.0.1:5432) and one `authgate serve
--workers N` on it (the setup of `bench_user_grants.py`: one confidential client, one API whose
access tokens are RS256 JWTs, the token limit and lockouts off), loaded by `wrk`:
- `client_credentials`: a JWT access token for the API (no database write: the client and API come
  from the registry cache);
- `refresh_token`: a first rotation of a refresh-token family minted through the store just before
  the run (a new access token and refresh token).
Reported per worker count and grant: grants per second; the server's CPU per grant (user + system
time of `serve` and all its worker processes, from /proc); the CPU per grant of the PostgreSQL
backends serving that database (from /proc, for the backends listed in `pg_stat_activity`, read
every 0.2 s during the run so that a backend that ends keeps its CPU; PostgreSQL's shared
processes, WAL writer and checkpointer, are not included); wrk's own CPU per grant (it shares the
cores); the cores the run kept busy (server, backends and wrk) and the whole machine's busy cores
(other work included: on a shared machine the run's rate is its cores over its CPU per grant); and
from `pg_stat_database` of that database, per grant: transactions committed and rolled back, rows
inserted, updated and deleted, and blocks read from outside the buffer cache. PostgreSQL flushes
a backend's statistics at most once a second and otherwise after 10 idle seconds, so the figures
are read after a pause (before the run) and after ending the server's connections (after it; the
pool reconnects at its next checkout). Also the WAL written per grant (`pg_current_wal_lsn`,
which is cluster-wide: other databases' writes on a shared server count too).

With `--limits redis`, the token limit and both lockouts are on (never refusing) in a
`redis-server` the run starts on a free port, and the Redis commands and Redis CPU per grant are
reported too (`INFO commandstats`, `INFO cpu`): the script calls (the limits store sends one per
batch of decisions: the round trips) and every command, those the scripts run included.

With `--rounds N` every round starts each worker count afresh, in a rotating order. Results are
printed and written to benchmarks/results/server-capacity.json (or `--out`). Any non-2xx answer
marks the run as failed (exit status 1). Needs `wrk` and the PostgreSQL server.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import redis
from bench_token_endpoint import (
    CLOCK_TICKS,
    LIMIT_MODES,
    ROOT,
    cpu_seconds,
    free_port,
    tree_cpu_seconds,
    wrk,
)
from bench_user_grants import API, PG_ADMIN, WARM_UP, Bench

GRANTS = ("client_credentials", "refresh_token")
STAT_FIELDS = (
    "xact_commit",
    "xact_rollback",
    "tup_inserted",
    "tup_updated",
    "tup_deleted",
    "tup_fetched",
    "blks_read",
)
# The commands that run a script: what the limits store sends, one per batch of decisions.
SCRIPT_CALLS = ("evalsha", "eval", "evalsha_ro", "eval_ro", "fcall")
STATS_IDLE_FLUSH = 11  # seconds: PostgreSQL's idle flush of pending statistics (10 s) and a margin


class Database:
    """`pg_stat_database` of the server's database, and the CPU of its backends."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.conn = psycopg.connect(PG_ADMIN, autocommit=True)

    def close(self) -> None:
        self.conn.close()

    def backends(self) -> dict[int, float]:
        """CPU seconds of each backend connected to the database (this connection excluded)."""
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (self.name,),
        ).fetchall()
        cpu: dict[int, float] = {}
        for (pid,) in rows:
            try:
                cpu[pid] = cpu_seconds(pid)
            except OSError:
                continue  # ended meanwhile, or PostgreSQL runs where /proc cannot see it
        return cpu

    def stats(self) -> dict[str, int]:
        row = self.conn.execute(
            f"SELECT {', '.join(STAT_FIELDS)}, pg_current_wal_lsn() - '0/0'::pg_lsn"  # noqa: S608
            " FROM pg_stat_database WHERE datname = %s",
            (self.name,),
        ).fetchone()
        assert row is not None
        return {
            **dict(zip(STAT_FIELDS, map(int, row[:-1]), strict=True)),
            "wal_bytes": int(row[-1]),
        }

    def end_connections(self) -> None:
        """End the server's connections, so that each backend flushes its statistics as it exits;
        wait until they are gone."""
        self.conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (self.name,),
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.backends():
            time.sleep(0.1)


class RedisServer:
    """The run's own `redis-server` (nothing saved to disk), so that its command counts and CPU
    are the server's limits' alone."""

    def __init__(self, directory: Path) -> None:
        port = free_port()
        self.url = f"redis://127.0.0.1:{port}/0"
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(directory)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        self.client = redis.Redis.from_url(self.url, socket_timeout=5)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise SystemExit("redis-server did not start") from None
                time.sleep(0.05)

    def limits(self) -> str:
        """The server's `[limits]`: the token limit and lockouts on, in this Redis, never refusing
        (what is counted is the cost of deciding)."""
        return (
            LIMIT_MODES["redis"]
            .format(tag=secrets.token_hex(4))
            .replace("redis://127.0.0.1:6379/0", self.url)
        )

    def counters(self) -> dict[str, float]:
        """Script calls (the store's one command per batch of decisions), every command served
        (those the scripts run included; this client's INFO calls left out), and Redis's CPU
        seconds."""
        stats = self.client.info("commandstats")
        cpu = self.client.info("cpu")
        return {
            "calls": sum(stats.get(f"cmdstat_{c}", {}).get("calls", 0) for c in SCRIPT_CALLS),
            "commands": sum(v["calls"] for k, v in stats.items() if k != "cmdstat_info"),
            "cpu": float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
        }

    def close(self) -> None:
        self.client.close()
        self.process.terminate()
        self.process.wait(timeout=10)


class BackendWatch:
    """The CPU of the database's backends, read every `interval` seconds during a run from a
    thread of its own (its own connection): a backend that ends during the run (a pool's overflow
    connection, closed when returned) keeps the CPU it was last seen with. Backends that live
    less than `interval` are missed."""

    def __init__(self, name: str, interval: float = 0.2) -> None:
        self.db = Database(name)
        self.interval = interval
        self.before = self.db.backends()
        self.seen = dict(self.before)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self.stop.wait(self.interval):
            self.seen.update(self.db.backends())

    def finish(self) -> dict[str, Any]:
        """CPU seconds the backends used since the start, and how many there were."""
        self.stop.set()
        self.thread.join()
        now = self.db.backends()
        self.seen.update(now)
        self.db.close()
        used = sum(cpu - self.before.get(pid, 0.0) for pid, cpu in self.seen.items())
        ended = len(set(self.seen) - set(now))
        return {"cpu": used, "before": len(self.before), "after": len(now), "ended": ended}


def _machine_busy() -> float:
    """Busy CPU seconds of the whole machine (all cores; every process's, other work's too)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def _children_cpu() -> float:
    """CPU of this process's finished children: the wrk runs (the load generator shares the
    machine's cores with the server and PostgreSQL)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(bench: Bench, db: Database, redis_server: RedisServer | None, run: Any) -> dict[str, Any]:
    """`run()` (a wrk load returning requests and server CPU), with the database's figures per
    grant around it, and Redis's when the limits are in Redis."""
    time.sleep(STATS_IDLE_FLUSH)  # the warm-up's statistics flushed before they are read
    stats_before = db.stats()
    redis_before = redis_server.counters() if redis_server else None
    watch = BackendWatch(db.name)
    load_before, machine_before, started = _children_cpu(), _machine_busy(), time.monotonic()
    result: dict[str, Any] = run()
    wall = time.monotonic() - started
    load_used = _children_cpu() - load_before
    machine_used = _machine_busy() - machine_before
    backends = watch.finish()
    if redis_server and redis_before:
        redis_after = redis_server.counters()
        count = max(result["requests"], 1)
        for name in ("calls", "commands"):
            result[f"redis_{name}_per_grant"] = round(
                (redis_after[name] - redis_before[name]) / count, 3
            )
        result["redis_cpu_us_per_grant"] = round(
            (redis_after["cpu"] - redis_before["cpu"]) / count * 1e6, 1
        )
    db.end_connections()
    stats_after = db.stats()
    grants = max(result["requests"], 1)
    result["pg_backends"] = {k: v for k, v in backends.items() if k != "cpu"}
    result["pg_cpu_us_per_grant"] = round(backends["cpu"] / grants * 1e6, 1)
    result["wrk_cpu_us_per_grant"] = round(load_used / grants * 1e6, 1)
    # Cores kept busy: by this run (server, its backends, wrk) and by the whole machine, other
    # work included; on a shared machine the run's throughput is its cores over its CPU per grant.
    ours = result["cpu_us_per_grant"] * grants / 1e6 + backends["cpu"] + load_used
    result["cores_busy"] = round(ours / wall, 3)
    result["machine_cores_busy"] = round(machine_used / wall, 3)
    result["db_per_grant"] = {
        field: round((stats_after[field] - stats_before[field]) / grants, 3)
        for field in stats_before
    }
    return result


def client_credentials(
    bench: Bench, db: Database, redis_server: RedisServer | None, connections: int, duration: int
) -> Any:
    load = {
        "url": bench.url + "/token",
        "body": f"grant_type=client_credentials&scope=read&resource={quote(API)}",
        "auth": bench.auth,
        "connections": connections,
        "workdir": bench.workdir,
    }
    wrk(**load, duration=WARM_UP)

    def run() -> dict[str, Any]:
        before = tree_cpu_seconds(bench.process.pid)
        result = wrk(**load, duration=duration)
        used = tree_cpu_seconds(bench.process.pid) - before
        result["cpu_us_per_grant"] = round(used / max(result["requests"], 1) * 1e6, 1)
        return result

    return timed(bench, db, redis_server, run)


def refresh(
    bench: Bench, db: Database, redis_server: RedisServer | None, connections: int, duration: int
) -> Any:
    prefix = "grant_type=refresh_token&refresh_token="
    warm = bench.load(prefix, bench.mint_families(2000), connections, WARM_UP)
    families = bench.mint_families(int(warm["rps"] * duration * 1.6) + 1000)
    return timed(
        bench, db, redis_server, lambda: bench.load(prefix, families, connections, duration)
    )


MEASURE = {"client_credentials": client_credentials, "refresh_token": refresh}


def measure_workers(
    workdir: Path,
    workers: int,
    *,
    grants: list[str],
    connections: int,
    duration: int,
    limits: str,
) -> dict[str, Any]:
    workdir.mkdir(parents=True)
    redis_server = RedisServer(workdir) if limits == "redis" else None
    config = redis_server.limits() if redis_server else LIMIT_MODES["off"]
    try:
        bench = Bench(workdir, "postgresql", workers=workers, limits=config)
        db = Database(bench.database)
        try:
            return {
                grant: MEASURE[grant](bench, db, redis_server, connections, duration)
                for grant in grants
            }
        finally:
            db.close()
            bench.close()
    finally:
        if redis_server:
            redis_server.close()


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def summarize(rounds: list[dict[str, Any]], grant: str) -> dict[str, Any]:
    """Medians over rounds of one worker count's figures for one grant."""
    runs = [r[grant] for r in rounds]
    return {
        "rps": _median([r["rps"] for r in runs]),
        "cpu_us_per_grant": _median([r["cpu_us_per_grant"] for r in runs]),
        "pg_cpu_us_per_grant": _median([r["pg_cpu_us_per_grant"] for r in runs]),
        "wrk_cpu_us_per_grant": _median([r["wrk_cpu_us_per_grant"] for r in runs]),
        "cores_busy": _median([r["cores_busy"] for r in runs]),
        "machine_cores_busy": _median([r["machine_cores_busy"] for r in runs]),
        **{
            field: _median([r[field] for r in runs])
            for field in (
                "redis_calls_per_grant",
                "redis_commands_per_grant",
                "redis_cpu_us_per_grant",
            )
            if field in runs[0]
        },
        "db_per_grant": {
            field: _median([r["db_per_grant"][field] for r in runs])
            for field in runs[0]["db_per_grant"]
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--workers", default="1,2,4", help="comma-separated worker counts")
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    # 12: below one process's pool (15), so that no configuration opens and closes overflow
    # connections (a new PostgreSQL backend each) because of the load generator's concurrency.
    parser.add_argument("--connections", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--grants", default=",".join(GRANTS), help="comma-separated, of " + ", ".join(GRANTS)
    )
    parser.add_argument(
        "--limits",
        choices=("off", "redis"),
        default="off",
        help="the token limit and lockouts off, or on in a redis-server of the run's own",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "server-capacity.json"
    )
    args = parser.parse_args()
    if not 1 <= args.duration <= 30:
        raise SystemExit("--duration must be 1-30 s")
    counts = [int(n) for n in args.workers.split(",")]
    grants = args.grants.split(",")
    if unknown := set(grants) - set(GRANTS):
        raise SystemExit(f"unknown grants: {', '.join(sorted(unknown))}")
    per_count: dict[int, list[dict[str, Any]]] = {n: [] for n in counts}
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = counts[r % len(counts) :] + counts[: r % len(counts)]
            for n in order:
                runs = measure_workers(
                    Path(tmp) / f"r{r}-w{n}",
                    n,
                    grants=grants,
                    connections=args.connections,
                    duration=args.duration,
                    limits=args.limits,
                )
                failed |= any(run["non_2xx"] for run in runs.values())
                per_count[n].append(runs)
    results: dict[str, Any] = {
        "duration_s": args.duration,
        "connections": args.connections,
        "rounds": args.rounds,
        "limits": args.limits,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "workers": {},
    }
    first = counts[0]
    print(f"{args.connections} connections, {args.duration} s, medians of {args.rounds} round(s)")
    for n in counts:
        entry: dict[str, Any] = {"rounds": per_count[n]}
        for grant in grants:
            row = summarize(per_count[n], grant)
            row["rps_vs_first"] = round(row["rps"] / summarize(per_count[first], grant)["rps"], 3)
            entry[grant] = row
            db = row["db_per_grant"]
            written = db["tup_inserted"] + db["tup_updated"] + db["tup_deleted"]
            print(
                f"  {n} worker(s) {grant:18} {row['rps']:>7.0f} grants/s"
                f" ({row['rps_vs_first']:.2f}x)  CPU/grant: server {row['cpu_us_per_grant']:>5.0f}"
                f" us, PostgreSQL {row['pg_cpu_us_per_grant']:>5.0f} us,"
                f" wrk {row['wrk_cpu_us_per_grant']:>4.0f} us;"
                f" per grant: {db['xact_commit']:.2f} commits, {written:.2f} rows written,"
                f" {db['wal_bytes']:.0f} WAL bytes;"
                f" cores busy: this run {row['cores_busy']:.2f},"
                f" machine {row['machine_cores_busy']:.2f}"
            )
            if "redis_calls_per_grant" in row:
                print(
                    f"    Redis, per grant: {row['redis_calls_per_grant']:.2f} script calls"
                    f" ({row['redis_commands_per_grant']:.2f} commands with those the scripts run),"
                    f" {row['redis_cpu_us_per_grant']:.0f} us of its CPU"
                )
        results["workers"][str(n)] = entry
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nwritten to {args.out}")
    if failed:
        print("FAILED: non-2xx answers")
        sys.exit(1)


if __name__ == "__main__":
    main()
