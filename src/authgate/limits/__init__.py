"""`authgate.limits`: rate limits for the authorization server and the gate, counted in this
process or in Redis (shared by every process and machine).

A `Limit` names a `Rate` (`parse_rate("10/minute", burst=5)`) and what to do when its store
cannot be reached (`FailMode`); a `Limiter` decides requests against limits (GCRA, see `gcra`)
and returns `Decision`s, from which `refusal` and `rate_limit_headers` build the answer (429 or
503, `Retry-After`, the RateLimit fields, an OAuth error). See docs/limits.md.

This package sits at the bottom of the layers, beside `authgate.oauth`: it imports nothing from
the verifier, the gate, the gateway, the middleware, the server or the CLI.
"""

from authgate.limits.decisions import Decision, RateLimited, Refusal, rate_limit_headers, refusal
from authgate.limits.limiter import Limiter
from authgate.limits.metrics import LimiterMetrics, LimitsCollector
from authgate.limits.rates import FailMode, Limit, Rate, parse_rate
from authgate.limits.store import DEFAULT_TIMEOUT, Store, StoreUnavailable
from authgate.limits.stores import open_store

__all__ = [
    "DEFAULT_TIMEOUT",
    "Decision",
    "FailMode",
    "Limit",
    "Limiter",
    "LimiterMetrics",
    "LimitsCollector",
    "Rate",
    "RateLimited",
    "Refusal",
    "Store",
    "StoreUnavailable",
    "open_store",
    "parse_rate",
    "rate_limit_headers",
    "refusal",
]
