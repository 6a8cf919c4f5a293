"""The HTTP/1.1 connection protocol of `authgate serve`: uvicorn's httptools protocol with deadlines
for reading requests.

uvicorn closes a connection left idle after a response (`timeout_keep_alive`), but sets no limit on
how long a client may take to send a request: a connection that sends nothing, half a request head
or a body a byte at a time stays open for good, and about a thousand of them use up the process's
file descriptors (slowloris). This protocol adds two deadlines, like the gateway's:

- `header_timeout`: the request head must be complete this long after the connection opened, or
  after the first byte that followed the previous response;
- `body_timeout`: the body must be complete this long after its head (a total, not a pause limit:
  bodies here are small, `[http] max_body_size`, and a pause limit lets a trickle last for hours).

A request that misses its deadline is answered 408 (RFC 9110 §15.5.9) and the connection closed; a
connection that never started a request is closed silently. Pipelined requests waiting behind a
running one have no deadline while reading is paused; theirs starts when they run.

Writes are coalesced (`_CoalescingWriter`): uvicorn writes a response's head and its body in two
`send` calls, each a system call and, on loopback, a TCP segment processed for the receiver too;
here a response goes out in one (benchmarks/README.md, token endpoint, has the measured effect).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any, cast

from uvicorn.config import Config as UvicornConfig
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

__all__ = ["TimedHttpToolsProtocol", "protocol_factory"]

_408 = b"Request Timeout"


class TimedHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` with a header deadline and a body deadline (see the module)."""

    def __init__(
        self,
        config: UvicornConfig,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        header_timeout: float,
        body_timeout: float,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._header_timeout = header_timeout
        self._body_timeout = body_timeout
        self._deadline: asyncio.TimerHandle | None = None
        self._head_begun = False  # a byte of the awaited request head has arrived
        self._writer: _CoalescingWriter | None = None
        # A request whose head was parsed in the current `data_received` and whose body is still
        # to come when the bytes at hand are parsed: its body deadline is armed then.
        self._body_pending: RequestResponseCycle | None = None

    # -- connection events --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # The request cycles write through it; flow control keeps the real transport.
        self._writer = _CoalescingWriter(transport, self.loop)
        self.transport = cast("asyncio.Transport", self._writer)
        self._arm(self._header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn cancels its keep-alive timer on any byte; from here on the next head has to be
        # complete in time (also when the bytes are only the blank lines llhttp skips). Both
        # deadlines are armed once these bytes are parsed (at the same loop time), and only when
        # still needed: a request usually arrives whole, head and body in one read, and a timer
        # armed and cancelled within the same call would be spent for nothing.
        head_awaited = self._deadline is None and self._between_requests()
        super().data_received(data)
        pending, self._body_pending = self._body_pending, None
        if self._writer is None or self.transport.is_closing():
            return  # a WebSocket took the connection over, or it is closing (a 400)
        if pending is not None:
            self._arm(self._body_timeout, partial(self._body_timed_out, pending))
        elif head_awaited and self._deadline is None and self._between_requests():
            self._arm(self._header_timeout, self._head_timed_out)

    def handle_websocket_upgrade(self) -> None:
        # The WebSocket protocol takes the connection over, with its own timeouts and the real
        # transport (anything still held is written first).
        self._disarm()
        if self._writer is not None:
            self._writer.flush()
            self.transport = self._writer.transport
            self._writer = None
        super().handle_websocket_upgrade()

    # -- parser callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_begun = True

    def on_headers_complete(self) -> None:
        self._disarm()
        self._head_begun = False
        before = self._current()
        super().on_headers_complete()
        cycle = self._current()
        pipeline = self.pipeline  # empty unless requests were pipelined behind a running one
        queued = bool(pipeline) and any(waiting is cycle for waiting, _ in pipeline)
        # A new request that runs now (not queued behind another, not a WebSocket upgrade): its
        # body deadline, unless the body is complete in the bytes being parsed (`data_received`).
        if cycle is not None and cycle is not before and not queued:
            self._body_pending = cycle

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._body_pending = None
        self._disarm()
        if self._between_requests() and not self.transport.is_closing():
            # The response went out before the body was read: wait for the next request.
            self._arm(self._header_timeout, self._head_timed_out)

    def on_response_complete(self) -> None:
        if self._writer is not None:
            self._writer.flush()  # the whole response, at once rather than at the end of the turn
        queued = self.pipeline[-1][0] if self.pipeline else None
        super().on_response_complete()
        if queued is not None and queued.more_body and not self.transport.is_closing():
            # The queued request now runs and its body is still to come (reading resumed).
            self._arm(self._body_timeout, partial(self._body_timed_out, queued))

    # -- deadlines ----------------------------------------------------------------------------

    def _current(self) -> RequestResponseCycle | None:
        cycle: RequestResponseCycle | None = self.cycle  # None until the first request head
        return cycle

    def _between_requests(self) -> bool:
        cycle = self._current()
        return cycle is None or cycle.response_complete

    def _arm(self, seconds: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._head_begun and self._between_requests():
            self._write_408()
        self.transport.close()

    def _body_timed_out(self, cycle: RequestResponseCycle) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if not cycle.response_started:
            # The application waits in receive(): it now sees a disconnect, and whatever it
            # sends is dropped, so the 408 is the only answer on the wire.
            cycle.disconnected = True
            cycle.message_event.set()
            self._write_408()
        self.transport.close()

    def _write_408(self) -> None:
        head = [b"HTTP/1.1 408 Request Timeout\r\n"]
        for name, value in self.server_state.default_headers:  # Date
            head.append(name + b": " + value + b"\r\n")
        head += [
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(_408),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + _408)


class _CoalescingWriter:
    """The connection's transport for uvicorn's request cycles: what is written is held until the
    response is complete (`on_response_complete` flushes) or, for anything else (a streamed body,
    `100 Continue`), until the end of the event loop's turn; so a response's head and body, two
    ASGI messages with nothing awaited between them, go out in one `write`. Order is kept; `close`
    sends what is held first; everything else is the transport's own."""

    __slots__ = ("_held", "_loop", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._held: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self._held is None:
            self._held = [data]
            self._loop.call_soon(self.flush)
        else:
            self._held.append(data)

    def flush(self) -> None:
        """Write what is held, unless the connection is closing (then it would be dropped)."""
        held, self._held = self._held, None
        if held and not self.transport.is_closing():
            self.transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def protocol_factory(*, header_timeout: float, body_timeout: float) -> type[asyncio.Protocol]:
    """What to give `uvicorn.run(http=...)`: uvicorn calls it with the protocol's arguments. A
    partial rather than a subclass, so that it pickles into `--workers` processes."""
    factory = partial(
        TimedHttpToolsProtocol, header_timeout=header_timeout, body_timeout=body_timeout
    )
    return cast("type[asyncio.Protocol]", factory)
