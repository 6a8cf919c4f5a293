"""A private event loop on a daemon thread, for synchronous shells (WSGI, Flask) of the async core.

Why not a synchronous copy of the verifier: the JWKS cache, its single-flight fetches, the
background refresh and the introspection caches are state that must be shared by every request
and owned by one event loop. A sync twin would duplicate that logic, and two copies of security
code drift apart. So WSGI threads decide everything they can without I/O (`Gate.check_nowait`:
paths, routes, credentials, API keys, verified-token cache hits) and hop to this loop only when a
token must be fetched-and-verified or introspected.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread"]

T = TypeVar("T")


class LoopThread:
    """Runs coroutines on one event loop in a background thread, started on first use."""

    def __init__(self, name: str = "authgate-loop") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run `coro` on the loop and wait at most `timeout` seconds (`TimeoutError` after)."""
        future = asyncio.run_coroutine_threadsafe(coro, self._ensure_loop())
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no result within {timeout}s") from None

    def close(self) -> None:
        """Stop the loop and its thread (pending tasks are abandoned)."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()
