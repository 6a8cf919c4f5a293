"""Several workers' metrics answered by one (`observability.worker_metrics`): the merge rules per
kind of family, the files in the shared directory, a file that cannot be read."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from authgate.server.observability.worker_metrics import (
    FRESH_FOR,
    WorkerMetrics,
    WorkerSnapshot,
    merge_workers,
)

NOW = 1_000_000.0


def _families(requests: float, in_use: float, store_up: float, key_age: float) -> list[Metric]:
    counter = CounterMetricFamily("authgate_server_requests", "r", labels=["endpoint"])
    counter.add_metric(["token"], requests)
    latency = HistogramMetricFamily("authgate_server_request_duration_seconds", "d", labels=["e"])
    latency.add_metric(["token"], [("0.1", 1.0), ("+Inf", 2.0)], 0.5)
    return [
        counter,
        latency,
        GaugeMetricFamily("authgate_server_db_pool_connections_in_use", "p", value=in_use),
        GaugeMetricFamily("authgate_limit_store_up", "u", value=store_up),
        GaugeMetricFamily("authgate_server_signing_key_age_seconds", "k", value=key_age),
    ]


def _values(families: list[Metric]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def test_counters_add_up_over_every_worker_and_gauges_over_live_ones() -> None:
    live = WorkerSnapshot.of(_families(5, 3, 0, 99), written_at=NOW - 1)
    gone = WorkerSnapshot.of(_families(7, 4, 0, 99), written_at=NOW - FRESH_FOR - 1)
    # A label set only another worker has seen is added too.
    other_endpoint = CounterMetricFamily("authgate_server_requests", "r", labels=["endpoint"])
    other_endpoint.add_metric(["jwks"], 2)
    extra = WorkerSnapshot.of([other_endpoint], written_at=NOW)
    merged = merge_workers(_families(1, 2, 1, 10), [live, gone, extra], NOW)
    assert _values(merged) == {
        ("authgate_server_requests_total", (("endpoint", "token"),)): 13.0,  # 1 + 5 + 7
        ("authgate_server_requests_total", (("endpoint", "jwks"),)): 2.0,
        ("authgate_server_request_duration_seconds_bucket", (("e", "token"), ("le", "0.1"))): 3.0,
        ("authgate_server_request_duration_seconds_bucket", (("e", "token"), ("le", "+Inf"))): 6.0,
        ("authgate_server_request_duration_seconds_count", (("e", "token"),)): 6.0,
        ("authgate_server_request_duration_seconds_sum", (("e", "token"),)): 1.5,
        ("authgate_server_db_pool_connections_in_use", ()): 5.0,  # 2 + 3: not the exited worker
        ("authgate_limit_store_up", ()): 0.0,  # the lowest of the live workers
        ("authgate_server_signing_key_age_seconds", ()): 10.0,  # the answering worker's
    }


def test_alone_the_answer_is_unchanged() -> None:
    assert _values(merge_workers(_families(1, 2, 1, 10), [], NOW)) == _values(
        _families(1, 2, 1, 10)
    )


def test_workers_write_and_read_each_other(tmp_path: Path) -> None:
    first = WorkerMetrics(tmp_path, pid=101)
    second = WorkerMetrics(tmp_path, pid=102)
    first.write(_families(4, 1, 1, 10))
    second.write(_families(6, 1, 1, 10))
    (tmp_path / "103.json").write_text("{not json", encoding="utf-8")  # skipped
    (tmp_path / "104.json").write_text('{"written_at": 1}', encoding="utf-8")  # skipped
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "101.json",
        "102.json",
        "103.json",
        "104.json",
    ]
    merged = first.merged(_families(4, 1, 1, 10))
    assert _values(merged)[("authgate_server_requests_total", (("endpoint", "token"),))] == 10.0
    assert [s.families for s in second.others()] == [
        WorkerSnapshot.of(_families(4, 1, 1, 10), 0).families
    ]


def test_a_snapshot_survives_its_file() -> None:
    snapshot = WorkerSnapshot.of(_families(1, 2, 1, 10), written_at=NOW)
    assert WorkerSnapshot.from_json(snapshot.to_json()) == snapshot
