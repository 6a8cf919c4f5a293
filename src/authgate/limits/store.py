"""The store role: what the limiter asks of the place where limit state lives, and its failure.

`stores.open_store` picks an implementation by URL (`memory.MemoryStore`, `redis_store.RedisStore`);
both implement `Store` and raise `StoreUnavailable` when they cannot answer in time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from urllib.parse import urlsplit

from authgate.limits.gcra import Outcome
from authgate.limits.lockouts import LockKeys

__all__ = ["DEFAULT_TIMEOUT", "Store", "StoreUnavailable", "describe_url"]

# Seconds one decision may wait for Redis (connect, pool, round trip) before the limit's failure
# mode answers: long enough for a loaded Redis on the same network, short enough that a dead one
# costs a request little.
DEFAULT_TIMEOUT = 0.1


class StoreUnavailable(Exception):
    """The store could not answer in time (down, hung, refused the command)."""


class Store(Protocol):
    """A GCRA state per key (see `gcra.decide` for the arguments and the answer), and keys used
    once (`claim_once`)."""

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

    def admit_nowait(
        self, locks: Sequence[str], hits: Sequence[tuple[str, int, int]], clear: str | None
    ) -> tuple[Sequence[int], list[Outcome]] | None:
        """`admit` when it needs no I/O, else None."""
        ...

    async def admit(
        self, locks: Sequence[str], hits: Sequence[tuple[str, int, int]], clear: str | None
    ) -> tuple[Sequence[int], list[Outcome]]:
        """In one atomic step: when a lockout of `locks` holds, the wait of each (microseconds,
        0 when not locked out) and no outcomes; else no waits, the outcomes of counting `hits`
        (key, interval, burst), and `clear` forgotten if it holds anything
        (`lockouts.apply_admit`)."""
        ...

    def fail_nowait(self, lockouts: Sequence[LockKeys]) -> list[tuple[int, int]] | None:
        """`fail` when it needs no I/O, else None."""
        ...

    async def fail(self, lockouts: Sequence[LockKeys]) -> list[tuple[int, int]]:
        """In one atomic step: one failure counted against `lockouts`; per lockout what was done
        (`lockouts.FAIL_*`) and its wait in microseconds (`lockouts.apply_fail`)."""
        ...

    async def delete(self, key: str) -> None:
        """Forget `key` (its bucket is full again); StoreUnavailable as for `update`."""
        ...

    async def claim_once(self, key: str, ttl: float) -> bool:
        """Record `key` for `ttl` seconds (> 0): True the first time, False while it is recorded,
        in every process that shares the store (single use, e.g. a DPoP proof's `jti`).
        StoreUnavailable as for `update`."""
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
