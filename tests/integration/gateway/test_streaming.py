"""Bodies stream through the gateway both ways (never buffered whole), WebSockets are tunnelled,
and upstream failures become 502/504."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import socket
import time
from pathlib import Path

import pytest
import websockets

from tests.support.gateway import (
    Gateway,
    Issuer,
    Upstream,
    gateway_toml,
    parse_responses,
    raw_exchange,
    read_response,
    read_until_closed,
)

MB = 1024 * 1024


def _auth(issuer: Issuer) -> str:
    return f"Bearer {issuer.token()}"


def test_download_streams_before_the_upstream_finishes(
    gateway: Gateway, issuer: Issuer, upstream: Upstream
) -> None:
    # The upstream sends its first 64 KiB, then waits until the test has read them through the
    # gateway: a gateway that buffered the response would never deliver them.
    upstream.state.release_download.clear()
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    conn.request("GET", "/stream/4194304?gate=1", headers={"Authorization": _auth(issuer)})
    response = conn.getresponse()
    assert response.status == 200
    first = response.read(65536)
    assert first == b"x" * 65536
    assert not upstream.state.release_download.is_set()
    upstream.state.release_download.set()
    rest = response.read()
    assert len(first) + len(rest) == 4 * MB
    conn.close()


def test_upload_streams_before_the_client_finishes(
    gateway: Gateway, issuer: Issuer, upstream: Upstream
) -> None:
    # The client sends 1 MiB of an 8 MiB body and waits until the upstream has seen the first
    # chunk: a gateway that buffered the request would never pass it on.
    upstream.state.first_upload_chunk.clear()
    body = bytes(range(256)) * (8 * MB // 256)
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=15) as sock:
        sock.sendall(
            b"PUT /upload-gated HTTP/1.1\r\nHost: t\r\nAuthorization: %s\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (_auth(issuer).encode(), len(body))
        )
        sock.sendall(body[:MB])
        assert upstream.state.first_upload_chunk.wait(10)
        sock.sendall(body[MB:])
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    ((status, _, reply),) = parse_responses(data)
    assert status == 200
    record = json.loads(reply)
    assert record["body_len"] == len(body)
    assert record["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_chunked_upload_arrives_intact(gateway: Gateway, issuer: Issuer) -> None:
    pieces = [b"a" * 10, b"b" * 70000, b"c" * 3]
    chunked = b"".join(b"%x;ext=1\r\n%b\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    data = raw_exchange(
        gateway.port,
        b"POST /orders/c HTTP/1.1\r\nHost: t\r\nAuthorization: %s\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n%b" % (_auth(issuer).encode(), chunked),
    )
    ((status, _, reply),) = parse_responses(data)
    assert status == 200
    record = json.loads(reply)
    assert record["body_len"] == 70013
    assert record["body_sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest()
    names = [n.lower() for n, _ in record["headers"]]
    assert names.count("transfer-encoding") == 1


def test_large_download_is_complete(gateway: Gateway, issuer: Issuer) -> None:
    status, headers, body = gateway.request(
        "GET", "/stream/16777216", {"Authorization": _auth(issuer)}
    )
    assert status == 200
    assert headers["transfer-encoding"] == "chunked"
    assert len(body) == 16 * MB


def test_websocket_through_the_gateway(gateway: Gateway, issuer: Issuer) -> None:
    async def talk() -> tuple[dict[str, object], list[str]]:
        async with websockets.connect(
            f"ws://127.0.0.1:{gateway.port}/ws/echo",
            additional_headers={"Authorization": _auth(issuer), "X-Auth-Subject": "mallory"},
        ) as ws:
            hello = json.loads(await ws.recv())
            echoes = []
            for text in ("one", "two" * 10000, "three"):
                await ws.send(text)
                echoes.append(await ws.recv())
            return hello, echoes

    hello, echoes = asyncio.run(talk())
    headers = {name.lower(): value for name, value in hello["headers"]}  # type: ignore[union-attr]
    assert headers["x-auth-subject"] == "alice"
    assert echoes == ["one", "two" * 10000, "three"]


def test_websocket_needs_a_token_like_any_request(gateway: Gateway) -> None:
    async def talk() -> None:
        async with websockets.connect(f"ws://127.0.0.1:{gateway.port}/ws/echo"):
            pass

    with pytest.raises(websockets.InvalidStatus) as refused:
        asyncio.run(talk())
    assert refused.value.response.status_code == 401


def test_unreachable_upstream_is_502(gateway: Gateway) -> None:
    status, _, body = gateway.request("GET", "/down/x")
    assert status == 502
    assert json.loads(body)["error"] == "bad_gateway"
    record = gateway.wait_for_log(lambda r: r.get("path") == "/down/x")
    assert (record["status"], record["outcome"]) == (502, "upstream_error")
    metrics = gateway.request("GET", "/metrics")[2].decode()
    assert 'authgate_upstream_errors_total{status="502"}' in metrics


def test_slow_upstream_is_504_and_the_gateway_keeps_serving(
    gateway: Gateway, issuer: Issuer
) -> None:
    status, _, body = gateway.request("GET", "/slow/3", {"Authorization": _auth(issuer)})
    assert status == 504
    assert json.loads(body)["error"] == "gateway_timeout"
    status, _, _ = gateway.request("GET", "/slow/0", {"Authorization": _auth(issuer)})
    assert status == 200


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_slow_reader_applies_back_pressure_instead_of_buffering(
    gateway: Gateway, issuer: Issuer
) -> None:
    # 64 MiB from a fast upstream to a client that stops reading: a gateway without
    # back-pressure would hold it all; this one pauses the upstream and stays small.
    size = 64 * MB
    before = _rss_bytes(gateway.process.pid)
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    conn.request("GET", f"/stream/{size}", headers={"Authorization": _auth(issuer)})
    response = conn.getresponse()
    assert response.read(65536) == b"x" * 65536
    time.sleep(1.0)  # the upstream keeps sending; the gateway must not keep reading
    grown = _rss_bytes(gateway.process.pid) - before
    received = 65536 + len(response.read())
    conn.close()
    assert received == size
    assert grown < 24 * MB, f"the gateway grew by {grown // MB} MiB while the client paused"


def test_connect_timeout_is_504(issuer: Issuer, upstream: Upstream, tmp_path: Path) -> None:
    # A listener that never accepts, its backlog full: connecting hangs until the timeout.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        route = f'[[routes]]\npath = "/blackhole"\npublic = true\nupstream = "http://127.0.0.1:{port}"\n'
        extra = "[upstream]\nconnect = 0.5\n"
        gw = Gateway(gateway_toml(issuer, upstream, extra, routes=route), tmp_path)
        try:
            status, _, body = gw.request("GET", "/blackhole")
            assert status == 504
            assert json.loads(body) == {
                "error": "gateway_timeout",
                "error_description": "timed out connecting to the upstream",
            }
        finally:
            gw.stop()
            for filler in fillers:
                filler.close()


def _post_chunked(path: bytes, extra: bytes = b"") -> bytes:
    return b"POST %b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n%b\r\n" % (path, extra)


def test_a_bad_first_chunk_size_reaches_nothing_upstream(
    gateway: Gateway, upstream: Upstream
) -> None:
    # A public route is decided at once and an idle upstream connection is at hand: the head
    # used to go upstream before the first chunk size was read, and the upstream saw it cut off.
    assert gateway.request("GET", "/public/warm-the-pool")[0] == 200
    answers = parse_responses(
        raw_exchange(gateway.port, _post_chunked(b"/public/bad-first-chunk") + b"zz\r\n")
    )
    assert [status for status, _, _ in answers] == [400]
    # The upstream has answered a later request, so whatever the gateway wrote before has arrived.
    assert gateway.request("GET", "/public/after-bad-first-chunk")[0] == 200
    assert not upstream.state.carried(b"/public/bad-first-chunk")


def test_a_bad_chunk_size_later_closes_the_upstream_connection(
    gateway: Gateway, upstream: Upstream
) -> None:
    # Once the body streams, the upstream has the head and the chunks so far; a bad chunk size
    # then closes its connection without the last chunk (never returned to the pool).
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(_post_chunked(b"/public/bad-later-chunk") + b"5\r\nhello\r\n")
        conn = upstream.state.connection_with(b"5\r\nhello\r\n")
        sock.sendall(b"zz\r\n")
        answers = parse_responses(read_until_closed(sock))
    assert [status for status, _, _ in answers] == [400]
    assert conn.closed.wait(10)
    carried = bytes(conn.data)  # a reused connection: earlier exchanges come first
    head, _, body = carried[carried.index(b"POST /public/bad-later-chunk ") :].partition(
        b"\r\n\r\n"
    )
    assert b"\r\nTransfer-Encoding: chunked" in head
    assert body == b"5\r\nhello\r\n"  # the chunks before the bad one, and no last chunk
    assert not [r for r in upstream.state.requests if r["path"] == "/public/bad-later-chunk"]


def test_a_chunked_request_expecting_100_continue_is_sent_at_once(
    gateway: Gateway, upstream: Upstream
) -> None:
    # The client waits for the upstream's 100 before its first chunk: the head cannot wait for it.
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(_post_chunked(b"/public/continue", b"Expect: 100-continue\r\n"))
        assert read_response(sock)[0] == 100
        sock.sendall(b"3\r\nabc\r\n0\r\n\r\n")
        status, _, body = read_response(sock)
    assert status == 200
    assert json.loads(body)["body_len"] == 3
