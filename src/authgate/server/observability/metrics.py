"""Prometheus metrics of the authorization server (text exposition format 0.0.4).

As in the gateway (`authgate.gateway.metrics`), nothing goes through prometheus_client on the
request path: `ServerMetrics` keeps plain counters, and `ServerCollector` turns them, and the
state read at scrape time, into metric families. Every label value is bounded: endpoints are the
server's named endpoints (`other` for any other path), statuses are HTTP status codes, grants
are the grant types the server implements, algorithms the configured ones; no client id, path
or user name is ever a label. Names:

- `authgate_server_requests_total{endpoint,status}`,
  `authgate_server_request_duration_seconds{endpoint}` (histogram);
- `authgate_server_tokens_issued_total{grant}` (successful token responses);
- `authgate_server_signing_key_age_seconds{alg}` (since the active key started signing),
  `authgate_server_signing_key_next_activation_seconds{alg}` (until its successor signs; absent
  while none is scheduled);
- `authgate_server_db_pool_connections_in_use`, `authgate_server_db_pool_capacity`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from authgate.server.keys.schedule import active_key
from authgate.server.paths import ENDPOINT_PATHS, issuer_path, metadata_paths

if TYPE_CHECKING:
    from authgate.server.auth_server import AuthServer

__all__ = [
    "ENDPOINT_NAMES",
    "ServerCollector",
    "ServerMetrics",
    "endpoint_names",
    "render_metrics",
    "scrape_endpoint",
]

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Path -> bounded endpoint label. Paths not listed count as "other" (404s, scans, static files).
ENDPOINT_NAMES: dict[str, str] = {path: name for name, path in ENDPOINT_PATHS.items()}
ENDPOINT_NAMES.update(
    {
        "/.well-known/openid-configuration": "metadata",
        "/.well-known/oauth-authorization-server": "metadata",
        "/healthz": "healthz",
        "/readyz": "readyz",
        "/metrics": "metrics",
    }
)


def endpoint_names(issuer: str) -> dict[str, str]:
    """`ENDPOINT_NAMES` for the paths an issuer's server answers at (below the issuer's path)."""
    base = issuer_path(issuer)
    names = {base + path: name for name, path in ENDPOINT_PATHS.items()}
    names.update(dict.fromkeys(metadata_paths(issuer), "metadata"))
    names.update({path: ENDPOINT_NAMES[path] for path in ("/healthz", "/readyz", "/metrics")})
    return names


class _Histogram:
    __slots__ = ("count", "counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.count = 0
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BUCKETS, seconds)] += 1
        self.count += 1
        self.total += seconds


class ServerMetrics:
    """The counters one server process keeps."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()
        self.latency: dict[str, _Histogram] = {}
        self.tokens_issued: Counter[str] = Counter()

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests[endpoint, status] += 1
        histogram = self.latency.get(endpoint)
        if histogram is None:
            histogram = self.latency[endpoint] = _Histogram()
        histogram.observe(seconds)


class ServerCollector(Collector):
    """Reads the counters and the server's state at scrape time."""

    def __init__(self, metrics: ServerMetrics, server: AuthServer) -> None:
        self._metrics = metrics
        self._server = server

    def collect(self) -> Iterator[Metric]:
        yield from self._request_families()
        yield from self._key_families()
        yield from self._pool_families()

    def _request_families(self) -> Iterator[Metric]:
        m = self._metrics
        requests = CounterMetricFamily(
            "authgate_server_requests",
            "requests answered, by endpoint and status",
            labels=["endpoint", "status"],
        )
        for (endpoint, status), count in sorted(m.requests.items()):
            requests.add_metric([endpoint, str(status)], count)
        yield requests
        latency = HistogramMetricFamily(
            "authgate_server_request_duration_seconds",
            "time to answer a request",
            labels=["endpoint"],
        )
        for endpoint, histogram in sorted(m.latency.items()):
            running = 0
            buckets: list[tuple[str, float]] = []
            for bound, count in zip(BUCKETS, histogram.counts, strict=False):
                running += count
                buckets.append((repr(bound), running))
            buckets.append(("+Inf", histogram.count))
            latency.add_metric([endpoint], buckets, histogram.total)
        yield latency
        issued = CounterMetricFamily(
            "authgate_server_tokens_issued", "token responses, by grant type", labels=["grant"]
        )
        for grant, count in sorted(m.tokens_issued.items()):
            issued.add_metric([grant], count)
        yield issued

    def _key_families(self) -> Iterator[Metric]:
        server = self._server
        now = server.clock()
        records = server.keys.records()
        age = GaugeMetricFamily(
            "authgate_server_signing_key_age_seconds",
            "seconds since the active signing key started signing",
            labels=["alg"],
        )
        upcoming = GaugeMetricFamily(
            "authgate_server_signing_key_next_activation_seconds",
            "seconds until the next signing key of this algorithm starts signing",
            labels=["alg"],
        )
        for alg in server.config.keys.algorithms:
            active = active_key(records, alg, now)
            if active is not None:
                age.add_metric([alg], now - active.activate_at)
            later = [r.activate_at for r in records if r.alg == alg and r.activate_at > now]
            if later:
                upcoming.add_metric([alg], min(later) - now)
        yield from (age, upcoming)

    def _pool_families(self) -> Iterator[Metric]:
        database: Any = getattr(self._server.storage, "database", None)
        if database is None:
            return
        checked_out = getattr(database.engine.pool, "checkedout", None)
        if checked_out is not None:
            yield GaugeMetricFamily(
                "authgate_server_db_pool_connections_in_use",
                "pooled database connections in use",
                value=checked_out(),
            )
        yield GaugeMetricFamily(
            "authgate_server_db_pool_capacity",
            "the most database connections this process opens",
            value=database.pool_capacity,
        )


def render_metrics(collector: ServerCollector) -> bytes:
    """The exposition text for one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)


def scrape_endpoint(metrics: ServerMetrics) -> Callable[[Request], Awaitable[Response]]:
    """The `/metrics` endpoint over `metrics` and the app's running server."""

    async def endpoint(request: Request) -> Response:
        body = render_metrics(ServerCollector(metrics, request.app.state.authgate))
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})

    return endpoint
