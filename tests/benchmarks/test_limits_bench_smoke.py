"""Smoke test of benchmarks/limits_bench.py: the documented command runs against the shared Redis
and reports every subject it claims to measure (benchmarks/README.md), and leaves no key behind.

One round of tiny batches; the report's structure only. No figure is compared with a goal or with
another figure: speed belongs to the benchmark's own runs.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "limits_bench.py"
SUBJECTS = {
    "es256_verify",
    "memory_nowait",
    "memory_async",
    "redis_serial",
    "redis_concurrent",
    "memory_admit",
    "redis_admit",
}


def _is_figure(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_limits_bench_reports_every_subject() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, str(BENCH), "--rounds", "1", "--ops", "400", "--json"],
        capture_output=True, text=True, timeout=300, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    rows = {row["subject"]: row for row in result["rows"]}
    assert set(rows) == SUBJECTS
    for name, row in rows.items():
        for field in ("per_second", "cpu_us", "cpu_share_of_es256_verify", "wall_vs_memory_async"):
            assert _is_figure(row[field]), (name, field)
        assert (row["server_cpu_us"] is not None) is name.startswith("redis"), name
    client = redis.Redis(socket_timeout=5)
    assert list(client.scan_iter(match="bench-*", count=1000)) == []
    client.close()
