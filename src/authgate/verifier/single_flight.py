"""Single-flight: concurrent callers asking for the same key share one in-flight call.

Used for JWKS fetches (one per issuer at a time, whatever the number of waiting requests) and for
introspection (one request per token at a time). A waiter that is cancelled does not cancel the
shared call, and a failure is delivered to every waiter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["SingleFlight"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """At most one running call per key; everyone else awaits its result."""

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: dict[K, asyncio.Task[V]] = {}

    def in_flight(self, key: K) -> bool:
        return key in self._calls

    async def run(self, key: K, call: Callable[[], Awaitable[V]]) -> V:
        """Start `call()` unless a call for `key` is running; await the shared result."""
        task = self._calls.get(key)
        if task is None:
            task = asyncio.ensure_future(call())
            self._calls[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(task)

    def _finished(self, key: K, task: asyncio.Task[V]) -> None:
        if self._calls.get(key) is task:
            del self._calls[key]
        if not task.cancelled():
            task.exception()  # mark retrieved: waiters may all have been cancelled

    async def cancel_all(self) -> None:
        tasks = list(self._calls.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
