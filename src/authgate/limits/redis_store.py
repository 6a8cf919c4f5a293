"""The Redis store: one key per limited thing, decided by one atomic script.

The script is `gcra.decide` in Lua (and the two operations of `lockouts`, each over a few keys):
it reads a key's TAT, decides, and writes the new TAT with a
millisecond expiry at the moment the bucket is full again, so every key it writes expires on its
own and an idle key costs nothing. The time is Redis's own (`TIME`), so every process and machine
shares one clock and their own clocks' skew does not matter. Works on Redis 5 and later (a script
that calls `TIME` and then writes needs effects replication, the default from 5 on); not on Redis
Cluster (a batch's keys may live in different slots).

Decisions go to Redis in batches, as one call of the script over all their operations (at most
`max_batch`), on one connection of their own with one call in flight at a time: the decisions
asked for while a call is out (and those of one turn of the event loop) go together in the next.
So a busy process pays one round trip and one command for many decisions instead of one each, and
the busier it is, the larger its batches; an idle process sends batches of one, at once. The script
is atomic as a whole, so each decision in it is as well, and two decisions on one key are made in
order. The connection is made by redis-py (`Connection`, from the URL: TLS, AUTH, database); then
its transport is read by a protocol of this module, which parses replies with hiredis as they
arrive and settles the decisions' futures at once: no stream reader, no task per call, one turn
of the event loop from the reply to the waiting request (a decision costs a fraction of a
client command).

No decision waits more than `timeout` seconds for its answer, queueing behind a call in flight
included: a batch's deadline is its oldest decision's arrival plus `timeout` (connecting and the
round trip count against it); redis-py's own retries are off, so a dead or hung Redis costs a
decision at most `timeout` and then raises `StoreUnavailable`, and a failed call fails the
decisions queued behind it at once. A connection that failed (or that Redis closed) is dropped
and a new one is made on the next call, so a restarted Redis is used again; one that lost its
script cache gets the script again (on NOSCRIPT). `delete` (rare) and `claim_once` (`SET NX PX`,
atomic) go through a small pool.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import hiredis
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from authgate.limits.gcra import Outcome
from authgate.limits.lockouts import LockKeys
from authgate.limits.store import DEFAULT_TIMEOUT, StoreUnavailable, describe_url

__all__ = ["GCRA_SCRIPT", "RedisStore", "bounded_pool"]

# KEYS: the keys, op after op. ARGV[1]: now in microseconds ("" for the server's TIME); then the
# ops, each a letter and its numbers:
# - "g" interval burst count ("1" to count, "0" to peek), one key: five numbers, allowed,
#   remaining, retry_after_us, window_us, reset_after_us (see gcra.decide);
# - "a" locks hits clear, then interval burst per hit; keys: the locks, the hits, the key to clear
#   (when clear is 1): the locks' waits, then five numbers per hit (zeros when a lock holds:
#   nothing is counted or cleared then); see `lockouts.apply_admit`;
# - "f" count, then failures' interval burst, strikes' interval burst, first, longest (us) per
#   lockout; keys: failures, strikes, lock per lockout: two numbers per lockout, what was done
#   and the wait; see `lockouts.apply_fail`.
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
local function get(key)
  local state = tonumber(redis.call("GET", key)) or now
  if state < now then
    state = now
  end
  return state
end
local function put(key, state)
  local ttl = math.ceil((state - now) / 1000)
  redis.call("SET", key, string.format("%d", state), "PX", string.format("%d", ttl))
end
local function decide(key, interval, burst, count)
  local tolerance = (burst - 1) * interval
  local state = get(key)
  local allowed = now >= state - tolerance
  if allowed and count then
    state = state + interval
    put(key, state)
  end
  local x = now + tolerance - state
  local remaining, retry, window = 0, -x, -x
  if x >= 0 then
    remaining, retry, window = math.floor(x / interval) + 1, 0, interval - x % interval
  end
  return allowed, remaining, retry, window, state - now
end
local function push(allowed, remaining, retry, window, reset)
  out[#out + 1] = allowed and 1 or 0
  out[#out + 1] = remaining
  out[#out + 1] = retry
  out[#out + 1] = window
  out[#out + 1] = reset
end
local k, a = 1, 2
while a <= #ARGV do
  local op = ARGV[a]
  if op == "g" then
    push(decide(KEYS[k], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), ARGV[a + 3] == "1"))
    k, a = k + 1, a + 4
  elseif op == "a" then
    local nl, nh, nc = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
    a = a + 4
    local locked = false
    for i = 0, nl - 1 do
      local wait = get(KEYS[k + i]) - now
      out[#out + 1] = wait
      if wait > 0 then
        locked = true
      end
    end
    k = k + nl
    for i = 0, nh - 1 do
      if locked then
        push(false, 0, 0, 0, 0)
      else
        push(decide(KEYS[k + i], tonumber(ARGV[a + 2 * i]), tonumber(ARGV[a + 2 * i + 1]), true))
      end
    end
    k, a = k + nh, a + 2 * nh
    if nc == 1 then
      if not locked then
        redis.call("DEL", KEYS[k])  -- a missing key (no failures) is no write
      end
      k = k + 1
    end
  elseif op == "f" then
    local n = tonumber(ARGV[a + 1])
    a = a + 2
    local waits, locked = {}, false
    for i = 0, n - 1 do
      waits[i + 1] = get(KEYS[k + 3 * i + 2]) - now
      if waits[i + 1] > 0 then
        locked = true
      end
    end
    for i = 0, n - 1 do
      local fk, sk, lk = KEYS[k + 3 * i], KEYS[k + 3 * i + 1], KEYS[k + 3 * i + 2]
      local j = a + 6 * i
      local fi, fb = tonumber(ARGV[j]), tonumber(ARGV[j + 1])
      local si, sb = tonumber(ARGV[j + 2]), tonumber(ARGV[j + 3])
      if locked then
        if waits[i + 1] > 0 then
          decide(fk, fi, fb, true)
          out[#out + 1] = 2
          out[#out + 1] = waits[i + 1]
        else
          out[#out + 1] = 3
          out[#out + 1] = 0
        end
      else
        local _, remembered = decide(sk, si, sb, false)
        local counted = false
        if remembered >= sb then
          counted = decide(fk, fi, fb, true)
        end
        if counted then
          out[#out + 1] = 0
          out[#out + 1] = 0
        else
          local allowed, left = decide(sk, si, sb, true)
          local strikes = sb - 1
          if allowed then
            strikes = sb - 1 - left
          end
          local length = math.min(tonumber(ARGV[j + 4]) * 2 ^ strikes, tonumber(ARGV[j + 5]))
          decide(lk, length, 1, true)
          out[#out + 1] = 1
          out[#out + 1] = length
        end
      end
    end
    k, a = k + 3 * n, a + 6 * n
  else
    return redis.error_reply("unknown op")
  end
end
return out
"""

