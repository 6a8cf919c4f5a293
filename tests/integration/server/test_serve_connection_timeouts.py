"""`authgate serve` closes connections that do not send a request in time (issue 8, fault 2): a real
server process with short `[http]` deadlines, spoken to over raw sockets.

Without these deadlines a connection holding half a request head (or a trickling body, or nothing)
stayed open for good, and about a thousand of them stopped the server.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server_harness import free_port, wait_ready

AUTHGATE = str(Path(sys.executable).parent / "authgate")
CONFIG = """
[http]
header_timeout = "1s"
body_timeout = "2s"
keep_alive_timeout = "1s"
"""
DISCOVERY = b"GET /.well-known/openid-configuration HTTP/1.1\r\nHost: 127.0.0.1\r\n"
WAIT = 20.0  # bound on every wait for the server to close: far beyond the deadlines above


@pytest.fixture(scope="module", params=[1, 2], ids=["1-worker", "2-workers"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    """A zero-configuration server (SQLite in its directory) with short deadlines; its port."""
    workdir = tmp_path_factory.mktemp("serve-timeouts")
    config = str(workdir / "authgate.toml")
    Path(config).write_text(CONFIG, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHGATE_")}
    port = free_port()
    log = workdir / "serve.log"
    process = subprocess.Popen(
        [
            AUTHGATE,
            "serve",
            "--port",
            str(port),
            "--workers",
            str(request.param),
            "--config",
            config,
        ],
        cwd=workdir,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, log)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
            pytest.fail("the server did not stop within 15 s of SIGTERM")


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (fails if it stays open)."""
    received = b""
    deadline = time.monotonic() + WAIT
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    pytest.fail(f"connection still open after {WAIT} s; received {received!r}")


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """One response with a Content-Length body: its status and body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(":", 1) for line in lines[1:])
    length = int({k.lower(): v for k, v in fields.items()}["content-length"])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed in the middle of a response"
        body += chunk
    assert len(body) == length, "more bytes than the response announced"
    return int(lines[0].split()[1]), body


def assert_408(received: bytes) -> None:
    assert received.startswith(b"HTTP/1.1 408 "), received
    assert b"connection: close" in received.lower(), received


def test_requests_work_and_an_idle_keep_alive_connection_is_closed(server: int) -> None:
    with connect(server) as sock:
        for _ in range(2):  # the connection is kept alive between requests
            sock.sendall(DISCOVERY + b"\r\n")
            status, body = read_response(sock)
            assert status == 200
            assert b'"issuer"' in body
        # Then idle: closed after keep_alive_timeout, silently (no request was started).
        assert read_until_closed(sock) == b""


def test_a_connection_that_sends_nothing_is_closed(server: int) -> None:
    with connect(server) as sock:
        assert read_until_closed(sock) == b""


def test_a_half_sent_head_gets_408_and_is_closed(server: int) -> None:
    with connect(server) as sock:
        sock.sendall(DISCOVERY)  # no blank line: the head never ends
        assert_408(read_until_closed(sock))


def test_a_half_sent_head_after_a_response_gets_408_and_is_closed(server: int) -> None:
    with connect(server) as sock:
        sock.sendall(DISCOVERY + b"\r\n")
        assert read_response(sock)[0] == 200
        sock.sendall(DISCOVERY)
        assert_408(read_until_closed(sock))


def test_a_head_sent_slowly_times_out_although_bytes_keep_coming(server: int) -> None:
    """The header deadline is for the whole head: a line every 0.2 s does not extend it."""
    with connect(server) as sock:
        sock.sendall(DISCOVERY)
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable:
                break
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
        assert_408(read_until_closed(sock))


def test_a_trickling_body_gets_408_and_is_closed(server: int) -> None:
    head = (
        b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\n"
    )
    with connect(server) as sock:
        sock.sendall(head + b"grant_type=")
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:  # a byte every 0.2 s: 200 bytes would take 40 s
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable:
                break
            try:
                sock.sendall(b"x")
            except (BrokenPipeError, ConnectionResetError):
                break
        assert_408(read_until_closed(sock))


def test_many_stalled_connections_are_all_closed_and_the_server_keeps_answering(
    server: int,
) -> None:
    stalled = [connect(server) for _ in range(200)]
    try:
        for sock in stalled:
            sock.sendall(DISCOVERY)
        with connect(server) as sock:
            sock.sendall(DISCOVERY + b"\r\n")
            assert read_response(sock)[0] == 200
        for sock in stalled:
            assert_408(read_until_closed(sock))
    finally:
        for sock in stalled:
            sock.close()
