"""A client connection driven by hand, for event orderings that a live test cannot force."""

from __future__ import annotations

from authgate.gateway.client_protocol import ClientConnection
from authgate.gateway.config import ClientLimits
from authgate.gateway.request_head import Exchange, RequestHead

# -- a client connection driven by hand: ordering that a live test cannot force --------------------


class _Transport:
    def __init__(self) -> None:
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str) -> object:
        return ("127.0.0.1", 40000) if name == "peername" else None


class _Exchange:
    def feed_body(self, chunk: bytes) -> None:
        pass

    def end_body(self) -> None:
        pass

    def client_write_paused(self, paused: bool) -> None:
        pass

    def client_lost(self) -> None:
        pass


class _Host:
    limits = ClientLimits()
    draining = False

    def __init__(self) -> None:
        self.heads: list[RequestHead] = []

    def dispatch(self, conn: ClientConnection, head: RequestHead) -> Exchange:
        self.heads.append(head)
        return _Exchange()

    def opened(self, conn: ClientConnection) -> None:
        pass

    def closed(self, conn: ClientConnection) -> None:
        pass


async def test_a_half_close_does_not_drop_the_answer_to_a_malformed_pipelined_request() -> None:
    # The client sends a good request and a malformed one, then half-closes (as soon as its
    # data is read, where the event loop delivers both at once). The good request is answered,
    # then the malformed one gets its 400; the half-close used to drop that 400.
    host, transport = _Host(), _Transport()
    conn = ClientConnection(host)
    conn.connection_made(transport)  # type: ignore[arg-type]
    conn.data_received(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /%5c HTTP/1.1\r\nHost: t\r\n\r\n")
    conn.eof_received()
    assert ([h.target.path for h in host.heads], transport.written) == (["/a"], b"")
    transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")  # the first exchange's response
    conn.response_started = True
    conn.response_finished(keep_alive=True)
    first, _, second = transport.written.partition(b"\r\n\r\n")
    assert first == b"HTTP/1.1 204 No Content"
    assert second.startswith(b"HTTP/1.1 400 ")
    assert b"Connection: close" in second
    assert transport.closed
