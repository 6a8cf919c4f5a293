"""`authgate serve`'s HTTP protocol writes each response in one `write` (`_CoalescingWriter`):
head and body together, in order, and nothing held is lost when the connection closes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from authgate.server.http.serve_protocol import TimedHttpToolsProtocol

REQUEST = b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\na=b"


class FakeTransport(asyncio.Transport):
    """Records each `write` separately."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _serve(app: Any, data: bytes) -> FakeTransport:
    config = Config(app=app, access_log=False, log_config=None)
    config.load()
    protocol = TimedHttpToolsProtocol(
        config, ServerState(), {}, asyncio.get_running_loop(), header_timeout=5, body_timeout=5
    )
    transport = FakeTransport()
    protocol.connection_made(transport)
    protocol.data_received(data)
    for _ in range(20):  # let the application's task run and the loop turn
        await asyncio.sleep(0)
    protocol.connection_lost(None)
    return transport


async def test_a_response_goes_out_in_one_write() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"a", b"1"), (b"content-length", b"11")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"ok":true}'})

    transport = await _serve(app, REQUEST)
    assert len(transport.writes) == 1
    head, _, body = transport.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\na: 1" in head
    assert body == b'{"ok":true}'


async def test_pipelined_responses_stay_in_order() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    transport = await _serve(app, REQUEST.replace(b"/token", b"/one") + REQUEST)
    text = b"".join(transport.writes)
    assert text.index(b"/one") < text.index(b"/token")
    assert text.count(b"HTTP/1.1 200 OK") == 2


async def test_a_streamed_body_is_written_as_it_comes() -> None:
    gate = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await gate.wait()
        await send({"type": "http.response.body", "body": b"second"})

    config = Config(app=app, access_log=False, log_config=None)
    config.load()
    protocol = TimedHttpToolsProtocol(
        config, ServerState(), {}, asyncio.get_running_loop(), header_timeout=5, body_timeout=5
    )
    transport = FakeTransport()
    protocol.connection_made(transport)
    protocol.data_received(REQUEST)
    for _ in range(20):
        await asyncio.sleep(0)
    # The head and the first chunk went out at the end of the loop's turn, not held for the rest.
    assert b"first" in b"".join(transport.writes)
    assert b"second" not in b"".join(transport.writes)
    gate.set()
    for _ in range(20):
        await asyncio.sleep(0)
    assert b"second" in b"".join(transport.writes)
    protocol.connection_lost(None)


async def test_what_is_held_is_written_before_the_connection_closes() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not reached")

    # A malformed request: uvicorn writes a 400 and closes in the same turn.
    transport = await _serve(app, b"NOT HTTP\r\n\r\n")
    assert transport.closed
    assert b"".join(transport.writes).startswith(b"HTTP/1.1 400 Bad Request")


async def test_the_deadlines_are_armed_after_the_bytes_at_hand_are_parsed() -> None:
    """A request that arrives whole arms no body deadline; a head without its whole body arms
    one; a head still incomplete keeps the header deadline; each deadline is the one due."""
    gate = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await gate.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    config = Config(app=app, access_log=False, log_config=None)
    config.load()
    protocol = TimedHttpToolsProtocol(
        config, ServerState(), {}, asyncio.get_running_loop(), header_timeout=5, body_timeout=7
    )
    transport = FakeTransport()
    protocol.connection_made(transport)
    head, _, body = REQUEST.partition(b"\r\n\r\n")

    protocol.data_received(head[:10])  # a head begun: the header deadline stays
    header_deadline = protocol._deadline
    assert header_deadline is not None
    assert header_deadline.when() - protocol.loop.time() == pytest.approx(5, abs=0.5)
    protocol.data_received(head[10:] + b"\r\n\r\n" + body[:1])  # the body still to come
    body_deadline = protocol._deadline
    assert body_deadline is not None
    assert header_deadline.cancelled()
    assert body_deadline.when() - protocol.loop.time() == pytest.approx(7, abs=0.5)
    protocol.data_received(body[1:])  # the request is whole: no deadline while it runs
    assert protocol._deadline is None
    assert body_deadline.cancelled()
    gate.set()
    for _ in range(20):
        await asyncio.sleep(0)
    assert b"".join(transport.writes).startswith(b"HTTP/1.1 200 OK")
    # The next request, whole in one read: no deadline is left armed while it runs.
    gate.clear()
    protocol.data_received(REQUEST)
    assert protocol._deadline is None
    gate.set()
    for _ in range(20):
        await asyncio.sleep(0)
    protocol.connection_lost(None)
