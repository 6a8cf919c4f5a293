"""Where the limits' state lives, chosen by a URL.

- `memory://` (the default): in this process only (`memory.MemoryStore`); each process counts
  for itself, so N processes admit up to N times a rate. `memory://?max_keys=100000` bounds its
  rate keys, `max_claims=400000` its live one-time claims (DPoP `jti`s).
- `redis://[[user]:password@]host[:port][/db]`, `rediss://…` (TLS), `unix:///path/redis.sock`:
  shared by every process and machine that uses the same Redis (`redis_store.RedisStore`).

A store that cannot answer raises `StoreUnavailable`; the `Limiter` turns that into each limit's
fail-open or fail-closed answer.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from authgate.limits.memory import DEFAULT_MAX_CLAIMS, DEFAULT_MAX_KEYS, MemoryStore, monotonic_us
from authgate.limits.store import DEFAULT_TIMEOUT, Store, StoreUnavailable, describe_url

__all__ = ["DEFAULT_TIMEOUT", "Store", "StoreUnavailable", "describe_url", "open_store"]


def open_store(
    url: str = "memory://",
    *,
    timeout: float = DEFAULT_TIMEOUT,
    clock_us: Callable[[], int] | None = None,
) -> Store:
    """The store for `url` (see the module docstring); ValueError names what is wrong.

    `timeout` bounds every Redis operation (seconds, > 0). `clock_us`: the time in microseconds
    the store decides by (a test's clock); by default this process's monotonic clock in memory
    and Redis's own clock in Redis.
    """
    if not isinstance(url, str):
        raise ValueError(f"limits store URL {url!r}: expected text")  # noqa: TRY004 - config
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme == "memory":
        if parts.netloc or parts.path not in ("", "/"):
            raise ValueError(f"limits store {describe_url(url)!r}: memory:// takes no host or path")
        options = parse_qs(parts.query, keep_blank_values=True)
        unknown = set(options) - {"max_keys", "max_claims"}
        if unknown:
            raise ValueError(
                f"limits store memory://: unknown options {', '.join(sorted(unknown))}"
            )
        return MemoryStore(
            max_keys=_bound(options, "max_keys", DEFAULT_MAX_KEYS),
            max_claims=_bound(options, "max_claims", DEFAULT_MAX_CLAIMS),
            clock=clock_us or monotonic_us,
        )
    if scheme in ("redis", "rediss", "unix"):
        # redis is imported only when a Redis URL is configured.
        from authgate.limits.redis_store import RedisStore  # noqa: PLC0415

        return RedisStore(url.strip(), timeout=timeout, clock=clock_us)
    raise ValueError(
        f"limits store {describe_url(url)!r}: expected memory://, redis://, rediss:// or unix://"
    )


def _bound(options: dict[str, list[str]], name: str, default: int) -> int:
    """The `memory://` option `name`: ASCII digits, 1..100,000,000 (the last one given wins)."""
    raw = options.get(name, [str(default)])[-1]
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 100_000_000:
        raise ValueError(f"limits store memory://: {name} {raw!r} is not 1..100000000")
    return int(raw)
