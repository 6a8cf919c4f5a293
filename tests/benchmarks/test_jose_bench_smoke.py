"""Smoke test of benchmarks/jose_bench.py: the documented command runs and reports every algorithm.

It runs with the smallest batches and one round, and asserts the shape of the report only: timing
figures are never asserted in tests (they belong to the benchmark's own run).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "jose_bench.py"
ALGORITHMS = {
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512", "ES256K", "EdDSA",
}  # fmt: skip
GOALS = {"RS256": 0.80, "ES256": 0.90, "EdDSA": 0.92, "HS256": 0.25}


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH), "--rounds", "1", "--batch-time", "0.0005", *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_json_report_has_a_row_per_algorithm_and_operation() -> None:
    result = _bench("--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    rows = {(row["alg"], row["op"]): row for row in report["rows"]}
    assert set(rows) == {(alg, op) for alg in ALGORITHMS for op in ("sign", "verify")}
    for (alg, op), row in rows.items():
        assert set(row["results"]) == {"raw", "authgate", "PyJWT", "joserfc"}
        for name in ("raw", "authgate"):
            assert row["results"][name]["ops_per_s"] > 0, (alg, op, name)
        assert row["results"]["raw"]["share_of_raw"] == 1.0
        if op == "verify" and alg in GOALS:
            assert row["goal"]["authgate_share_at_least"] == GOALS[alg]
            assert row["goal"]["met"] == (row["results"]["authgate"]["share_of_raw"] >= GOALS[alg])
        else:
            assert "goal" not in row
    assert report["meta"]["rounds"] == 1
    if hasattr(__import__("os"), "sched_setaffinity"):
        assert isinstance(report["meta"]["cpu"], int)


def test_table_report_marks_goals() -> None:
    result = _bench("--alg", "HS256", "--alg", "ES384")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "interleaved rounds" in lines[0]
    assert "CPU" in lines[0]
    table = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if "|" in line]
    header, rows = table[0], {(row[0], row[1]): row for row in table[2:]}
    assert header[:3] == ["alg", "op", "raw ops/s"]
    assert header[-1] == "goal: authgate"
    assert set(rows) == {
        ("HS256", "sign"),
        ("HS256", "verify"),
        ("ES384", "sign"),
        ("ES384", "verify"),
    }
    hs_verify = rows[("HS256", "verify")]
    assert hs_verify[3].endswith("%)")  # authgate: "ops/s (share %)"
    assert re.fullmatch(r"(✓ \d+\.\d % ≥|✗ \d+\.\d % <) 25 %", hs_verify[-1]), hs_verify[-1]
    assert rows[("ES384", "verify")][-1] == ""
    assert rows[("HS256", "sign")][-1] == ""
