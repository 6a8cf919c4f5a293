"""The Redis store: one key per limited thing, one atomic script per decision.

The script is `gcra.decide` in Lua: it reads the key's TAT, decides, and writes the new TAT with a
millisecond expiry at the moment the bucket is full again, so every key it writes expires on its
own and an idle key costs nothing. The time is Redis's own (`TIME`), so every process and machine
shares one clock and their own clocks' skew does not matter. Works on Redis 5 and later (a script
that calls `TIME` and then writes needs effects replication, the default from 5 on).

Every operation is bounded by `timeout` seconds as a whole (waiting for a pooled connection,
connecting, the round trip); redis-py's own retries are off, so a dead or hung Redis costs one
request at most `timeout` and then raises `StoreUnavailable`. A connection broken by a restart is
replaced on the next use, and a restarted Redis that lost its script cache gets the script again
(redis-py's `Script` reloads it on NOSCRIPT).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from authgate.limits.gcra import Outcome
from authgate.limits.stores import DEFAULT_TIMEOUT, StoreUnavailable, describe_url

__all__ = ["GCRA_SCRIPT", "RedisStore"]

# KEYS[1]: the key. ARGV: interval (us), burst, "1" to count or "0" to peek, now (us; "" for the
# server's TIME). Returns {allowed, remaining, retry_after_us, window_us, reset_after_us}.
# Numbers stay below 2^53 (Rate bounds a bucket to a year), so doubles hold them exactly;
# string.format("%d") writes them without an exponent.
GCRA_SCRIPT = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now
if ARGV[4] == "" then
  local t = redis.call("TIME")
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[4])
end
local tolerance = (burst - 1) * interval
local state = tonumber(redis.call("GET", KEYS[1])) or now
if state < now then
  state = now
end
local allowed = now >= state - tolerance
if allowed and ARGV[3] == "1" then
  state = state + interval
  local ttl = math.ceil((state - now) / 1000)
  redis.call("SET", KEYS[1], string.format("%d", state), "PX", string.format("%d", ttl))
end
local x = now + tolerance - state
if x >= 0 then
  return {allowed and 1 or 0, math.floor(x / interval) + 1, 0, interval - x % interval, state - now}
end
return {allowed and 1 or 0, 0, -x, -x, state - now}
"""

DEFAULT_MAX_CONNECTIONS = 32


class RedisStore:
    """GCRA state in Redis (see `stores.Store`).

    `timeout` bounds each operation (seconds); `max_connections` bounds the pool (a decision
    waits for a free connection within its timeout). `clock` (microseconds) replaces Redis's
    `TIME`, for tests that need a controlled clock.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        clock: Callable[[], int] | None = None,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"limits store timeout must be > 0 seconds, not {timeout!r}")
        self.description = describe_url(url)
        self.timeout = timeout
        self._clock = clock
        try:
            self._pool: BlockingConnectionPool = BlockingConnectionPool.from_url(
                url,
                max_connections=max_connections,
                timeout=timeout,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError:
            # redis-py's message may quote the URL, which may hold a password.
            raise ValueError(f"limits store {self.description!r}: not a valid Redis URL") from None
        self._client: Redis = Redis(connection_pool=self._pool)
        self._script = self._client.register_script(GCRA_SCRIPT)

    def update_nowait(self, key: str, interval: int, burst: int, *, count: bool) -> None:
        return None

    async def update(self, key: str, interval: int, burst: int, *, count: bool) -> Outcome:
        now = "" if self._clock is None else str(self._clock())
        reply = await self._run(
            self._script(keys=[key], args=[interval, burst, "1" if count else "0", now])
        )
        try:
            allowed, remaining, retry_after, window, reset_after = (int(v) for v in reply)
        except (TypeError, ValueError) as exc:
            raise StoreUnavailable(f"{self.description}: unexpected script reply") from exc
        return Outcome(allowed == 1, remaining, retry_after, window, reset_after)

    async def delete(self, key: str) -> None:
        await self._run(self._client.delete(key))

    async def _run(self, operation: Any) -> Any:
        try:
            async with asyncio.timeout(self.timeout):
                return await operation
        except TimeoutError as exc:
            raise StoreUnavailable(f"{self.description}: no answer within {self.timeout}s") from exc
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"{self.description}: {type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        await self._client.aclose()
        await self._pool.disconnect()
