"""Smoke test of benchmarks/server/bench_capacity.py: the documented command serves a fresh
PostgreSQL database with one and with two worker processes, loads both grants it claims to measure
and reports a figure for each configuration (benchmarks/README.md, docs/capacity.md).

One short round, written to a temporary file; the report's structure only. No figure is compared
with a goal or with another figure: speed belongs to the benchmark's own runs.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "server" / "bench_capacity.py"
GRANTS = ("client_credentials", "refresh_token")


pytestmark = pytest.mark.skipif(
    shutil.which("wrk") is None, reason="needs wrk (apt-get install wrk)"
)


def _is_figure(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _run(tmp_path: Path, *options: str) -> dict[str, Any]:
    out = tmp_path / "capacity.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, str(BENCH), "--duration", "1", "--connections", "4",
               "--out", str(out), *options]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def test_capacity_bench_reports_every_configuration(tmp_path: Path) -> None:
    result = _run(tmp_path, "--workers", "1,2")
    assert set(result["workers"]) == {"1", "2"}
    for workers, entry in result["workers"].items():
        assert len(entry["rounds"]) == 1
        for grant in GRANTS:
            row = entry[grant]
            for field in ("rps", "rps_vs_first", "cpu_us_per_grant", "pg_cpu_us_per_grant",
                          "wrk_cpu_us_per_grant", "cores_busy", "machine_cores_busy"):  # fmt: skip
                assert _is_figure(row[field]), (workers, grant, field)
            assert row["rps"] > 0, (workers, grant)
            assert row["cpu_us_per_grant"] > 0, (workers, grant)
            for field in ("xact_commit", "tup_inserted", "tup_updated", "wal_bytes"):
                assert _is_figure(row["db_per_grant"][field]), (workers, grant, field)
            assert entry["rounds"][0][grant]["non_2xx"] == 0, (workers, grant)
    # The statistics are read at all: a refresh writes rows (3 by test_grant_statements.py).
    assert result["workers"]["1"]["refresh_token"]["db_per_grant"]["tup_inserted"] > 0


def test_capacity_bench_counts_redis_calls_with_limits_on(tmp_path: Path) -> None:
    result = _run(tmp_path, "--workers", "1", "--grants", "client_credentials", "--limits", "redis")
    assert result["limits"] == "redis"
    row = result["workers"]["1"]["client_credentials"]
    for field in ("redis_calls_per_grant", "redis_commands_per_grant", "redis_cpu_us_per_grant"):
        assert _is_figure(row[field]), field
    # Every token request makes one limits decision: some script call reached the run's own Redis.
    assert row["redis_calls_per_grant"] > 0
