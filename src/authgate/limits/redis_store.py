"""The Redis store: one key per limited thing, decided by one atomic script.

The script is `gcra.decide` in Lua: it reads a key's TAT, decides, and writes the new TAT with a
millisecond expiry at the moment the bucket is full again, so every key it writes expires on its
own and an idle key costs nothing. The time is Redis's own (`TIME`), so every process and machine
shares one clock and their own clocks' skew does not matter. Works on Redis 5 and later (a script
that calls `TIME` and then writes needs effects replication, the default from 5 on); not on Redis
Cluster (a batch's keys may live in different slots).

Decisions asked for in the same turn of the event loop go to Redis together, as one call of the
script over all their keys (at most `max_batch`): a busy process pays one round trip and one
command for many decisions instead of one each. The script is atomic as a whole, so each decision
in it is as well, and two decisions on one key are made in order. An idle process sends batches
of one.

Every call is bounded by `timeout` seconds as a whole (waiting for a pooled connection,
connecting, the round trip); redis-py's own retries are off, so a dead or hung Redis costs a
decision at most `timeout` and then raises `StoreUnavailable`. A connection broken by a restart is
replaced on the next use, and a restarted Redis that lost its script cache gets the script again
(redis-py's `Script` reloads it on NOSCRIPT).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from authgate.limits.gcra import Outcome
from authgate.limits.store import DEFAULT_TIMEOUT, StoreUnavailable, describe_url

__all__ = ["GCRA_SCRIPT", "RedisStore"]

# KEYS: the keys. ARGV[1]: now in microseconds ("" for the server's TIME); then for each key,
# interval (us), burst, and "1" to count or "0" to peek. Returns five numbers per key:
# allowed, remaining, retry_after_us, window_us, reset_after_us (see gcra.decide).
# Numbers stay below 2^53 (Rate bounds a bucket to a year), so doubles hold them exactly;
# string.format("%d") writes them without an exponent.
GCRA_SCRIPT = """
local now
if ARGV[1] == "" then
  local t = redis.call("TIME")
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
local out = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[3 * i - 1])
  local tolerance = (tonumber(ARGV[3 * i]) - 1) * interval
  local state = tonumber(redis.call("GET", KEYS[i])) or now
  if state < now then
    state = now
  end
  local allowed = now >= state - tolerance
  if allowed and ARGV[3 * i + 1] == "1" then
    state = state + interval
    local ttl = math.ceil((state - now) / 1000)
    redis.call("SET", KEYS[i], string.format("%d", state), "PX", string.format("%d", ttl))
  end
  local x = now + tolerance - state
  out[#out + 1] = allowed and 1 or 0
  if x >= 0 then
    out[#out + 1] = math.floor(x / interval) + 1
    out[#out + 1] = 0
    out[#out + 1] = interval - x % interval
  else
    out[#out + 1] = 0
    out[#out + 1] = -x
    out[#out + 1] = -x
  end
  out[#out + 1] = state - now
end
return out
"""

DEFAULT_MAX_CONNECTIONS = 32
DEFAULT_MAX_BATCH = 128

_Pending = tuple[str, int, int, bool, "asyncio.Future[Outcome]"]


class RedisStore:
    """GCRA state in Redis (see `stores.Store` and the module docstring).

    `timeout` bounds each call (seconds); `max_connections` bounds the pool (a call waits for a
    free connection within its timeout); `max_batch` bounds the keys of one call. `clock`
    (microseconds) replaces Redis's `TIME`, for tests that need a controlled clock.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_batch: int = DEFAULT_MAX_BATCH,
        clock: Callable[[], int] | None = None,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"limits store timeout must be > 0 seconds, not {timeout!r}")
        if max_batch < 1 or max_connections < 1:
            raise ValueError("limits store: max_batch and max_connections must be at least 1")
        self.description = describe_url(url)
        self.timeout = timeout
        self.max_batch = max_batch
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
        self._pending: list[_Pending] = []
        self._flushes: set[asyncio.Task[None]] = set()

    def update_nowait(self, key: str, interval: int, burst: int, *, count: bool) -> None:
        return None

    async def update(self, key: str, interval: int, burst: int, *, count: bool) -> Outcome:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        if not self._pending:
            # After the callbacks already queued: the decisions of this turn go together.
            loop.call_soon(self._flush_pending)
        self._pending.append((key, interval, burst, count, future))
        return await future

    def _flush_pending(self) -> None:
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), self.max_batch):
            task = asyncio.ensure_future(self._call(pending[start : start + self.max_batch]))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _call(self, batch: list[_Pending]) -> None:
        """One script call for `batch`; every future is settled, whatever happens."""
        try:
            outcomes = await self._decide(batch)
        except StoreUnavailable as exc:
            _fail(batch, exc)
        except asyncio.CancelledError:
            _fail(batch, StoreUnavailable(f"{self.description}: store closed"))
            raise
        except Exception as exc:  # noqa: BLE001 - no caller may be left waiting
            _fail(batch, StoreUnavailable(f"{self.description}: {type(exc).__name__}"))
        else:
            for entry, outcome in zip(batch, outcomes, strict=True):
                if not entry[4].done():
                    entry[4].set_result(outcome)

    async def _decide(self, batch: list[_Pending]) -> list[Outcome]:
        args: list[int | str] = ["" if self._clock is None else str(self._clock())]
        for _, interval, burst, count, _ in batch:
            args += (interval, burst, "1" if count else "0")
        reply = await self._run(self._script([entry[0] for entry in batch], args))
        try:
            values = [int(v) for v in reply]
        except (TypeError, ValueError) as exc:
            raise StoreUnavailable(f"{self.description}: unexpected script reply") from exc
        if len(values) != 5 * len(batch):
            raise StoreUnavailable(f"{self.description}: unexpected script reply")
        return [
            Outcome(values[i] == 1, values[i + 1], values[i + 2], values[i + 3], values[i + 4])
            for i in range(0, len(values), 5)
        ]

    async def delete(self, key: str) -> None:
        await self._run(self._client.delete(key))

    async def _run(self, operation: Awaitable[Any]) -> Any:
        try:
            async with asyncio.timeout(self.timeout):
                return await operation
        except TimeoutError as exc:
            raise StoreUnavailable(f"{self.description}: no answer within {self.timeout}s") from exc
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"{self.description}: {type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        for task in list(self._flushes):
            task.cancel()
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)
        await self._client.aclose()
        await self._pool.disconnect()


def _fail(batch: list[_Pending], exc: StoreUnavailable) -> None:
    for entry in batch:
        if not entry[4].done():
            # One exception object each: they are raised in different tasks.
            failure = StoreUnavailable(*exc.args)
            failure.__cause__ = exc.__cause__
            entry[4].set_exception(failure)
