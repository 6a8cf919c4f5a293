"""In-process and cross-process locks the SQL stores need besides the database's own.

`FileLock` serialises refresh-token family updates on SQLite, whose only database lock is the
write lock of the whole file: holding it while the tokens of a refresh are issued (which writes
too, on another connection) would deadlock. An `flock` on a file beside the database serves every
process that opens the same database, as SQLite's WAL mode already requires (one host).
`LoopLocal` gives each event loop its own asyncio primitive, because those bind to the first loop
that waits on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import weakref
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Generic, TypeVar

__all__ = ["FileLock", "LoopLocal"]

_T = TypeVar("_T")
_POLL_START = 0.001
_POLL_MAX = 0.02


class LoopLocal(Generic[_T]):
    """One instance of `factory()` per running event loop."""

    def __init__(self, factory: Callable[[], _T]) -> None:
        self._factory = factory
        self._values: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _T] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> _T:
        """The instance of the running loop (created on first use)."""
        loop = asyncio.get_running_loop()
        value = self._values.get(loop)
        if value is None:
            value = self._values[loop] = self._factory()
        return value


class FileLock:
    """Mutual exclusion across coroutines and processes: an asyncio lock, then `flock` on `path`
    (None: this process only, as for an in-memory database). `timeout` (seconds, None: none)
    bounds the wait for both; past it `hold` raises `TimeoutError`."""

    def __init__(self, path: Path | None, timeout: float | None = None) -> None:
        self._path = path
        self._timeout = timeout
        self._fd: int | None = None
        self._local: LoopLocal[asyncio.Lock] = LoopLocal(asyncio.Lock)

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Hold the lock for the block. Waiting polls with a short backoff, so a cancelled or
        timed-out waiter leaves nothing behind."""
        loop = asyncio.get_running_loop()
        deadline = None if self._timeout is None else loop.time() + self._timeout
        local = self._local.get()
        async with asyncio.timeout_at(deadline):
            await local.acquire()
        try:
            fd = self._open()
            if fd is None:
                yield
                return
            delay = _POLL_START
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if deadline is not None and loop.time() >= deadline:
                        raise TimeoutError("the database lock file stayed locked") from None
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _POLL_MAX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            local.release()

    def _open(self) -> int | None:
        if self._path is None:
            return None
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._fd

    def close(self) -> None:
        """Close the lock file (the lock must not be held)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
