"""Keep-alive connections to one upstream origin, speaking HTTP/1.1 (RFC 9112 §9.3).

An `UpstreamConnection` parses responses with httptools and hands every event to the exchange that
currently owns it; between exchanges it waits in its pool's idle list. A connection is reused only
when the previous response was complete and both sides allowed persistence; one that sees EOF or
data while idle is discarded. Idle connections expire after `idle_timeout` (keep it below the
upstream's own keep-alive timeout).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass
from typing import Protocol, cast

import httptools

__all__ = ["Origin", "ResponseSink", "UpstreamConnection", "UpstreamError", "UpstreamPool"]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an upstream listens: scheme, host, port (and the `Host` value it expects)."""

    scheme: str
    host: str
    port: int

    @property
    def authority(self) -> bytes:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (host if self.port == default else f"{host}:{self.port}").encode("ascii")


class UpstreamError(Exception):
    """The upstream could not be reached (502) or did not answer in time (504)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ResponseSink(Protocol):
    """The exchange that owns a connection receives the response through these calls."""

    def response_head(self, status: int, headers: list[tuple[bytes, bytes]]) -> None: ...

    def response_body(self, chunk: bytes) -> None: ...

    def response_complete(self) -> None: ...

    def response_upgraded(self, rest: bytes) -> None: ...

    def flush(self) -> None: ...

    def upstream_lost(self, error: UpstreamError) -> None: ...

    def upstream_write_paused(self, paused: bool) -> None: ...


class UpstreamConnection(asyncio.Protocol):
    """One TCP (or TLS) connection to the upstream."""

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.sink: ResponseSink | None = None
        self.deadline = 0.0
        self.reused = False
        self.received_any = False
        self.keep_alive = True
        self.head_request = False
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._headers: list[tuple[bytes, bytes]] = []
        self._tunnel = False
        self._informational = False
        self._paused_deadline = 0.0
        self._loop = asyncio.get_running_loop()
        # A response completed in the middle of a read is returned to the pool only after the
        # read: bytes after it would be an answer nobody asked for (see `data_received`).
        self.feeding = False
        self.release_after_feed = False
        self._unsolicited = False

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, hence the cast.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        sink, self.sink = self.sink, None
        if sink is not None:
            sink.upstream_lost(UpstreamError(502, "upstream closed the connection"))

    def data_received(self, data: bytes) -> None:
        sink = self.sink
        if sink is None:
            self.close()  # unsolicited bytes on an idle connection: it is out of sync
            return
        if self._tunnel:
            sink.response_upgraded(data)
            return
        self.received_any = True
        self.deadline = self._loop.time() + self.pool.read_timeout
        self.feeding = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._tunnel = True
            if self.sink is not None:
                self.sink.response_upgraded(data[upgrade.args[0] :])
        except httptools.HttpParserError:
            self.keep_alive = False
            self.close()
        else:
            if self.sink is not None:
                self.sink.flush()
        finally:
            self.feeding = False
        if self.release_after_feed:
            # More responses than requests means the upstream read a request differently from
            # us (a desync): reused, the connection would hand the surplus answer to the next
            # request, possibly another client's (response queue poisoning).
            self.release_after_feed = False
            if self._unsolicited:
                self.abort()
            else:
                self.pool.release(self)

    def pause_writing(self) -> None:
        if self.sink is not None:
            self.sink.upstream_write_paused(True)

    def resume_writing(self) -> None:
        if self.sink is not None:
            self.sink.upstream_write_paused(False)

    # -- httptools callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.sink is None:
            self._unsolicited = True

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        headers, self._headers = self._headers, []
        status = self._parser.get_status_code()
        self._informational = status < 200 and status != 101
        if status >= 200 and status != 101 and not self._parser.should_keep_alive():
            self.keep_alive = False
        if self.sink is not None:
            self.sink.response_head(status, headers)
        if self.head_request and status >= 200:
            # httptools cannot be told that a response answers HEAD: it would wait for the body
            # announced by Content-Length. The message ends here; a fresh parser takes the next.
            self._parser = httptools.HttpResponseParser(self)
            self._finish()

    def on_body(self, body: bytes) -> None:
        if self.sink is not None:
            self.sink.response_body(body)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False  # a 1xx ends; the final response follows on this parser
        elif self._parser.get_status_code() == 101:
            pass  # switching protocols: the connection becomes a tunnel (HttpParserUpgrade)
        elif not self.head_request:  # a HEAD answer was finished at the end of its head (above)
            self._finish()

    # -- used by the exchange ------------------------------------------------------------------

    def bind(self, sink: ResponseSink, *, head_request: bool) -> None:
        """Make `sink` the owner of this connection for one exchange."""
        self.sink = sink
        self.head_request = head_request
        self.received_any = False
        self.deadline = self._loop.time() + self.pool.read_timeout

    def write(self, data: bytes) -> None:
        """Send request bytes; sending counts as activity for the read timeout."""
        if self.transport is not None and not self.closed:
            self.transport.write(data)
            if self.deadline:
                self.deadline = self._loop.time() + self.pool.read_timeout

    def pause_reading(self) -> None:
        """Stop reading (the client is slow); the read timeout waits too, as it is not ours."""
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()
            self._paused_deadline, self.deadline = self.deadline, 0.0

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()
            if self._paused_deadline:
                self.deadline = self._loop.time() + self.pool.read_timeout
                self._paused_deadline = 0.0

    def close(self) -> None:
        """Close the connection; its exchange, if any, is told through `upstream_lost`."""
        if self.transport is not None and not self.closed:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection without telling its exchange (which is going away)."""
        self.sink = None
        self.keep_alive = False
        if self.transport is not None and not self.closed:
            self.transport.abort()

    def check_deadline(self, now: float) -> None:
        """Time out a pending response (504) or expire an idle connection (the sweeper calls)."""
        if not self.deadline or now < self.deadline or self.closed:
            return
        sink, self.sink = self.sink, None
        if sink is not None:
            sink.upstream_lost(UpstreamError(504, "upstream did not answer in time"))
        self.abort()

    def _finish(self) -> None:
        sink, self.sink = self.sink, None
        self.deadline = 0.0
        if sink is not None:
            sink.response_complete()


