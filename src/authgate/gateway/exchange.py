"""One request through the gateway: decide, then answer locally or stream to the upstream and
back (RFC 9110 §7.6, §15.2; RFC 9112 §6, §7, §9.6; RFC 6455 §4 for WebSocket upgrades).

The router's verdict is either a `LocalAnswer` (errors, health, metrics, forward-auth) or a
`Forward` (a pool and the request head to send). Bodies are streamed in both directions with
back-pressure: when one side's socket buffer fills, reading from the other side pauses. Nothing is
buffered whole; only the body bytes that arrive while the verdict or the upstream connection is
pending are held, and reading stops once `HOLD_LIMIT` bytes are held. A chunked request goes
upstream only once its first chunk's size line has parsed (unless the client waits for
`100 Continue`), so a body malformed from its start reaches nothing; a later framing error closes
the upstream connection before the last chunk. A reused keep-alive connection that the upstream
closed before answering is retried once on a fresh connection for a body-less idempotent request
(RFC 9110 §9.2.2, RFC 9112 §9.3.1).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from authgate.gateway import responses
from authgate.gateway.client_protocol import PAUSE_BUFFER, PAUSE_UPSTREAM
from authgate.gateway.header_rules import response_framing, response_headers_for_client
from authgate.gateway.request_head import RequestHead
from authgate.gateway.upstream_pool import UpstreamConnection, UpstreamError, UpstreamPool

if TYPE_CHECKING:
    from authgate.gate import Answer
    from authgate.gateway.client_protocol import ClientConnection

__all__ = ["Forward", "LocalAnswer", "ProxyExchange", "Verdict"]

log = logging.getLogger("authgate.gateway")

HOLD_LIMIT = 64 * 1024
DISCARD_LIMIT = 1024 * 1024  # request body read and dropped after an early answer
_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})
_BODYLESS = frozenset({b"GET", b"HEAD", b"OPTIONS", b"DELETE", b"TRACE"})
_VIA = b"Via: 1.1 authgate"  # RFC 9110 §7.6.3
_RENDERED = frozenset({"content-type", "cache-control"})  # written by responses.render

_DECIDING, _AWAITING_BODY, _CONNECTING, _SENDING, _TUNNEL, _DONE = range(6)
_NONE, _LENGTH, _CHUNKED, _CLOSE = range(4)


@dataclass(frozen=True, slots=True)
class LocalAnswer:
    """A response the gateway makes itself instead of forwarding: status, body, extra fields (the
    gate's refusals arrive as `authgate.gate.Answer` and are converted to this)."""

    status: int
    body: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    content_type: bytes = b"application/json"
    cache_control: bytes = b"no-store"

    @classmethod
    def from_gate(cls, answer: Answer, *, cache_control: bytes = b"no-store") -> LocalAnswer:
        """The gate's answer (a refusal, the RFC 9728 document) as the gateway writes it."""
        headers = [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in answer.headers
            if name not in _RENDERED
        ]
        return cls(answer.status, answer.body, headers, cache_control=cache_control)


@dataclass(frozen=True, slots=True)
class Forward:
    """Send `request_head` (complete, with its blank line) to an upstream from `pool`."""

    pool: UpstreamPool
    request_head: bytes
    chunked: bool
    on_response: Callable[[int], None] | None = None  # the upstream's final status
    on_failure: Callable[[int], None] | None = None  # 502/504 made by the gateway
    # Added to the upstream's final response (the gateway's RateLimit fields).
    response_fields: list[tuple[bytes, bytes]] | tuple[()] = ()


Verdict = LocalAnswer | Forward
Router = Callable[[RequestHead], "Verdict | Awaitable[Verdict]"]


class ProxyExchange:
    """Drives one request: verdict, upstream connection, streaming, and the client's response."""

    def __init__(self, conn: ClientConnection, head: RequestHead) -> None:
        self.conn = conn
        self.head = head
        self.state = _DECIDING
        self.upstream: UpstreamConnection | None = None
        self.forward: Forward | None = None
        self._held: list[bytes] = []
        self._held_bytes = 0
        self._body_done = False
        self._retried = False
        self._framing = _NONE
        self._until_close = False
        self._out: list[bytes] = []
        self._keep_alive = True
        self._discarded = 0
        self._task: asyncio.Task[None] | None = None

    def start(self, router: Router) -> None:
        """Ask the router for a verdict; continue at once when it needs no I/O."""
        verdict = router(self.head)
        if isinstance(verdict, LocalAnswer | Forward):
            self._decided(verdict)
        else:
            self._task = asyncio.ensure_future(self._await_verdict(verdict))

    async def _await_verdict(self, pending: Awaitable[Verdict]) -> None:
        try:
            verdict = await pending
        except Exception:
            log.exception("deciding on a request failed")
            verdict = LocalAnswer(500, responses.error_body(500))
        if self.state == _DECIDING:
            self._decided(verdict)

    def _decided(self, verdict: Verdict) -> None:
        if isinstance(verdict, LocalAnswer):
            self.answer(verdict)
            return
        self.forward = verdict
        head = self.head
        if head.chunked and not self._held and not self._body_done and not _expects_100(head):
            # llhttp hands over body bytes only after a chunk's size line parsed: until then,
            # the request may still be malformed and nothing of it goes upstream.
            self.state = _AWAITING_BODY
            return
        self._open(verdict)

    def _open(self, forward: Forward) -> None:
        self.state = _CONNECTING
        upstream = forward.pool.take_idle()
        if upstream is not None:
            self._attach(upstream, forward)
        else:
            self._task = asyncio.ensure_future(self._connect(forward))

    async def _connect(self, forward: Forward) -> None:
        try:
            upstream = await forward.pool.connect()
        except UpstreamError as exc:
            if self.state == _CONNECTING:
                self._fail(exc)
            return
        if self.state != _CONNECTING:  # the client left meanwhile
            upstream.abort()
            return
        self._attach(upstream, forward)

    def _attach(self, upstream: UpstreamConnection, forward: Forward) -> None:
        self.upstream = upstream
        self.state = _SENDING
        upstream.bind(self, head_request=self.head.method == b"HEAD")
        if self.head.upgrade:
            # Bytes after an upgrade request belong to the new protocol: they wait for the 101.
            # Sent earlier, an upstream that refuses the upgrade would read them as another
            # request that the gate never judged (WebSocket request smuggling).
            upstream.write(forward.request_head)
            return
        held, self._held = self._held, []
        self._held_bytes = 0
        upstream.write(forward.request_head + b"".join(held) if held else forward.request_head)
        self.conn.resume_reading(PAUSE_BUFFER)

    # -- request body, from the client connection ----------------------------------------------

    def feed_body(self, chunk: bytes) -> None:
        state = self.state
        if state == _TUNNEL or (state == _SENDING and not self.head.upgrade):
            if state == _SENDING and self.forward is not None and self.forward.chunked:
                self.upstream.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))  # type: ignore[union-attr]
            else:
                self.upstream.write(chunk)  # type: ignore[union-attr]
        elif state == _DONE:
            self._discarded += len(chunk)
            if self._discarded > DISCARD_LIMIT:
                self.conn.close()
        else:
            framed = b"%x\r\n%b\r\n" % (len(chunk), chunk) if self.head.chunked else chunk
            self._held.append(framed)
            self._held_bytes += len(framed)
            if self._held_bytes > HOLD_LIMIT:
                self.conn.pause_reading(PAUSE_BUFFER)
            if state == _AWAITING_BODY and self.forward is not None:
                self._open(self.forward)

    def end_body(self) -> None:
        if self.state == _TUNNEL:
            self._close_tunnel()
            return
        self._body_done = True
        if self.head.chunked:
            if self.state == _SENDING and self.upstream is not None:
                self.upstream.write(b"0\r\n\r\n")
            elif self.state in (_DECIDING, _AWAITING_BODY, _CONNECTING):
                self._held.append(b"0\r\n\r\n")
                if self.state == _AWAITING_BODY and self.forward is not None:
                    self._open(self.forward)  # an empty body: "0" was its first chunk

    def client_write_paused(self, paused: bool) -> None:
        upstream = self.upstream
        if upstream is not None:
            if paused:
                upstream.pause_reading()
            else:
                upstream.resume_reading()

    def client_lost(self) -> None:
        previous, self.state = self.state, _DONE
        if self._task is not None:
            self._task.cancel()
        if self.upstream is not None and previous != _DONE:
            self.upstream.abort()
        self.upstream = None

    # -- response, from the upstream connection ------------------------------------------------

    def response_head(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        head = self.head
        if status < 200:
            if status == 101 and head.upgrade:
                self._open_tunnel(headers)
            elif head.version == b"1.1" and status != 101:
                self._write_head(status, response_headers_for_client(headers))  # 1xx relayed
            return
        out, length, chunked = response_framing(headers)
        if head.method == b"HEAD" or status in (204, 304):
            self._framing = _NONE
        elif length and not chunked:
            self._framing = _LENGTH
        else:
            # RFC 9112 §6.3: without either, the upstream's body ends when it closes; with both,
            # Transfer-Encoding wins and Content-Length must not be passed on.
            self._until_close = not chunked
            if length:
                out = [(n, v) for n, v in out if n.lower() != b"content-length"]
            if head.version == b"1.1":
                self._framing = _CHUNKED
                out.append((b"Transfer-Encoding", b"chunked"))
            else:
                self._framing = _CLOSE
        forward = self.forward
        if forward is not None:
            if forward.response_fields:
                out += forward.response_fields
            if forward.on_response is not None:
                forward.on_response(status)
        self._keep_alive = self.conn.keep_alive and self._framing != _CLOSE and not head.upgrade
        if not self._keep_alive:
            out.append((b"Connection", b"close"))
        elif head.version == b"1.0":
            out.append((b"Connection", b"keep-alive"))  # HTTP/1.0 persists only when told
        self._write_head(status, out)

    def response_body(self, chunk: bytes) -> None:
        if self.state == _DONE:
            return
        if self._framing == _CHUNKED:
            self._out += (b"%x\r\n" % len(chunk), chunk, b"\r\n")
        else:
            self._out.append(chunk)

    def flush(self) -> None:
        """Write what the last read from the upstream produced, in one system call."""
        out = self._out
        if out:
            transport = self.conn.transport
            if transport is not None:
                transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()

    def response_complete(self) -> None:
        if self.state == _TUNNEL:
            return
        upstream, self.upstream = self.upstream, None
        if self.state == _DONE:
            return
        self.state = _DONE
        if self._framing == _CHUNKED:
            self._out.append(b"0\r\n\r\n")
        self.flush()
        if upstream is not None:
            if self._body_done and not (self.head.has_body and self.head.method in _BODYLESS):
                upstream.pool.release(upstream)
            else:
                # Answered before the request body ended; or a body on a method that usually
                # has none, which an upstream may leave unread and take for the next request.
                upstream.abort()
        self.conn.response_finished(self._keep_alive)

    def response_upgraded(self, rest: bytes) -> None:
        if rest and self.conn.transport is not None:
            self.conn.transport.write(rest)

    def upstream_lost(self, error: UpstreamError) -> None:
        upstream, self.upstream = self.upstream, None
        if self.state == _TUNNEL:
            self.state = _DONE
            self.conn.close()
        elif self.state == _DONE:
            return
        elif not self.conn.response_started:
            if (
                upstream is not None
                and self.forward is not None
                and self._can_retry(upstream, error)
            ):
                self._retried = True
                self.state = _CONNECTING
                self._task = asyncio.ensure_future(self._connect(self.forward))
                return
            self._fail(error)
        elif self._until_close:
            self.state = _DONE  # a close-delimited body ends with the connection
            if self._framing == _CHUNKED:
                self._out.append(b"0\r\n\r\n")
            self.flush()
            self.conn.response_finished(self._framing == _CHUNKED and self._keep_alive)
        else:
            self.state = _DONE
            self.flush()
            self.conn.close()  # truncated: the client must not take it for a complete response

    def upstream_write_paused(self, paused: bool) -> None:
        if paused:
            self.conn.pause_reading(PAUSE_UPSTREAM)
        else:
            self.conn.resume_reading(PAUSE_UPSTREAM)

    # -- local answers and failures --------------------------------------------------------------

    def answer(self, answer: LocalAnswer) -> None:
        """Write a gateway-made response and finish the exchange."""
        self.state = _DONE
        self._held = []
        keep_alive = self.conn.keep_alive and not self.head.upgrade
        data = responses.render(
            answer.status,
            answer.body,
            content_type=answer.content_type,
            cache_control=answer.cache_control,
            headers=answer.headers,
            keep_alive=keep_alive,
            head_only=self.head.method == b"HEAD",
        )
        self.conn.response_started = True
        if self.conn.transport is not None:
            self.conn.transport.write(data)
        self.conn.resume_reading(PAUSE_BUFFER)
        self.conn.response_finished(keep_alive)

    def _fail(self, error: UpstreamError) -> None:
        log.warning("upstream failure: %s", error, extra={"status": error.status})
        self.head.log["upstream_error"] = str(error)
        if self.forward is not None and self.forward.on_failure is not None:
            self.forward.on_failure(error.status)
        self.answer(LocalAnswer(error.status, responses.error_body(error.status, str(error))))

    def _can_retry(self, upstream: UpstreamConnection, error: UpstreamError) -> bool:
        return (
            error.status == 502
            and upstream.reused
            and not upstream.received_any
            and not self._retried
            and not self.head.has_body
            and self.head.method in _IDEMPOTENT
        )

    def _write_head(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        lines = [b"HTTP/1.1 %d %b" % (status, responses.reason(status))]
        for name, value in headers:
            lines.append(name + b": " + value)
        lines.append(_VIA)
        self.conn.response_started = True
        self._out.append(b"\r\n".join(lines) + b"\r\n\r\n")

    # -- WebSocket tunnel ------------------------------------------------------------------------

    def _open_tunnel(self, headers: list[tuple[bytes, bytes]]) -> None:
        out = response_headers_for_client(headers)
        out += [(b"Connection", b"Upgrade"), (b"Upgrade", b"websocket")]
        self._write_head(101, out)
        self.flush()
        self.state = _TUNNEL
        if self.upstream is not None:
            self.upstream.deadline = 0.0
        self.conn.tunnel_established()
        held, self._held = self._held, []
        self._held_bytes = 0
        if held and self.upstream is not None:
            self.upstream.write(b"".join(held))
        self.conn.resume_reading(PAUSE_BUFFER)

    def _close_tunnel(self) -> None:
        self.state = _DONE
        if self.upstream is not None:
            self.upstream.close()
        self.conn.close()


def _expects_100(head: RequestHead) -> bool:
    """Whether the client waits for `100 Continue` before sending the body (RFC 9110 §10.1.1)."""
    expect = head.fields.get(b"expect")
    return expect is not None and expect.strip().lower() == b"100-continue"
