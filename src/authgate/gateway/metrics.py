"""Prometheus metrics for `/metrics` (text exposition format 0.0.4).

Nothing is counted through prometheus_client on the request path: the gateway and the verifier keep
plain counters (`GatewayStats`, `authgate.verifier.VerifierMetrics`), and `GatewayCollector` turns
them into metric families when Prometheus scrapes. Names:

- `authgate_jwks_fetches_total{issuer}`, `authgate_jwks_fetch_failures_total{issuer}`,
  `authgate_jwks_stale_keys_served_total{issuer}`, `authgate_jwks_unknown_kids_total{issuer}`,
  `authgate_jwks_unknown_kid_fetches_total{issuer}`; gauges `authgate_jwks_key_age_seconds{issuer}`,
  `authgate_jwks_keys{issuer}`, `authgate_issuer_ready{issuer}`;
- `authgate_verification_duration_seconds` (histogram), `authgate_verifications_total{outcome}`,
  `authgate_token_cache_hits_total`, `authgate_token_cache_misses_total`,
  `authgate_token_cache_hit_ratio`;
- `authgate_decisions_total{endpoint,outcome}` (endpoint: proxy or forward_auth; outcome: allowed,
  public, unauthenticated, forbidden, unavailable, no_route, bad_request, limited,
  exchange_refused, exchange_unavailable);
- `authgate_upstream_responses_total{code_class}`, `authgate_upstream_errors_total{status}`,
  `authgate_open_connections`, `authgate_config_reloads_total{result}`;
- `authgate_token_exchanges_total{outcome}`: tokens exchanged for a route's upstream (hit: from the
  cache or another request's in-flight exchange; miss: an exchange at the AS; refused: the AS
  refused it, 403; error: the AS unreachable or failing, 503);
- rate limits: `authgate_rate_limited_total{endpoint,route,key}` (429s, by the route and what its
  limit counted: subject, client_id, api_key, address or claim), and the limiter's own families
  (`authgate.limits.LimitsCollector`: `authgate_limit_decisions_total{limit,outcome}`,
  `authgate_limit_store_errors_total`, `authgate_limit_store_outages_total`,
  `authgate_limit_store_up`) while a route is limited.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from authgate.limits import LimiterMetrics, LimitsCollector
from authgate.verifier import Verifier

__all__ = ["GatewayCollector", "GatewayStats", "render_metrics"]


@dataclass(slots=True)
class GatewayStats:
    """Counters the gateway keeps across reloads."""

    decisions: Counter[tuple[str, str]] = field(default_factory=Counter)
    upstream_responses: Counter[str] = field(default_factory=Counter)
    upstream_errors: Counter[str] = field(default_factory=Counter)
    reloads: Counter[str] = field(default_factory=Counter)
    rate_limited: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    token_exchanges: Counter[str] = field(default_factory=Counter)


class GatewayCollector(Collector):
    """Reads the counters at scrape time."""

    def __init__(
        self,
        stats: GatewayStats,
        verifier: Callable[[], Verifier],
        open_connections: Callable[[], int],
        limiter: Callable[[], LimiterMetrics | None] = lambda: None,
    ) -> None:
        self._stats = stats
        self._verifier = verifier
        self._open = open_connections
        self._limiter = limiter

    def collect(self) -> Iterator[Metric]:
        yield from self._issuer_families()
        yield from self._verification_families()
        yield from self._gateway_families()
        yield from self._rate_limit_families()

    def _rate_limit_families(self) -> Iterator[Metric]:
        limited = CounterMetricFamily(
            "authgate_rate_limited",
            "requests refused with 429 by a route's rate limit",
            labels=["endpoint", "route", "key"],
        )
        for (endpoint, route, key), count in sorted(self._stats.rate_limited.items()):
            limited.add_metric([endpoint, route, key], count)
        yield limited
        metrics = self._limiter()
        if metrics is not None:
            yield from LimitsCollector(metrics).collect()

    def _issuer_families(self) -> Iterator[Metric]:
        verifier = self._verifier()
        per_issuer = verifier.metrics.issuers
        counters = {
            "jwks_fetches": ("JWKS fetch attempts", "jwks_fetches"),
            "jwks_fetch_failures": ("JWKS fetches that failed", "jwks_fetch_failures"),
            "jwks_stale_keys_served": (
                "verifications that used keys past their lifetime (stale-if-error)",
                "stale_keys_served",
            ),
            "jwks_unknown_kids": ("tokens whose kid was not held", "unknown_kids"),
            "jwks_unknown_kid_fetches": (
                "JWKS fetches caused by unknown kids",
                "unknown_kid_fetches",
            ),
        }
        for name, (doc, attr) in counters.items():
            family = CounterMetricFamily(f"authgate_{name}", doc, labels=["issuer"])
            for issuer, m in per_issuer.items():
                family.add_metric([issuer], getattr(m, attr))
            yield family
        age = GaugeMetricFamily(
            "authgate_jwks_key_age_seconds",
            "seconds since the held keys were fetched",
            labels=["issuer"],
        )
        keys = GaugeMetricFamily("authgate_jwks_keys", "keys held", labels=["issuer"])
        ready = GaugeMetricFamily(
            "authgate_issuer_ready", "1 when the issuer's keys can verify tokens", labels=["issuer"]
        )
        for status in verifier.issuer_status():
            if status.key_age is not None:
                age.add_metric([status.issuer], status.key_age)
            keys.add_metric([status.issuer], status.keys)
            ready.add_metric([status.issuer], 1 if status.ready else 0)
        yield from (age, keys, ready)

    def _verification_families(self) -> Iterator[Metric]:
        metrics = self._verifier().metrics
        latency = metrics.latency
        buckets: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip(latency.buckets, latency.counts, strict=False):
            running += count
            buckets.append((repr(bound), running))
        buckets.append(("+Inf", latency.count))
        yield HistogramMetricFamily(
            "authgate_verification_duration_seconds",
            "time to verify a credential (cache hits included)",
            buckets=buckets,
            sum_value=latency.total,
        )
        outcomes = CounterMetricFamily(
            "authgate_verifications", "verifications by outcome", labels=["outcome"]
        )
        for outcome, count in sorted(metrics.outcomes.items()):
            outcomes.add_metric([outcome], count)
        yield outcomes
        hits, misses = metrics.token_cache_hits, metrics.token_cache_misses
        yield CounterMetricFamily(
            "authgate_token_cache_hits", "verified-token cache hits", value=hits
        )
        yield CounterMetricFamily(
            "authgate_token_cache_misses", "verified-token cache misses", value=misses
        )
        yield GaugeMetricFamily(
            "authgate_token_cache_hit_ratio",
            "hits / (hits + misses) since start",
            value=hits / (hits + misses) if hits + misses else 0.0,
        )

    def _gateway_families(self) -> Iterator[Metric]:
        stats = self._stats
        decisions = CounterMetricFamily(
            "authgate_decisions", "gate decisions", labels=["endpoint", "outcome"]
        )
        for (endpoint, outcome), count in sorted(stats.decisions.items()):
            decisions.add_metric([endpoint, outcome], count)
        yield decisions
        responses = CounterMetricFamily(
            "authgate_upstream_responses", "upstream responses", labels=["code_class"]
        )
        for code_class, count in sorted(stats.upstream_responses.items()):
            responses.add_metric([code_class], count)
        yield responses
        errors = CounterMetricFamily(
            "authgate_upstream_errors", "requests answered 502/504", labels=["status"]
        )
        for status, count in sorted(stats.upstream_errors.items()):
            errors.add_metric([status], count)
        yield errors
        yield GaugeMetricFamily(
            "authgate_open_connections", "open client connections", value=self._open()
        )
        reloads = CounterMetricFamily(
            "authgate_config_reloads", "configuration reloads", labels=["result"]
        )
        for result, count in sorted(stats.reloads.items()):
            reloads.add_metric([result], count)
        yield reloads
        exchanges = CounterMetricFamily(
            "authgate_token_exchanges",
            "token exchanges for upstreams (RFC 8693) by outcome",
            labels=["outcome"],
        )
        for outcome, count in sorted(stats.token_exchanges.items()):
            exchanges.add_metric([outcome], count)
        yield exchanges


def render_metrics(collector: GatewayCollector) -> bytes:
    """The exposition text for one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)
