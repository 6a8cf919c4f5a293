"""Prometheus metrics of the authorization server (text exposition format 0.0.4).

As in the gateway (`authgate.gateway.metrics`), nothing goes through prometheus_client on the
request path: `ServerMetrics` keeps plain counters, and `ServerCollector` turns them, and the
state read at scrape time, into metric families. Every label value is bounded: endpoints are the
server's named endpoints (`other` for any other path), statuses are HTTP status codes, grants
are the grant types the server implements, algorithms the configured ones; no client id, path
or user name is ever a label. The security events are counted in `AuthServer.counters`
(`observability.counters`), the pool's checkouts in `Database.pool_counters`; the one storage read,
the count of pending device codes, is reused for `REUSE_FOR` seconds and bounded by
`READ_TIMEOUT`, so that scrapes (or anyone, on a public `/metrics`) cannot load the database.
Names:

- `authgate_server_requests_total{endpoint,status}`,
  `authgate_server_request_duration_seconds{endpoint}` (histogram);
- `authgate_server_tokens_issued_total{grant,format,alg}`: access tokens issued in successful
  token responses (`format` `jwt` or `opaque`, `alg` the signing algorithm, `none` for opaque;
  a refresh answered again in its grace window issues none);
- `authgate_server_client_auth_failures_total{method,error}`: refused client authentications,
  by the method tried (`client_secret_basic`, `client_secret_post`, `private_key_jwt`, `none`,
  `other`: none, several, or an Authorization scheme not Basic) and the OAuth error code;
- `authgate_server_refresh_token_reuse_total` (rotated refresh tokens presented again, RFC 9700
  §4.14.2), `authgate_server_refresh_families_revoked_total{reason}` (`reuse`, `revocation`);
- `authgate_server_signin_failures_total` (wrong username or password),
  `authgate_server_throttled_total{flow}` (`signin`, `user_code`: attempts refused with 429);
- `authgate_server_device_codes_pending` (device authorizations waiting for their user; absent
  while the database does not answer);
- `authgate_server_signing_key_age_seconds{alg}` (since the active key started signing),
  `authgate_server_signing_key_next_activation_seconds{alg}` (until its successor signs; absent
  while none is scheduled);
- `authgate_server_db_pool_connections_in_use`, `authgate_server_db_pool_capacity`,
  `authgate_server_db_pool_waiting` (checkouts under way: waiting for a free connection, or
  opening one), `authgate_server_db_pool_errors_total{kind}` (`timeout`: none free within the
  pool timeout; `connect`: the database could not be reached);
- the server's rate limits and throttle store, as in the gateway (`authgate.limits.metrics`):
  `authgate_limit_decisions_total{limit,outcome}`, `authgate_limit_store_errors_total`,
  `authgate_limit_store_outages_total`, `authgate_limit_store_up`.

Counters are per process; with several worker processes, the one answering a scrape adds the
others' (`worker_metrics`).
"""

from __future__ import annotations

import asyncio
import time
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

from authgate.limits import LimitsCollector
from authgate.server.keys.schedule import active_key
from authgate.server.observability.counters import FAMILY_REVOCATION_REASONS, THROTTLED_FLOWS
from authgate.server.observability.worker_metrics import Families, WorkerMetrics, merge_workers
from authgate.server.paths import ENDPOINT_PATHS, issuer_path, metadata_paths
from authgate.server.storage.database import POOL_ERRORS

if TYPE_CHECKING:
    from authgate.server.auth_server import AuthServer

__all__ = [
    "ENDPOINT_NAMES",
    "READ_TIMEOUT",
    "REUSE_FOR",
    "ServerCollector",
    "ServerMetrics",
    "endpoint_names",
    "render_metrics",
    "scrape_endpoint",
]

READ_TIMEOUT = 2.0  # seconds the database has to count pending device codes
REUSE_FOR = 1.0  # seconds a count is reused
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


class _StorageRead:
    """The last count of pending device codes (None: the database did not answer), reused for
    `REUSE_FOR` seconds, one read at a time."""

    __slots__ = ("at", "lock", "value")

    def __init__(self) -> None:
        self.value: int | None = None
        self.at: float | None = None
        self.lock = asyncio.Lock()