DEFAULT_MAX_CONNECTIONS = 32
DEFAULT_MAX_BATCH = 128
_SCRIPT_SHA = hashlib.sha1(GCRA_SCRIPT.encode(), usedforsecurity=False).hexdigest().encode()
# hiredis's stub declares a one-element tuple; any number of arguments is packed.
_LOAD_SCRIPT = hiredis.pack_command((b"SCRIPT", b"LOAD", GCRA_SCRIPT.encode()))  # type: ignore[arg-type]

# One op of a call: its keys, its arguments (`GCRA_SCRIPT`), how many numbers it answers and what
# makes its answer of them, the caller's future, when it was asked (loop time).
_Pending = tuple[
    list[bytes], list[bytes], int, Callable[[list[int]], Any], "asyncio.Future[Any]", float
]


def _outcome(values: list[int]) -> Outcome:
    return Outcome(values[0] == 1, values[1], values[2], values[3], values[4])


def _outcomes(values: list[int], start: int) -> list[Outcome]:
    return [
        Outcome(values[i] == 1, values[i + 1], values[i + 2], values[i + 3], values[i + 4])
        for i in range(start, len(values), 5)
    ]


def _pairs(values: list[int]) -> list[tuple[int, int]]:
    return [(values[i], values[i + 1]) for i in range(0, len(values), 2)]


