"""`ThrottleStore` in Redis: the sign-in and user-code throttles' counters (contract in
`storage.protocols`, policy in `flows.throttle`) shared by every server process and machine that
uses the same Redis, chosen by `[limits] redis_url` (without it they stay in the database).

Each update is optimistic (WATCH, read, apply the change, MULTI/SET/EXEC, again on a conflict), so
concurrent attempts on one key are counted one after the other as with `SELECT … FOR UPDATE`.
Every key is written with an expiry of `ttl` seconds (the longest `forget_after` of the policies),
so a counter is gone once the throttle would forget it and hostile keys cannot pile up. Keys are
`<namespace>:rl:throttle:<digest>` (`authgate.limits.keys.store_key`): the same short length for
any username or address, and what people typed never appears in Redis.

Every update is bounded as a whole by `timeout`. When Redis does not answer, the throttle answers
by `on_store_failure`, as the limiter does (one warning when the outage starts, one line when it
ends, no request waits on Redis for `retry_interval` seconds in between; `metrics`):

- `FailMode.CLOSED` (the default): the attempt is refused (`ThrottleUnavailable`), so the password
  or code is not checked uncounted;
- `FailMode.OPEN`: the attempt goes on, not counted.

A key so contended that its update cannot finish within the timeout while Redis answers is not an
outage: the attempt is refused for a second (many concurrent guesses at one key are what the
throttle exists to slow), whatever the failure mode.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError, WatchError

from authgate.limits import FailMode, LimiterMetrics, StoreUnavailable
from authgate.limits.keys import check_namespace, store_key
from authgate.limits.redis_store import bounded_pool
from authgate.limits.stores import DEFAULT_TIMEOUT, describe_url
from authgate.server.models import ThrottleState
from authgate.server.storage.protocols import ThrottleUnavailable

__all__ = ["CONTENDED_WAIT", "THROTTLE_LIMIT", "RedisThrottleStore"]

logger = logging.getLogger("authgate.limits")

# The name of the throttle's keys and of its metric labels.
THROTTLE_LIMIT = "throttle"
# Seconds a refused attempt on a contended key waits.
CONTENDED_WAIT = 1

_T = TypeVar("_T")

Change = Callable[[ThrottleState | None], tuple[int | None, ThrottleState | None]]


def _encode(state: ThrottleState) -> str:
    return f"{state.failures}:{state.last_failure}:{state.blocked_until}"


def _decode(raw: bytes | str | None) -> ThrottleState | None:
    if raw is None:
        return None
    try:
        text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
        failures, last_failure, blocked_until = (int(v) for v in text.split(":"))
    except ValueError:
        raise StoreUnavailable("unexpected throttle value in Redis") from None
    return ThrottleState(failures, last_failure, blocked_until)


class RedisThrottleStore:
    """Throttle counters in Redis (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        ttl: int,
        namespace: str = "authgate",
        timeout: float = DEFAULT_TIMEOUT,
        on_store_failure: FailMode = FailMode.CLOSED,
        retry_interval: float = 1.0,
        max_connections: int = 16,
        metrics: LimiterMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not timeout > 0 or not retry_interval > 0 or ttl < 1:
            raise ValueError("throttle store: timeout, retry_interval and ttl must be positive")
        self.description = describe_url(url)
        self.ttl = ttl
        self.namespace = check_namespace(namespace)
        self.timeout = timeout
        self.on_store_failure = on_store_failure
        self.retry_interval = retry_interval
        self.metrics = metrics if metrics is not None else LimiterMetrics()
        self._clock = clock
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._pool = bounded_pool(url, timeout=timeout, max_connections=max_connections)
        self._client: Redis = Redis(connection_pool=self._pool)

    def key(self, key: str) -> str:
        """The Redis key of throttle key `key`."""
        return store_key(self.namespace, THROTTLE_LIMIT, (key,))

    async def update_throttle(self, key: str, change: Change) -> int | None:
        if self._quiet():
            return self._without_store()
        conflicts = [0]
        try:
            result = await self._bounded(self._update(self.key(key), change, conflicts))
        except StoreUnavailable as exc:
            if conflicts[0] and isinstance(exc.__cause__, TimeoutError):
                self._answered()  # Redis answers; the key is contended
                return CONTENDED_WAIT
            self._failed(exc)
            return self._without_store()
        self._answered()
        return result

    async def clear_throttle(self, key: str) -> None:
        # Called after a success: an outage then leaves the count as it is (erring towards waiting).
        if self._quiet():
            return
        try:
            await self._bounded(self._client.delete(self.key(key)))
        except StoreUnavailable as exc:
            self._failed(exc)
            return
        self._answered()

    async def aclose(self) -> None:
        await self._client.aclose()
        await self._pool.disconnect()

    async def _update(self, key: str, change: Change, conflicts: list[int]) -> int | None:
        async with self._client.pipeline(transaction=True) as pipe:
            while True:
                await pipe.watch(key)
                state = _decode(await pipe.get(key))
                result, new = change(state)
                pipe.multi()  # type: ignore[no-untyped-call]
                if new is None:
                    pipe.delete(key)
                else:
                    pipe.set(key, _encode(new), ex=self.ttl)
                try:
                    await pipe.execute()
                except WatchError:
                    conflicts[0] += 1  # another attempt changed the key meanwhile: again
                    continue
                return result

    async def _bounded(self, operation: Awaitable[_T]) -> _T:
        """`operation` within the timeout; StoreUnavailable when it fails or takes longer."""
        try:
            async with asyncio.timeout(self.timeout):
                return await operation
        except TimeoutError as exc:
            raise StoreUnavailable(f"{self.description}: no answer within {self.timeout}s") from exc
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"{self.description}: {type(exc).__name__}: {exc}") from exc

    def _quiet(self) -> bool:
        """During an outage, until the next try: no request waits on Redis."""
        return self._down_since is not None and self._clock() < self._retry_at

    def _without_store(self) -> int | None:
        if self.on_store_failure is FailMode.OPEN:
            self.metrics.decisions[(THROTTLE_LIMIT, "fail_open")] += 1
            return None
        self.metrics.decisions[(THROTTLE_LIMIT, "fail_closed")] += 1
        raise ThrottleUnavailable(max(1, round(self._retry_at - self._clock() + 0.5)))

    def _failed(self, exc: StoreUnavailable) -> None:
        now = self._clock()
        self.metrics.store_errors += 1
        self._retry_at = now + self.retry_interval
        if self._down_since is None:
            self._down_since = now
            self.metrics.outages += 1
            self.metrics.store_up = False
            logger.warning(
                "throttle store unavailable (%s); sign-in and user-code attempts are now %s "
                "until it answers again",
                exc,
                "let through uncounted"
                if self.on_store_failure is FailMode.OPEN
                else "refused with 503",
            )

    def _answered(self) -> None:
        if self._down_since is None:
            return
        down_for = self._clock() - self._down_since
        self._down_since = None
        self.metrics.store_up = True
        logger.warning("throttle store %s answers again after %.1fs", self.description, down_for)
