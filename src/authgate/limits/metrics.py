"""The limiter's counters, kept as plain attributes, and a Prometheus collector that reads them.

As with the gateway and the verifier, nothing is counted through prometheus_client on the request
path: `LimiterMetrics` is updated by the `Limiter`, and `LimitsCollector` turns it into metric
families when Prometheus scrapes (register it in the registry that serves `/metrics`). Names:

- `authgate_limit_decisions_total{limit,outcome}`: outcome `allowed`, `limited` (429),
  `fail_open` (allowed uncounted, the store did not answer), `fail_closed` (503, same);
- `authgate_limit_store_errors_total`: store operations that failed or timed out;
- `authgate_limit_store_outages_total`: times the store went from answering to not answering;
- `authgate_limit_store_up`: 1 while the store answers, 0 during an outage.

Limit names come from configuration, never from requests, so the label sets stay small.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["OUTCOMES", "LimiterMetrics", "LimitsCollector"]

OUTCOMES = ("allowed", "limited", "fail_open", "fail_closed")


@dataclass(slots=True)
class LimiterMetrics:
    """Counters of one `Limiter` (see the module docstring for their meaning)."""

    decisions: Counter[tuple[str, str]] = field(default_factory=Counter)
    store_errors: int = 0
    outages: int = 0
    store_up: bool = True


class LimitsCollector(Collector):
    """Reads `LimiterMetrics` at scrape time (a callable, for a limiter replaced on reload)."""

    def __init__(self, metrics: LimiterMetrics | Callable[[], LimiterMetrics]) -> None:
        self._metrics = metrics if callable(metrics) else (lambda: metrics)

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics()
        decisions = CounterMetricFamily(
            "authgate_limit_decisions_total",
            "rate-limit decisions by limit and outcome",
            labels=["limit", "outcome"],
        )
        for (limit, outcome), value in sorted(metrics.decisions.items()):
            decisions.add_metric([limit, outcome], value)
        yield decisions
        yield CounterMetricFamily(
            "authgate_limit_store_errors_total",
            "rate-limit store operations that failed or timed out",
            value=metrics.store_errors,
        )
        yield CounterMetricFamily(
            "authgate_limit_store_outages_total",
            "times the rate-limit store stopped answering",
            value=metrics.outages,
        )
        yield GaugeMetricFamily(
            "authgate_limit_store_up",
            "1 while the rate-limit store answers",
            value=1 if metrics.store_up else 0,
        )