def bounded_pool(url: str, *, timeout: float, max_connections: int) -> BlockingConnectionPool:
    """A connection pool for `url` whose every wait (a free connection, connecting, a reply) ends
    after `timeout` seconds, with redis-py's own retries off: a dead Redis costs one bounded wait.
    ValueError (naming the URL without its password) for a URL redis-py does not take."""
    try:
        return BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
    except ValueError:
        # redis-py's message may quote the URL, which may hold a password.
        raise ValueError(f"limits store {describe_url(url)!r}: not a valid Redis URL") from None


class RedisStore:
    """GCRA state in Redis (see `stores.Store` and the module docstring).

    `timeout` bounds each decision's wait (seconds); `max_batch` bounds the operations of one call;
    `max_connections` bounds the pool that `delete` uses. `clock` (microseconds) replaces Redis's
    `TIME`, for tests that need a controlled clock.
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
        self._pool = bounded_pool(url, timeout=timeout, max_connections=max_connections)
        self._client: Redis = Redis(connection_pool=self._pool)
        # The decisions' own connection: its socket waits are bounded by the batch deadline
        # (`asyncio.timeout_at`), not per read (redis-py would wrap each send in `wait_for`).
        self._connection_kwargs = {**self._pool.connection_kwargs, "socket_timeout": None}
        self._connection: _Replies | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._pending: list[_Pending] = []
        self._scheduled = False  # a flush is queued on the loop
        self._in_flight: list[_Pending] | None = None  # the call out, one at a time
        self._timer: asyncio.TimerHandle | None = None  # its deadline
        self._command = b""  # its packed command (sent again after NOSCRIPT)
        self._expect = _CALL  # what the next reply is

    def update_nowait(self, key: str, interval: int, burst: int, *, count: bool) -> None:
        return None

    async def update(self, key: str, interval: int, burst: int, *, count: bool) -> Outcome:
        args = [b"g", b"%d" % interval, b"%d" % burst, b"1" if count else b"0"]
        outcome: Outcome = await self._ask([key.encode()], args, 5, _outcome)
        return outcome

    def admit_nowait(
        self, locks: Sequence[str], hits: Sequence[tuple[str, int, int]], clear: str | None
    ) -> None:
        return None

    async def admit(
        self, locks: Sequence[str], hits: Sequence[tuple[str, int, int]], clear: str | None
    ) -> tuple[Sequence[int], list[Outcome]]:
        keys = [k.encode() for k in locks]
        keys += [h[0].encode() for h in hits]
        args = [b"a", b"%d" % len(locks), b"%d" % len(hits), b"0" if clear is None else b"1"]
        for _, interval, burst in hits:
            args += (b"%d" % interval, b"%d" % burst)
        if clear is not None:
            keys.append(clear.encode())
        n = len(locks)

        def parse(values: list[int]) -> tuple[Sequence[int], list[Outcome]]:
            waits = values[:n]
            return (waits, []) if any(waits) else ((), _outcomes(values, n))

        answer: tuple[Sequence[int], list[Outcome]] = await self._ask(
            keys, args, n + 5 * len(hits), parse
        )
        return answer

    def fail_nowait(self, lockouts: Sequence[LockKeys]) -> None:
        return None

    async def fail(self, lockouts: Sequence[LockKeys]) -> list[tuple[int, int]]:
        keys: list[bytes] = []
        args = [b"f", b"%d" % len(lockouts)]
        for spec in lockouts:
            keys += (spec[0].encode(), spec[1].encode(), spec[2].encode())
            args += (b"%d" % n for n in spec[3:])
        answer: list[tuple[int, int]] = await self._ask(keys, args, 2 * len(lockouts), _pairs)
        return answer

    async def _ask(
        self,
        keys: list[bytes],
        args: list[bytes],
        answers: int,
        parse: Callable[[list[int]], Any],
    ) -> Any:
        """Queue one op for the next call and wait for its answer."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((keys, args, answers, parse, future, loop.time()))
        if not self._scheduled and self._in_flight is None:
            # After the callbacks already queued: the decisions of this turn go together.
            self._scheduled = True
            loop.call_soon(self._flush_pending)
        return await future

    def _flush_pending(self) -> None:
        """Send the next batch when no call is out (a call that ends sends the next itself)."""
        self._scheduled = False
        if self._in_flight is not None or not self._pending:
            return
        batch = self._pending[: self.max_batch]
        del self._pending[: self.max_batch]
        self._in_flight = batch
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(batch[0][5] + self.timeout, self._timed_out, batch)
        if self._connection is None:
            self._connecting = loop.create_task(self._connect(batch))
            return
        self._send(batch)

    async def _connect(self, batch: list[_Pending]) -> None:
        """Connect (redis-py does the handshake: TLS, AUTH, SELECT), take the connection's
        transport over, then send `batch` unless it ended meanwhile."""
        connection = self._pool.connection_class(**self._connection_kwargs)
        try:
            await connection.connect()  # type: ignore[no-untyped-call]
            replies = _Replies(self, connection)
        except asyncio.CancelledError:
            await connection.disconnect(nowait=True)
            raise
        except Exception as exc:  # noqa: BLE001 - no caller may be left waiting
            await connection.disconnect(nowait=True)
            self._connecting = None
            if self._in_flight is batch:
                failure = exc if isinstance(exc, StoreUnavailable) else None
                self._call_failed(failure or _unavailable(self.description, exc))
            return
        self._connecting = None
        self._connection = replies
        if self._in_flight is batch:
            self._send(batch)
        else:  # the batch timed out while connecting: send what waits now
            self._flush_pending()

    def _send(self, batch: list[_Pending]) -> None:
        # Packed by hiredis from bytes: redis-py's packer encodes argument by argument in Python,
        # which costs more than the rest of a batch.
        keys: list[bytes] = []
        for entry in batch:
            keys += entry[0]
        args: list[bytes] = [b"EVALSHA", _SCRIPT_SHA, b"%d" % len(keys), *keys]
        args.append(b"" if self._clock is None else b"%d" % self._clock())
        for entry in batch:
            args += entry[1]
        command = hiredis.pack_command(tuple(args))  # type: ignore[arg-type]
        self._command = command
        self._expect = _CALL
        connection = self._connection
        if connection is None:  # pragma: no cover - `_flush_pending` connects first
            raise RuntimeError("no connection to send on")
        connection.transport.write(command)

    def _replied(self, connection: _Replies, reply: Any) -> None:
        """One reply on the decisions' connection: the call in flight ends (or, after NOSCRIPT,
        the script is loaded and the call sent again)."""
        if connection is not self._connection:  # pragma: no cover - a dropped connection's
            return
        batch = self._in_flight
        if batch is None:  # a reply nothing asked for: the connection is out of step
            self._drop_connection()
            return
        expect = self._expect
        if expect == _LOAD:  # the SCRIPT LOAD of a retry; the call's reply follows
            if isinstance(reply, Exception):
                self._call_failed(_unavailable(self.description, reply))
            else:
                self._expect = _RETRY
            return
        if isinstance(reply, hiredis.ReplyError):
            if expect == _CALL and str(reply).startswith("NOSCRIPT"):
                # A Redis that restarted (or flushed its scripts) since the last call.
                self._expect = _LOAD
                connection.transport.write(_LOAD_SCRIPT + self._command)
                return
            self._call_failed(_unavailable(self.description, reply))
            return
        try:
            answers = _answers(batch, reply)
        except Exception:  # noqa: BLE001 - no caller may be left waiting
            self._call_failed(StoreUnavailable(f"{self.description}: unexpected script reply"))
            return
        self._end_call()
        for entry, answer in zip(batch, answers, strict=True):
            if not entry[4].done():
                entry[4].set_result(answer)
        self._flush_pending()  # what queued behind this call goes now

    def _end_call(self) -> None:
        self._in_flight = None
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _timed_out(self, batch: list[_Pending]) -> None:
        if self._in_flight is batch:
            self._call_failed(StoreUnavailable(f"{self.description}: no answer in time"))

    def _lost(self, connection: _Replies, exc: Exception | None) -> None:
        """The decisions' connection closed (by Redis, or broken)."""
        if connection is not self._connection:
            return
        self._connection = None
        connection.close()
        if self._in_flight is not None:
            reason = exc if exc is not None else ConnectionError("connection closed by the server")
            self._call_failed(_unavailable(self.description, reason))

    def _call_failed(self, exc: StoreUnavailable) -> None:
        """Fail the call in flight and the decisions queued behind it (they would wait on the
        same store), and drop the connection, whose state is unknown."""
        batch = self._in_flight or []
        self._end_call()
        connecting, self._connecting = self._connecting, None
        if connecting is not None:
            connecting.cancel()
        self._drop_connection()
        queued, self._pending = self._pending, []
        _fail(batch + queued, exc)

    def _drop_connection(self) -> None:
        """Close a connection whose state is unknown (a read cut short, a dead server); the next
        call makes a new one."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    async def delete(self, key: str) -> None:
        await self._run(self._client.delete(key))

    async def claim_once(self, key: str, ttl: float) -> bool:
        if not ttl > 0:
            raise ValueError("ttl must be > 0 seconds")
        # One atomic command: the first SET wins in every process; the key expires on its own.
        done = await self._run(self._client.set(key, b"1", nx=True, px=max(1, int(ttl * 1000))))
        return bool(done)

    async def _run(self, operation: Awaitable[Any]) -> Any:
        try:
            async with asyncio.timeout(self.timeout):
                return await operation
        except TimeoutError as exc:
            raise StoreUnavailable(f"{self.description}: no answer within {self.timeout}s") from exc
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"{self.description}: {type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        connecting, self._connecting = self._connecting, None
        if connecting is not None:
            connecting.cancel()
            await asyncio.gather(connecting, return_exceptions=True)
        batch = self._in_flight or []
        self._end_call()
        _fail(batch + self._pending, StoreUnavailable(f"{self.description}: store closed"))
        self._pending = []
        self._drop_connection()
        await self._client.aclose()
        await self._pool.disconnect()


class _Replies(asyncio.Protocol):
    """The decisions' connection once connected: replies parsed by hiredis as they arrive and
    handed to the store, without a stream reader or a task between the socket and the futures."""

    def __init__(self, store: RedisStore, connection: AbstractConnection) -> None:
        # redis-py made the connection (TLS, AUTH, SELECT from the URL); its stream writer holds
        # the transport, which this protocol takes over. Both stay referenced: a stream writer
        # collected may close its transport. (`_writer` is redis-py's, since 4.2.)
        writer = getattr(connection, "_writer", None)
        transport = getattr(writer, "transport", None)
        # uvloop's transports are not asyncio.Transport subclasses: what is used is checked.
        if not all(hasattr(transport, name) for name in ("set_protocol", "write", "abort")):
            raise StoreUnavailable(  # pragma: no cover - redis-py's
                f"{store.description}: unsupported redis-py connection"
            )
        transport = cast(asyncio.Transport, transport)
        self.store = store
        self.connection = connection
        self.writer = writer
        self.transport = transport
        self.reader = hiredis.Reader()
        transport.set_protocol(self)

    def close(self) -> None:
        """Drop the connection at once (what was sent and not answered is forgotten)."""
        self.transport.abort()
        # redis-py's state: closed too (no "unclosed Connection" warning when collected).
        self.connection._close()  # type: ignore[no-untyped-call]

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        try:
            reader.feed(data)
            while (reply := reader.gets()) is not False:
                self.store._replied(self, reply)
        except hiredis.ProtocolError as exc:
            self.store._lost(self, exc)
            self.transport.abort()

    def eof_received(self) -> bool:
        self.store._lost(self, None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.store._lost(self, exc)


# What the next reply on the decisions' connection answers: the call; after NOSCRIPT, the
# SCRIPT LOAD, then the call sent again (a second NOSCRIPT then fails it).
_CALL, _LOAD, _RETRY = 0, 1, 2


def _answers(batch: list[_Pending], reply: Any) -> list[Any]:
    """Each op's answer from the script's reply to `batch`; ValueError when it does not fit."""
    values = [int(v) for v in reply]
    if len(values) != sum(entry[2] for entry in batch):
        raise ValueError("unexpected script reply")
    answers = []
    start = 0
    for entry in batch:
        end = start + entry[2]
        answers.append(entry[3](values[start:end]))
        start = end
    return answers


def _unavailable(description: str, exc: BaseException) -> StoreUnavailable:
    failure = StoreUnavailable(f"{description}: {type(exc).__name__}: {exc}")
    failure.__cause__ = exc
    return failure


def _fail(batch: list[_Pending], exc: StoreUnavailable) -> None:
    for entry in batch:
        if not entry[4].done():
            # One exception object each: they are raised in different tasks.
            failure = StoreUnavailable(*exc.args)
            failure.__cause__ = exc.__cause__
            entry[4].set_exception(failure)
