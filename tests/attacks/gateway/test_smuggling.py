"""Request smuggling through the gateway (RFC 9112 §6.3, §9.6; RFC 9110 §7.6.1; RFC 6455 §4).

A smuggled request reaches the upstream without passing the gate, and may carry identity headers
(`X-Auth-Subject`) that the upstream trusts. Each test sends one raw request that hides a second
request to a protected route, and checks what a plain keep-alive upstream (Python's http.server,
which ignores `Upgrade` it does not speak) actually served.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.gateway import (
    Gateway,
    live_gateway,
    parse_responses,
    raw_exchange,
)

SMUGGLED = b"GET /secret/data HTTP/1.1\r\nHost: x\r\nX-Auth-Subject: admin\r\n\r\n"


class PlainUpstream:
    """A keep-alive HTTP/1.1 upstream that records every request it serves."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                upstream.paths.append(self.path)
                out = json.dumps({"path": self.path, "body": body.decode("latin-1")}).encode()
                self.send_response(200)
                if self.path.startswith("/pub/named-length"):
                    self.send_header("Connection", "Content-Length")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def served(self) -> list[str]:
        time.sleep(0.3)  # let the upstream finish whatever reached it
        return list(self.paths)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def plain() -> Iterator[PlainUpstream]:
    server = PlainUpstream()
    yield server
    server.close()


@pytest.fixture(scope="module")
def gw(plain: PlainUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    routes = f"""
[[routes]]
path = "/pub"
public = true
upstream = "http://127.0.0.1:{plain.port}"

[[routes]]
path = "/secret"
scopes = ["orders:admin"]
upstream = "http://127.0.0.1:{plain.port}"
"""
    with live_gateway(tmp_path_factory.mktemp("gw"), routes=routes) as live:
        yield live.gateway


def _send(gw: Gateway, plain: PlainUpstream, data: bytes) -> tuple[list[Any], list[str]]:
    plain.paths.clear()
    answers = parse_responses(raw_exchange(gw.port, data, timeout=5))
    return answers, plain.served()


def test_connection_header_cannot_remove_content_length(gw: Gateway, plain: PlainUpstream) -> None:
    # `Connection: Content-Length` once made the gateway drop the length but still stream the
    # body, which the upstream then read as a second, unjudged request.
    data = (
        b"POST /pub/form HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Content-Length\r\n"
        b"Content-Length: %d\r\n\r\n" % len(SMUGGLED)
    ) + SMUGGLED
    answers, served = _send(gw, plain, data)
    assert served == ["/pub/form"]
    assert answers[0][0] == 200
    assert json.loads(answers[0][2])["body"] == SMUGGLED.decode()


def test_bytes_after_a_refused_websocket_upgrade_never_reach_the_upstream(
    gw: Gateway, plain: PlainUpstream
) -> None:
    # The upstream answers 200 instead of 101: what follows the upgrade request is not a tunnel.
    data = (
        b"GET /pub/ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    ) + SMUGGLED
    answers, served = _send(gw, plain, data)
    assert served == ["/pub/ws"]
    assert [status for status, _, _ in answers] == [200]


def test_upstream_connection_header_cannot_remove_the_response_length(
    gw: Gateway, plain: PlainUpstream
) -> None:
    # Without its Content-Length the client could not tell where the response ends.
    status, headers, body = gw.request("GET", "/pub/named-length")
    assert status == 200
    assert int(headers["content-length"]) == len(body)
    assert json.loads(body)["path"] == "/pub/named-length"


@pytest.mark.parametrize(
    "data",
    [
        b"POST /pub/x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n",
        b"POST /pub/x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n",
        b"POST /pub/x HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
        b"POST /pub/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n",
        b"GET /pub/x HTTP/1.1\nHost: a\n\n",
        b"GET /pub/x HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
        b"GET /pub/x HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n",
    ],
    ids=["cl-and-te", "two-cl", "signed-cl", "negative-chunk", "bare-lf", "obs-fold",
         "space-before-colon"],
)  # fmt: skip
def test_ambiguous_framing_is_refused(gw: Gateway, plain: PlainUpstream, data: bytes) -> None:
    answers, served = _send(gw, plain, data + SMUGGLED)
    # A chunked head waits for its first chunk's size line, so none of these reaches the
    # upstream (tests/integration/gateway/test_streaming.py checks that strictly); a broken chunk
    # later in a body can only end the exchange.
    assert served in ([], ["/pub/x"])
    assert answers
    assert answers[0][0] == 400
    assert answers[0][1]["connection"] == "close"


@pytest.mark.parametrize(
    ("data", "status"),
    [
        # Two Transfer-Encoding fields are one list, "gzip, chunked": not only chunked.
        (
            b"POST /pub/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            501,
        ),
        (b"GET /pub/x HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        (b"GET /pub/x\r\n\r\n", 505),
    ],
    ids=["te-list-split-over-fields", "http-2-in-1-syntax", "http-0.9"],
)
def test_unsupported_codings_and_versions_are_not_forwarded(
    gw: Gateway, plain: PlainUpstream, data: bytes, status: int
) -> None:
    answers, served = _send(gw, plain, data)
    assert served == []
    assert answers[0][0] == status
