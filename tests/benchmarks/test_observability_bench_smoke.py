"""Smoke test of benchmarks/observability.py: the documented command runs the token endpoint and
the gateway, each with observability on and off, and reports a ratio with its spread for both
(benchmarks/README.md).

One round of tiny batches; the report's structure only. No figure is compared with the budget or
with another figure: speed belongs to the benchmark's own runs.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "observability.py"


def _is_figure(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_observability_bench_reports_both_parts() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, str(BENCH), "--rounds", "2", "--tokens", "20", "--requests", "200",
               "--connections", "4", "--json"]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, check=False, env=env
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["rounds"] == 2
    for part in ("token_endpoint", "gateway"):
        row = result[part]
        for field in ("cpu_on_us", "cpu_off_us", "probe_set_cpu_ms", "ratio_median"):
            assert _is_figure(row[field]), (part, field)
            assert row[field] > 0, (part, field)
        assert row["ratio_min"] <= row["ratio_median"] <= row["ratio_max"], part
        assert len(row["ratios"]) == 2, part
        assert all(_is_figure(v) for v in row["ratio_iqr"]), part
    control = result["gateway"]["control"]
    assert control["min"] <= control["median"] <= control["max"]
    assert len(control["ratios"]) == 2
