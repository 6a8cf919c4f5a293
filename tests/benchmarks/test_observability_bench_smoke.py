"""Smoke test of benchmarks/observability.py: the documented command runs the token endpoint and
the gateway, each with observability on and off (two copies of each), and reports a ratio with its
spread, and two A/A controls, for both (benchmarks/README.md).

Two rounds of two slices of tiny batches; the report's structure only. No figure is compared
with the budget or with another figure: speed belongs to the benchmark's own runs.
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
               "--slices", "2", "--connections", "4", "--seed", "7", "--json"]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, check=False, env=env
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["rounds"] == 2
    assert result["slices_per_round"] == 2
    assert result["seed"] == 7
    for part in ("token_endpoint", "gateway"):
        row = result[part]
        fields = ("cpu_on_us", "cpu_off_us", "probe_set_cpu_ms", "ratio_median", "ratio_pooled")
        for field in fields:
            assert _is_figure(row[field]), (part, field)
            assert row[field] > 0, (part, field)
        assert row["ratio_min"] <= row["ratio_median"] <= row["ratio_max"], part
        assert len(row["ratios"]) == 4, part
        assert all(_is_figure(v) for v in row["ratio_iqr"]), part
        low, high = row["ratio_median_ci95"]
        assert row["ratio_min"] <= low <= high <= row["ratio_max"], part
        # Started alternating on and off, whichever leads.
        order = row["start_order"]
        assert sorted(order) == ["off-a", "off-b", "on-a", "on-b"], part
        modes = [name.split("-")[0] for name in order]
        assert modes in (["on", "off"] * 2, ["off", "on"] * 2), part
        for name in ("control", "control_on"):
            control = row[name]
            assert control["min"] <= control["median"] <= control["max"], (part, name)
            assert len(control["ratios"]) == 4, (part, name)
