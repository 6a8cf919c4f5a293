"""An upstream that answers more often than it was asked (RFC 9112 §9.3: it read a request
differently from the gateway) must not hand the surplus answer to the next request on a reused
connection, which may be another client's: response queue poisoning.

The upstream here is raw and deliberately wrong in two known ways: it answers `/two` twice, and,
like a plain `http.server` handler, it never reads the body of a GET, so that a body becomes the
next request on its connection.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tests.support.gateway import (
    Gateway,
    live_gateway,
    parse_responses,
    raw_exchange,
)

SMUGGLED = b"GET /pub/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


def _answer(conn: socket.socket, text: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(text), text))


def _serve_connection(conn: socket.socket) -> None:
    buffer = b""
    held: bytes | None = None  # the smuggled request waits until the next request arrives
    with conn:
        while True:
            while b"\r\n\r\n" not in buffer:
                data = conn.recv(65536)
                if not data:
                    return
                buffer += data
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            path = head.split(b" ")[1]
            if held is not None:
                _answer(conn, b"answer to " + held)
                held = None
            if path == b"/pub/two":
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none"
                    b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nsurplus"
                )
            elif path == b"/pub/smuggled":
                held = path
            else:
                _answer(conn, b"answer to " + path)


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    listener = socket.create_server(("127.0.0.1", 0))

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=_serve_connection, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    routes = f"""
[[routes]]
path = "/pub"
public = true
upstream = "http://127.0.0.1:{listener.getsockname()[1]}"
"""
    try:
        with live_gateway(tmp_path_factory.mktemp("gw"), routes=routes) as live:
            yield live.gateway
    finally:
        listener.close()


def test_a_surplus_response_in_the_same_read_is_not_handed_on(gw: Gateway) -> None:
    data = b"GET /pub/two HTTP/1.1\r\nHost: a\r\n\r\nGET /pub/mine HTTP/1.1\r\nHost: a\r\n\r\n"
    bodies = [body for _, _, body in parse_responses(raw_exchange(gw.port, data, timeout=5))]
    assert bodies == [b"one", b"answer to /pub/mine"]


def test_the_connection_after_a_get_with_a_body_is_not_reused(gw: Gateway) -> None:
    status, _, body = gw.request("GET", "/pub/first", body=SMUGGLED)
    assert (status, body) == (200, b"answer to /pub/first")
    # Another client: on the reused connection it would get the answer to the smuggled request.
    status, _, body = gw.request("GET", "/pub/victim")
    assert (status, body) == (200, b"answer to /pub/victim")
