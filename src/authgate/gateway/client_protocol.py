"""The client side of the gateway: one asyncio protocol per TCP connection (RFC 9112).

Requests are parsed with httptools (llhttp, strict mode: conflicting `Content-Length`/`Transfer-
Encoding`, bad chunk framing and obsolete line folding are refused, RFC 9112 §6.3, §11.2). The
request line, the header section and the number of fields are bounded; a request that breaks the
rules gets a 400/414/431 and the connection closes; none reaches the upstream (for a body that
breaks them part-way, see `exchange`). Keep-alive and pipelining are supported: pipelined requests
wait (reading paused) until the response before them is complete, at most `max_pipeline` deep. A
malformed request after others on the same connection is answered in its turn, after their
responses (RFC 9112 §9.3.2). Timeouts are checked by the server's sweeper through
`check_deadline`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol, cast

import httptools

from authgate.gateway import responses
from authgate.gateway.config import ClientLimits
from authgate.gateway.request_head import Exchange, RequestHead
from authgate.gateway.request_target import BadRequestTargetError, parse_request_target

__all__ = ["ClientConnection", "ConnectionHost"]

log = logging.getLogger("authgate.gateway")

# Reasons for which reading from the client is paused; reading resumes when none remains.
PAUSE_PIPELINE = 1
PAUSE_UPSTREAM = 2
PAUSE_BUFFER = 4

_HEAD, _BODY, _IDLE = "header", "body", "idle"


class ConnectionHost(Protocol):
    """What a client connection needs from the server that accepted it."""

    @property
    def limits(self) -> ClientLimits: ...

    @property
    def draining(self) -> bool: ...

    def dispatch(self, conn: ClientConnection, head: RequestHead) -> Exchange: ...

    def opened(self, conn: ClientConnection) -> None: ...

    def closed(self, conn: ClientConnection) -> None: ...


class _Reject(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Pending:
    """A pipelined request waiting for the one before it; its body is held (reading is paused)."""

    __slots__ = ("chunks", "complete", "exchange", "head")

    def __init__(self, head: RequestHead) -> None:
        self.head = head
        self.chunks: list[bytes] = []
        self.complete = False
        self.exchange: Exchange | None = None

    def feed_body(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    def end_body(self) -> None:
        self.complete = True


class _Discard:
    """Swallows the body of a request that will not be answered (beyond the pipeline limit)."""

    __slots__ = ()

    def feed_body(self, chunk: bytes) -> None:
        pass

    def end_body(self) -> None:
        pass


_DISCARD = _Discard()


class ClientConnection(asyncio.Protocol):
    """Parses requests from one client and hands each to an `Exchange` from the host."""

    def __init__(self, host: ConnectionHost) -> None:
        self.host = host
        self.limits = host.limits
        self.transport: asyncio.Transport | None = None
        self.peer = "unknown"
        self.deadline = 0.0
        self.deadline_kind = _HEAD
        self.response_started = False
        self.tunnel: Exchange | None = None  # set when a WebSocket tunnel owns the connection
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        self._exchange: Exchange | None = None
        self._body_sink: Exchange | _Pending | _Discard | None = None
        self._request_complete = True
        self._response_complete = True
        self._keep_alive = True
        self._queue: list[_Pending] = []
        self._pause = 0
        self._closing = False
        self._ignore_input = False
        self._deferred_error: tuple[int, str] | None = None  # answer after the requests before it
        self._upgrade_accepted = False
        self._in_head = False
        self._head_seen = 0
        self._reset_head()

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, hence the cast.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer = peer[0]
        self._set_deadline(_HEAD, self.limits.header_timeout)
        self.host.opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self.host.closed(self)
        exchange = self._exchange or self.tunnel
        self._exchange = self.tunnel = None
        self._queue.clear()
        if exchange is not None:
            exchange.client_lost()

    def pause_writing(self) -> None:
        exchange = self._exchange or self.tunnel
        if exchange is not None:
            exchange.client_write_paused(True)

    def resume_writing(self) -> None:
        exchange = self._exchange or self.tunnel
        if exchange is not None:
            exchange.client_write_paused(False)

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.feed_body(data)
            return
        if self._closing or self._ignore_input:
            return
        if self._in_head or self._request_complete:
            self._head_seen += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgraded(data[upgrade.args[0] :])
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _Reject):
                self._malformed(cause.status, str(cause))
            else:
                log.error("request handling failed", exc_info=cause or exc)  # noqa: TRY400
                self._answer_error_and_close(500, None)
        except httptools.HttpParserError as exc:
            self._malformed(400, _parser_message(exc))
        else:
            if self._in_head and self._head_seen > self.limits.max_header_bytes:
                self._malformed(431, "request header section too large")

    def eof_received(self) -> bool | None:
        # A half-closed client cannot send more requests; finish the current response, then close
        # (after the answer to a malformed request, when one waits for its turn).
        if self._deferred_error is None:
            self._keep_alive = False
        if self.tunnel is not None:
            self.tunnel.end_body()  # half-close travels through the tunnel
        elif self._exchange is None:
            self._close()
        return True

    # -- httptools callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_seen = 0
        if self._exchange is None:
            self._set_deadline(_HEAD, self.limits.header_timeout)

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self.limits.max_request_line:
            raise _Reject(414, "request target too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > self.limits.max_header_bytes:
            raise _Reject(431, "request header section too large")
        if len(self._headers) >= self.limits.max_headers:
            raise _Reject(431, "too many header fields")
        lower = name.lower()
        if lower in self._fields:
            self._repeated.add(lower)
        self._fields[lower] = value
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        head = self._build_head()
        self._reset_head()
        if self._exchange is not None or self._queue:
            self._enqueue(head)
            return
        self._start(head)

    def on_body(self, body: bytes) -> None:
        if self.deadline_kind == _BODY:
            self.deadline = self._loop.time() + self.limits.body_timeout
        if self._body_sink is not None:
            self._body_sink.feed_body(body)

    def on_message_complete(self) -> None:
        sink, self._body_sink = self._body_sink, None
        if sink is None:
            return
        if sink is self._exchange and self._upgrade_accepted:
            self._request_complete = True  # what follows is tunnel data, not a body
            return
        sink.end_body()
        if sink is self._exchange:
            self._request_complete = True
            if self.deadline_kind == _BODY:
                self.deadline = 0.0
            if self._response_complete:
                self._exchange_done()

    # -- called by exchanges -----------------------------------------------------------------

    def response_finished(self, keep_alive: bool) -> None:
        """The exchange wrote its whole response."""
        if not keep_alive:
            self._keep_alive = False
        self._response_complete = True
        if self._request_complete:
            self._exchange_done()
        elif not self._keep_alive:
            self._close()
        else:
            # The body is still arriving for a response already sent: read it to stay in sync.
            self._set_deadline(_BODY, self.limits.body_timeout)

    def pause_reading(self, reason: int) -> None:
        if not self._pause and self.transport is not None:
            self.transport.pause_reading()
        self._pause |= reason

    def resume_reading(self, reason: int) -> None:
        was = self._pause
        self._pause &= ~reason
        if was and not self._pause and self.transport is not None and not self._closing:
            self.transport.resume_reading()

    def tunnel_established(self) -> None:
        """The upstream answered 101: the connection is now a byte tunnel without a deadline."""
        self.deadline = 0.0

    def check_deadline(self, now: float) -> None:
        """Close the connection when its current deadline has passed (called by the sweeper)."""
        if not self.deadline or now < self.deadline or self._closing:
            return
        if self.deadline_kind == _IDLE or self.response_started:
            self._close()
        else:
            self._malformed(408, "timed out waiting for the request")

    def close(self) -> None:
        """Close now (shutdown)."""
        self._close()

    @property
    def keep_alive(self) -> bool:
        """Whether the connection may carry another request after the current one."""
        return self._keep_alive and not self.host.draining

    @property
    def idle(self) -> bool:
        """No request in progress: safe to close during a graceful shutdown."""
        return self._exchange is None and self.tunnel is None and not self._in_head

    # -- internals ---------------------------------------------------------------------------

    def _reset_head(self) -> None:
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._fields: dict[bytes, bytes] = {}
        self._repeated: set[bytes] = set()
        self._header_bytes = 0

    def _build_head(self) -> RequestHead:
        parser = self._parser
        try:
            target = parse_request_target(self._url)
        except BadRequestTargetError as exc:
            raise _Reject(400, str(exc)) from None
        fields = self._fields
        chunked = b"transfer-encoding" in fields
        upgrade = None
        if parser.should_upgrade():
            upgrade = fields.get(b"upgrade", b"").strip().lower()
            if upgrade != b"websocket":
                upgrade = None
        return RequestHead(
            method=parser.get_method(),
            target=target,
            version=parser.get_http_version().encode("ascii"),
            headers=self._headers,
            fields=fields,
            repeated=self._repeated,
            keep_alive=parser.should_keep_alive(),
            upgrade=upgrade,
            has_body=chunked or fields.get(b"content-length", b"0").strip() not in (b"0", b""),
            chunked=chunked,
            peer=self.peer,
        )

    def _start(self, head: RequestHead) -> Exchange | None:
        self._request_complete = False
        self._response_complete = False
        self.response_started = False
        self._upgrade_accepted = head.upgrade is not None
        if not head.keep_alive or self.host.draining:
            self._keep_alive = False
        if head.has_body:
            self._set_deadline(_BODY, self.limits.body_timeout)
        else:
            self.deadline = 0.0
        try:
            exchange = self.host.dispatch(self, head)
        except Exception:
            log.exception("request dispatch failed")
            self._answer_error_and_close(500, None)
            return None
        self._exchange = exchange
        self._body_sink = exchange
        return exchange

    def _enqueue(self, head: RequestHead) -> None:
        if len(self._queue) >= self.limits.max_pipeline or not self._keep_alive or head.upgrade:
            # Unanswered pipelined requests are retried by clients (RFC 9112 §9.3.2).
            self._keep_alive = False
            self._body_sink = _DISCARD
            return
        pending = _Pending(head)
        self._queue.append(pending)
        self._body_sink = pending
        self.pause_reading(PAUSE_PIPELINE)

    def _exchange_done(self) -> None:
        self._exchange = None
        self.response_started = False  # no response is under way until the next exchange's
        if not self._keep_alive:
            self._close()
            return
        if self._queue:
            pending = self._queue.pop(0)
            exchange = self._start(pending.head)
            if exchange is None:
                return
            for chunk in pending.chunks:
                exchange.feed_body(chunk)
            if self._body_sink is pending:
                self._body_sink = exchange
            if pending.complete:
                exchange.end_body()
                self._request_complete = True
                if self._response_complete:
                    self._exchange_done()
            else:
                # Its body is still arriving (so it is the last request read): read it.
                self.resume_reading(PAUSE_PIPELINE)
            return
        if self._deferred_error is not None:
            self._answer_error_and_close(*self._deferred_error)
            return
        self.resume_reading(PAUSE_PIPELINE)
        self._set_deadline(_IDLE, self.limits.keepalive_timeout)

    def _upgraded(self, rest: bytes) -> None:
        # After an Upgrade request the bytes that follow are not HTTP. A WebSocket exchange takes
        # them (a 101 from the upstream turns it into a tunnel; any other answer closes); for any
        # other protocol the request is answered as plain HTTP and the rest is ignored.
        self._keep_alive = False
        self._body_sink = None
        if self._exchange is not None and self._upgrade_accepted:
            self.tunnel = self._exchange
            if rest:
                self.tunnel.feed_body(rest)
        else:
            self._ignore_input = True

    def _malformed(self, status: int, message: str) -> None:
        """The request being read breaks the rules (or is too slow): answer it in its turn, then
        close. Requests before it on this connection keep their responses (RFC 9112 §9.3.2)."""
        exchange, sink = self._exchange, self._body_sink
        self._body_sink = None
        if exchange is not None and sink is exchange and not self._in_head:
            self._answer_error_and_close(status, message)  # the body of the request being served
            return
        if isinstance(sink, _Pending):
            self._queue.remove(sink)  # a queued request whose body broke: this answer is its own
        if exchange is None and not self._queue:
            self._answer_error_and_close(status, message)
            return
        # Earlier requests are still being answered: read nothing more, answer this one after
        # them. Past `max_pipeline`, or after `Connection: close`, nothing more is answered.
        self.pause_reading(PAUSE_PIPELINE)
        self._ignore_input = True  # what is still buffered belongs to no request
        if self._keep_alive:
            self._deferred_error = (status, message)

    def _answer_error_and_close(self, status: int, message: str | None) -> None:
        exchange = self._exchange or self.tunnel
        self._exchange = self.tunnel = None
        if exchange is not None:
            exchange.client_lost()
        if not self.response_started and self.transport is not None and not self._closing:
            body = responses.error_body(status, message)
            self.transport.write(responses.render(status, body, keep_alive=False))
        self._close()

    def _set_deadline(self, kind: str, seconds: float) -> None:
        self.deadline_kind = kind
        self.deadline = self._loop.time() + seconds

    def _close(self) -> None:
        if not self._closing:
            self._closing = True
            if self.transport is not None:
                self.transport.close()


def _parser_message(exc: Exception) -> str:
    text = str(exc)
    # llhttp's reasons are fixed strings ("Invalid header value char"); never echo request bytes.
    return text if text.isascii() and len(text) < 80 else "malformed request"