class ServerMetrics:
    """The counters one server process keeps about its requests."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()
        self.latency: dict[str, _Histogram] = {}
        # (grant type, token format, signing algorithm or `none`)
        self.tokens_issued: Counter[tuple[str, str, str]] = Counter()
        self._devices_pending = _StorageRead()

    async def devices_pending(self, server: AuthServer) -> int | None:
        """The number of pending device codes, read at most once per `REUSE_FOR` seconds; None
        when the database does not answer within `READ_TIMEOUT`."""
        read = self._devices_pending
        loop = asyncio.get_running_loop()
        async with read.lock:  # held for at most READ_TIMEOUT
            if read.at is None or loop.time() - read.at >= REUSE_FOR:
                try:
                    read.value = await asyncio.wait_for(
                        server.storage.count_pending_device_authorizations(server.now()),
                        READ_TIMEOUT,
                    )
                except Exception:  # noqa: BLE001 - a scrape never fails for the database
                    read.value = None
                read.at = loop.time()
            return read.value

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests[endpoint, status] += 1
        histogram = self.latency.get(endpoint)
        if histogram is None:
            histogram = self.latency[endpoint] = _Histogram()
        histogram.observe(seconds)


class ServerCollector(Collector):
    """Reads the counters and the server's state at scrape time."""

    def __init__(
        self, metrics: ServerMetrics, server: AuthServer, devices_pending: int | None = None
    ) -> None:
        """`devices_pending`: the count read from storage for this scrape (None: left out)."""
        self._metrics = metrics
        self._server = server
        self._devices_pending = devices_pending

    def collect(self) -> Iterator[Metric]:
        yield from self._request_families()
        yield from self._security_families()
        if self._devices_pending is not None:
            yield GaugeMetricFamily(
                "authgate_server_device_codes_pending",
                "device authorizations waiting for their user's decision",
                value=self._devices_pending,
            )
        yield from self._key_families()
        yield from self._pool_families()
        yield from LimitsCollector(self._server.limits.metrics).collect()

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
            "authgate_server_tokens_issued",
            "access tokens issued, by grant type, format and signing algorithm",
            labels=["grant", "format", "alg"],
        )
        for labels, count in sorted(m.tokens_issued.items()):
            issued.add_metric(list(labels), count)
        yield issued

    def _security_families(self) -> Iterator[Metric]:
        c = self._server.counters
        failures = CounterMetricFamily(
            "authgate_server_client_auth_failures",
            "refused client authentications, by the method tried and the OAuth error",
            labels=["method", "error"],
        )
        for labels, count in sorted(c.client_auth_failures.items()):
            failures.add_metric(list(labels), count)
        yield failures
        yield CounterMetricFamily(
            "authgate_server_refresh_token_reuse",
            "rotated refresh tokens presented again (each revokes its family)",
            value=c.refresh_reuse,
        )
        revoked = CounterMetricFamily(
            "authgate_server_refresh_families_revoked",
            "refresh-token families revoked, by reason",
            labels=["reason"],
        )
        for reason in _with_zeros(FAMILY_REVOCATION_REASONS, c.families_revoked):
            revoked.add_metric([reason], c.families_revoked[reason])
        yield revoked
        yield CounterMetricFamily(
            "authgate_server_signin_failures",
            "sign-ins refused for a wrong username or password",
            value=c.signin_failures,
        )
        throttled = CounterMetricFamily(
            "authgate_server_throttled",
            "attempts refused by the sign-in or user-code throttle (429), by flow",
            labels=["flow"],
        )
        for flow in _with_zeros(THROTTLED_FLOWS, c.throttled):
            throttled.add_metric([flow], c.throttled[flow])
        yield throttled

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
        counters = database.pool_counters
        yield GaugeMetricFamily(
            "authgate_server_db_pool_waiting",
            "database connection checkouts under way (waiting for a free one, or opening one)",
            value=counters.waiting,
        )
        errors = CounterMetricFamily(
            "authgate_server_db_pool_errors",
            "failed database connection checkouts: pool timeout or connection error",
            labels=["kind"],
        )
        for kind in _with_zeros(POOL_ERRORS, counters.errors):
            errors.add_metric([kind], counters.errors[kind])
        yield errors


def _with_zeros(known: tuple[str, ...], counts: Counter[str]) -> list[str]:
    """The label values to show: every known one (at 0 until it happens, so that rates start at
    once), and any other counted."""
    return sorted(set(known).union(counts))


def render_metrics(collector: Collector) -> bytes:
    """The exposition text for one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)


def scrape_endpoint(
    metrics: ServerMetrics, workers: WorkerMetrics | None = None
) -> Callable[[Request], Awaitable[Response]]:
    """The `/metrics` endpoint over `metrics` and the app's running server; with `workers`, the
    other worker processes' samples are added (`worker_metrics`)."""

    async def endpoint(request: Request) -> Response:
        server: AuthServer = request.app.state.authgate
        pending = await metrics.devices_pending(server)
        collector: Collector = ServerCollector(metrics, server, pending)
        if workers is not None:
            others = await asyncio.to_thread(workers.others)  # file reads: off the event loop
            families = merge_workers(list(collector.collect()), others, time.time())
            collector = Families(families)
        body = render_metrics(collector)
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})

    return endpoint
