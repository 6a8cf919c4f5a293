"""Smoke test of benchmarks/jose_bench.py: the documented command runs to completion and reports a
figure for every algorithm, operation and implementation it claims to measure
(benchmarks/README.md, "What is measured").

It runs one round of the smallest batches and checks the report's structure only. No figure is
compared with a goal, a threshold or another figure: speed belongs to the benchmark's own runs.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "jose_bench.py"
ALGORITHMS = {
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512", "ES256K", "EdDSA",
}  # fmt: skip
OPERATIONS = ("sign", "verify")
# PyJWT and joserfc are in the test extra, and both support every algorithm above: no `n/a` here.
IMPLEMENTATIONS = ("raw", "authgate", "PyJWT", "joserfc")


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH), "--rounds", "1", "--batch-time", "0.0005", *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def _is_figure(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_json_report_has_a_figure_for_every_algorithm_operation_and_implementation() -> None:
    result = _bench("--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["meta"]["rounds"] == 1
    assert report["meta"]["unavailable"] == {}
    if hasattr(os, "sched_setaffinity"):
        assert isinstance(report["meta"]["cpu"], int)
    # One row per algorithm and operation, none missing, none twice.
    assert sorted((row["alg"], row["op"]) for row in report["rows"]) == sorted(
        (alg, op) for alg in ALGORITHMS for op in OPERATIONS
    )
    for row in report["rows"]:
        assert tuple(row["results"]) == IMPLEMENTATIONS, row["results"].keys()
        for name, figures in row["results"].items():
            where = (row["alg"], row["op"], name, figures)
            assert set(figures) == {"ops_per_s", "share_of_raw", "spread"}, where
            assert all(_is_figure(figures[key]) for key in figures), where
            assert figures["ops_per_s"] > 0, where
        # The reference is divided by itself, whatever the speed.
        assert row["results"]["raw"]["share_of_raw"] == 1.0
        goal = row.get("goal")
        if goal is not None:
            assert row["op"] == "verify", row
            assert set(goal) == {"authgate_share_at_least", "met"}
            assert _is_figure(goal["authgate_share_at_least"])
            assert isinstance(goal["met"], bool)
    assert any("goal" in row for row in report["rows"])


def test_table_report_shows_every_implementation_for_the_chosen_algorithms() -> None:
    result = _bench("--alg", "HS256", "--alg", "ES384")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "interleaved rounds" in lines[0]
    assert "CPU" in lines[0]
    assert not any("n/a" in line for line in lines), result.stdout
    table = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if "|" in line]
    header, rows = table[0], {(row[0], row[1]): row for row in table[2:]}
    assert header == [
        "alg",
        "op",
        "raw ops/s",
        *(f"{name} ops/s (% raw)" for name in IMPLEMENTATIONS[1:]),
        "goal: authgate",
    ]
    assert sorted(rows) == sorted((alg, op) for alg in ("HS256", "ES384") for op in OPERATIONS)
    for key, row in rows.items():
        raw, *others, goal = row[2:]
        assert re.fullmatch(r"[\d,]+", raw), (key, raw)
        for cell in others:
            assert re.fullmatch(r"[\d,]+ \(\d+ %\)", cell), (key, cell)
        if key == ("HS256", "verify"):  # the one goal row among these: a verdict, either way
            assert re.fullmatch(r"✓ \d+\.\d % ≥ \d+ %|✗ \d+\.\d % < \d+ %", goal), goal
        else:
            assert goal == "", (key, goal)
