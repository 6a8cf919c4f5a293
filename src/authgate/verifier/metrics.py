"""Counters kept by the verifier as plain attributes, for any exporter to read.

Nothing here depends on a metrics library: the gateway's Prometheus endpoint reads these objects at
scrape time (counters only grow; `LatencyHistogram` has cumulative-ready fixed buckets), and tests
read them directly. Per-issuer key state (age, status) is not counted here but computed on demand by
`Verifier.issuer_status()`.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["IssuerMetrics", "LatencyHistogram", "VerifierMetrics"]

_bisect_left = bisect.bisect_left

# Seconds. Cached verifications take microseconds; a JWKS fetch takes milliseconds.
DEFAULT_BUCKETS = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip


@dataclass(slots=True)
class IssuerMetrics:
    """Per-issuer JWKS counters.

    `jwks_fetches`/`jwks_fetch_failures`: every fetch attempt and the failed ones (discovery
    included); `stale_keys_served`: verifications that used keys past their lifetime
    (stale-if-error);
    `unknown_kids`: tokens whose `kid` was not held; `unknown_kid_fetches`: fetches they caused.
    """

    jwks_fetches: int = 0
    jwks_fetch_failures: int = 0
    stale_keys_served: int = 0
    unknown_kids: int = 0
    unknown_kid_fetches: int = 0


@dataclass(slots=True)
class LatencyHistogram:
    """Observations in fixed buckets: `counts[i]` holds values <= `buckets[i]` (not cumulative);
    the last slot counts values above every bucket."""

    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, seconds: float) -> None:
        self.counts[_bisect_left(self.buckets, seconds)] += 1
        self.total += seconds
        self.count += 1


@dataclass(slots=True)
class VerifierMetrics:
    """Verifier-wide counters.

    `outcomes` counts verifications by result: "ok" or a `Reason` value ("expired", "signature",
    ...), plus "unavailable" for 503s. `token_cache_hits`/`misses` give the hit ratio.
    `introspections` counts requests sent to the introspection endpoint, `introspection_failures`
    the failed ones, `introspection_cache_hits` answers served from its caches. `latency` observes
    every verification, cache hits included.
    """

    issuers: dict[str, IssuerMetrics] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    token_cache_hits: int = 0
    token_cache_misses: int = 0
    introspections: int = 0
    introspection_failures: int = 0
    introspection_cache_hits: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    def issuer(self, issuer: str) -> IssuerMetrics:
        """The counters of `issuer`, created on first use."""
        found = self.issuers.get(issuer)
        if found is None:
            found = self.issuers[issuer] = IssuerMetrics()
        return found
