"""Where the limits' state lives, chosen by a URL.

- `memory://` (the default): in this process only (`memory.MemoryStore`); each process counts
  for itself, so N processes admit up to N times a rate. `memory://?max_keys=100000` bounds it.
- `redis://[[user]:password@]host[:port][/db]`, `rediss://…` (TLS), `unix:///path/redis.sock`:
  shared by every process and machine that uses the same Redis (`redis_store.RedisStore`).

A store that cannot answer raises `StoreUnavailable`; the `Limiter` turns that into each limit's
fail-open or fail-closed answer.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from authgate.limits.gcra import Outcome
from authgate.limits.memory import DEFAULT_MAX_KEYS, MemoryStore

__all__ = ["DEFAULT_TIMEOUT", "Store", "StoreUnavailable", "describe_url", "open_store"]

# Seconds one decision may wait for Redis (connect, pool, round trip) before the limit's failure
# mode answers: long enough for a loaded Redis on the same network, short enough that a dead one
# costs a request little.
DEFAULT_TIMEOUT = 0.1


class StoreUnavailable(Exception):
    """The store could not answer in time (down, hung, refused the command)."""


class Store(Protocol):
    """A GCRA state per key (see `gcra.decide` for the arguments and the answer)."""

    @property
    def description(self) -> str:
        """The store for logs: its URL without credentials."""
        ...

    def update_nowait(self, key: str, interval: int, burst: int, *, count: bool) -> Outcome | None:
        """The decision when it needs no I/O (an in-process store), else None."""
        ...

    async def update(self, key: str, interval: int, burst: int, *, count: bool) -> Outcome:
        """The decision; StoreUnavailable when the store does not answer in time."""
        ...

    async def delete(self, key: str) -> None:
        """Forget `key` (its bucket is full again); StoreUnavailable as for `update`."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def describe_url(url: str) -> str:
    """`url` without user, password and query, safe for logs and errors."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def open_store(url: str = "memory://", *, timeout: float = DEFAULT_TIMEOUT) -> Store:
    """The store for `url` (see the module docstring); ValueError names what is wrong.

    `timeout` bounds every Redis operation (seconds, > 0).
    """
    if not isinstance(url, str):
        raise ValueError(f"limits store URL {url!r}: expected text")  # noqa: TRY004 - config
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme == "memory":
        if parts.netloc or parts.path not in ("", "/"):
            raise ValueError(f"limits store {describe_url(url)!r}: memory:// takes no host or path")
        options = parse_qs(parts.query, keep_blank_values=True)
        unknown = set(options) - {"max_keys"}
        if unknown:
            raise ValueError(
                f"limits store memory://: unknown options {', '.join(sorted(unknown))}"
            )
        raw = options.get("max_keys", [str(DEFAULT_MAX_KEYS)])[-1]
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 100_000_000:
            raise ValueError(f"limits store memory://: max_keys {raw!r} is not 1..100000000")
        return MemoryStore(max_keys=int(raw))
    if scheme in ("redis", "rediss", "unix"):
        # redis loads only when a Redis URL is configured (and redis_store imports this module).
        from authgate.limits.redis_store import RedisStore  # noqa: PLC0415

        return RedisStore(url.strip(), timeout=timeout)
    raise ValueError(
        f"limits store {describe_url(url)!r}: expected memory://, redis://, rediss:// or unix://"
    )