class UpstreamPool:
    """Idle keep-alive connections to one origin, plus the connect step (with its timeout)."""

    def __init__(
        self,
        origin: Origin,
        *,
        connect_timeout: float,
        read_timeout: float,
        idle_timeout: float,
        max_idle: int,
        tracker: ConnectionTracker,
    ) -> None:
        self.origin = origin
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.idle_timeout = idle_timeout
        self.max_idle = max_idle
        self.closing = False
        self._idle: deque[UpstreamConnection] = deque()
        self._tracker = tracker
        self._ssl = ssl.create_default_context() if origin.scheme == "https" else None

    def take_idle(self) -> UpstreamConnection | None:
        """A live idle connection, most recently used first, or None."""
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                conn.reused = True
                return conn
        return None

    async def connect(self) -> UpstreamConnection:
        """Open a new connection; `UpstreamError` 502 when refused, 504 on connect timeout."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: UpstreamConnection(self),
                    self.origin.host,
                    self.origin.port,
                    ssl=self._ssl,
                    server_hostname=self.origin.host if self._ssl else None,
                )
        except TimeoutError:
            raise UpstreamError(504, "timed out connecting to the upstream") from None
        except OSError as exc:
            raise UpstreamError(502, f"cannot connect to the upstream ({exc.strerror})") from None
        conn.reused = False
        self._tracker.track(conn)
        return conn

    def release(self, conn: UpstreamConnection) -> None:
        """Return a connection after a complete exchange, or close it if it cannot be reused."""
        if conn.closed:
            return
        if conn.feeding:
            conn.release_after_feed = True
            return
        if self.closing or not conn.keep_alive or len(self._idle) >= self.max_idle:
            conn.abort()
            return
        conn.sink = None
        conn.deadline = asyncio.get_running_loop().time() + self.idle_timeout
        self._idle.append(conn)

    def forget(self, conn: UpstreamConnection) -> None:
        """A connection closed: drop it from the idle list and the tracker."""
        self._tracker.untrack(conn)
        if conn in self._idle:
            self._idle.remove(conn)

    def close(self) -> None:
        """Stop reusing connections: idle ones close now, busy ones after their exchange."""
        self.closing = True
        while self._idle:
            self._idle.pop().abort()


class ConnectionTracker(Protocol):
    """The server's registry of live connections (for timeouts and shutdown)."""

    def track(self, conn: UpstreamConnection) -> None: ...

    def untrack(self, conn: UpstreamConnection) -> None: ...
