"""Real servers for the gateway tests, all on loopback: a JWKS issuer, an HTTP upstream that reports
what it received, a WebSocket echo upstream, the gateway itself (the real CLI in a subprocess), and
raw-socket helpers for requests that well-behaved clients cannot send.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httptools
import websockets

from authgate.jose import JWK, jwt

AUDIENCE = "https://api.example.com"
AUTHGATE = Path(sys.executable).with_name("authgate")


# -- the token issuer ------------------------------------------------------------------------------


class Issuer:
    """Serves a JWKS at /jwks.json (threaded) and signs tokens with its RSA key."""

    def __init__(self) -> None:
        self.key = JWK.generate("RSA", alg="RS256", kid="key-1")
        self.failing = False
        self.fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.fetches += 1
                if issuer.failing or self.path != "/jwks.json":
                    self.send_response(503 if issuer.failing else 404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"keys": [issuer.key.public().to_dict()]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "max-age=300")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def token(self, *, key: JWK | None = None, alg: str = "RS256", **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "alice",
            "client_id": "orders-app",
            "scope": "orders:read orders:write",
            "roles": ["admin", "Order Clerks"],
            "iat": now,
            "exp": now + 600,
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, key or self.key, alg)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# -- the HTTP upstream -----------------------------------------------------------------------------


class RawConnection:
    """Every byte one connection to the upstream carried, and whether it has closed."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = threading.Event()


class UpstreamState:
    """Shared between the upstream (its own thread and loop) and the tests."""

    def __init__(self) -> None:
        self.first_upload_chunk = threading.Event()
        self.release_download = threading.Event()
        self.requests: list[dict[str, Any]] = []
        self.connections: list[RawConnection] = []

    def connection_with(self, marker: bytes, timeout: float = 10) -> RawConnection:
        """The connection that has carried `marker`, once it has (bounded wait)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for conn in list(self.connections):
                if marker in conn.data:
                    return conn
            time.sleep(0.01)
        raise AssertionError(f"no upstream connection carried {marker!r}")

    def carried(self, marker: bytes) -> bool:
        """Whether any connection to the upstream has carried `marker` so far."""
        return any(marker in conn.data for conn in list(self.connections))


class _UpstreamProtocol(asyncio.Protocol):
    def __init__(self, state: UpstreamState) -> None:
        self.state = state
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.raw = RawConnection()
        self.state.connections.append(self.raw)

    def connection_lost(self, exc: Exception | None) -> None:
        self.raw.closed.set()

    def data_received(self, data: bytes) -> None:
        self.raw.data += data
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers: list[tuple[str, str]] = []
        self.digest = hashlib.sha256()
        self.body_len = 0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        expect = [v for n, v in self.headers if n.lower() == "expect"]
        if expect and expect[0].lower() == "100-continue":
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        if self.body_len == 0 and self.url.startswith(b"/upload-gated"):
            self.state.first_upload_chunk.set()
        self.body_len += len(body)
        self.digest.update(body)

    def on_message_complete(self) -> None:
        path = self.url.decode("latin-1")
        record = {
            "method": self.parser.get_method().decode(),
            "path": path,
            "headers": self.headers,
            "body_len": self.body_len,
            "body_sha256": self.digest.hexdigest(),
            "peer_port": self.transport.get_extra_info("peername")[1] if self.transport else 0,
        }
        self.state.requests.append(record)
        self.task = asyncio.ensure_future(self.respond(path, record))

    async def respond(self, path: str, record: dict[str, Any]) -> None:
        transport = self.transport
        assert transport is not None
        route = path.split("?", maxsplit=1)[0].split("/")[1]
        if route == "slow":
            await asyncio.sleep(float(path.split("/")[2]))
        if route == "stream":
            size = int(path.split("/")[2].split("?", maxsplit=1)[0])
            transport.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            sent, chunk = 0, b"x" * 65536
            while sent < size:
                piece = chunk[: min(len(chunk), size - sent)]
                transport.write(b"%x\r\n%b\r\n" % (len(piece), piece))
                sent += len(piece)
                if "gate=1" in path and not self.state.release_download.is_set():
                    loop = asyncio.get_running_loop()
                    await loop.run_in_executor(None, self.state.release_download.wait, 30)
            transport.write(b"0\r\n\r\n")
            return
        if route == "status":
            code = int(path.split("/")[2])
            transport.write(
                b"HTTP/1.1 %d X\r\nContent-Length: 5\r\nX-Code: %d\r\n\r\n" % (code, code)
            )
            if code not in (204, 304) and record["method"] != "HEAD":
                transport.write(b"hello")
            return
        if route == "close-delimited":
            transport.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of this until EOF")
            transport.close()
            return
        extra = b""
        if route == "hop":
            extra = (
                b"Connection: X-Secret-Hop, close-not\r\nX-Secret-Hop: 1\r\n"
                b"Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nX-Kept: yes\r\n"
            )
        body = json.dumps(record).encode()
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % len(
            body
        )
        transport.write(head + extra + b"\r\n" + (b"" if record["method"] == "HEAD" else body))


async def _ws_echo(ws: Any) -> None:
    await ws.send(json.dumps({"headers": list(ws.request.headers.raw_items())}))
    async for message in ws:
        await ws.send(message)


class Upstream:
    """The HTTP upstream and the WebSocket upstream, on their own event loop thread."""

    def __init__(self) -> None:
        self.state = UpstreamState()
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self._thread.start()
        started.wait(10)

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            self._http = await self._loop.create_server(
                lambda: _UpstreamProtocol(self.state), "127.0.0.1", 0
            )
            self._ws = await websockets.serve(_ws_echo, "127.0.0.1", 0)
            self.port = self._http.sockets[0].getsockname()[1]
            self.ws_port = self._ws.sockets[0].getsockname()[1]
            started.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)


# -- the gateway process ---------------------------------------------------------------------------


class Gateway:
    """`authgate gateway` in a subprocess, on a free loopback port, logs collected."""

    def __init__(
        self, config: str, directory: Path, *, wait_ready: bool = True, listen: str = "127.0.0.1:0"
    ) -> None:
        """`listen`: a fixed address when the configuration must name the gateway's own URL
        (`resource`); a free port by default."""
        self.config_path = directory / "gateway.toml"
        self.config_path.write_text(config)
        self.logs: list[str] = []
        self._listening = threading.Event()
        self.process = subprocess.Popen(
            [str(AUTHGATE), "gateway", "--config", str(self.config_path), "--listen",
             listen, "--grace", "5"],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        threading.Thread(target=self._read_logs, daemon=True).start()
        if not self._listening.wait(20):
            self.stop()
            raise RuntimeError("the gateway did not start:\n" + "\n".join(self.logs))

    def _read_logs(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.logs.append(line.rstrip("\n"))
            if '"msg":"listening"' in line:
                self.port = json.loads(line)["port"]
                self._listening.set()

    def log_records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.logs:
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"raw": line})
        return out

    def wait_for_log(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in self.log_records():
                if predicate(record):
                    return record
            time.sleep(0.05)
        raise AssertionError("log record not found:\n" + "\n".join(self.logs[-20:]))

    def reload(self, config: str | None = None) -> None:
        if config is not None:
            self.config_path.write_text(config)
        self.process.send_signal(signal.SIGHUP)

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        body: bytes | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request on a new connection; header names in the result are lower-case."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            items = headers.items() if isinstance(headers, dict) else headers or []
            for name, value in items:
                conn.putheader(name, value)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            data = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        finally:
            conn.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def gateway_toml(issuer: Issuer, upstream: Upstream, extra: str = "", routes: str = "") -> str:
    """A configuration with the standard test routes (and `extra` top-level keys first)."""
    return f"""
{extra}
[[issuers]]
issuer = "{issuer.url}"
jwks_uri = "{issuer.url}/jwks.json"
audiences = ["{AUDIENCE}"]
leeway = 0

[[routes]]
path = "/orders"
upstream = "{upstream.url}"
scopes = ["orders:read"]

[[routes]]
path = "/admin"
upstream = "{upstream.url}"
scopes = ["orders:admin"]

[[routes]]
path = "/with-auth"
upstream = "{upstream.url}"
forward_authorization = true

[[routes]]
path = "/public"
public = true
upstream = "{upstream.url}"

[[routes]]
path = "/stream"
upstream = "{upstream.url}"

[[routes]]
path = "/upload-gated"
upstream = "{upstream.url}"

[[routes]]
path = "/slow"
upstream = "{upstream.url}"

[[routes]]
path = "/status"
upstream = "{upstream.url}"

[[routes]]
path = "/hop"
public = true
upstream = "{upstream.url}"

[[routes]]
path = "/close-delimited"
public = true
upstream = "{upstream.url}"

[[routes]]
path = "/ws"
upstream = "http://127.0.0.1:{upstream.ws_port}"

[[routes]]
path = "/down"
public = true
upstream = "http://127.0.0.1:{free_port()}"
{routes}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- raw HTTP --------------------------------------------------------------------------------------


def raw_exchange(port: int, data: bytes, *, timeout: float = 10) -> bytes:
    """Send `data`, read until the server closes (or `timeout`), return everything received."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def parse_responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Split a byte stream into responses (status, lower-case headers, body)."""
    out: list[tuple[int, dict[str, str], bytes]] = []

    class Sink:
        def on_message_begin(self) -> None:
            self.headers: dict[str, str] = {}
            self.body = b""

        def on_header(self, name: bytes, value: bytes) -> None:
            self.headers[name.decode().lower()] = value.decode("latin-1")

        def on_body(self, body: bytes) -> None:
            self.body += body

        def on_message_complete(self) -> None:
            out.append((parser.get_status_code(), self.headers, self.body))

    sink = Sink()
    parser = httptools.HttpResponseParser(sink)
    with contextlib.suppress(httptools.HttpParserError):  # a truncated tail: keep what parsed
        parser.feed_data(data)
    return out


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read exactly one response from a connection that stays open (a keep-alive exchange)."""
    done: list[tuple[int, dict[str, str], bytes]] = []

    class Sink:
        def __init__(self) -> None:
            self.headers: dict[str, str] = {}
            self.body = b""

        def on_header(self, name: bytes, value: bytes) -> None:
            self.headers[name.decode().lower()] = value.decode("latin-1")

        def on_body(self, body: bytes) -> None:
            self.body += body

        def on_message_complete(self) -> None:
            done.append((parser.get_status_code(), self.headers, self.body))

    sink = Sink()
    parser = httptools.HttpResponseParser(sink)
    while not done:
        data = sock.recv(1)  # byte by byte: nothing of a later response is consumed
        if not data:
            raise AssertionError("the connection closed before a complete response")
        parser.feed_data(data)
    return done[0]


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (bounded by the timeout)."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True)
class LiveGateway:
    """A gateway process with an issuer and an upstream of its own."""

    gateway: Gateway
    issuer: Issuer
    upstream: Upstream


@contextlib.contextmanager
def live_gateway(
    directory: Path, extra: str = "", routes: str | Callable[[Upstream], str] = ""
) -> Iterator[LiveGateway]:
    """A gateway on `gateway_toml(issuer, upstream, extra, routes)` with a fresh issuer and
    upstream (`routes` may be built from the upstream); everything is stopped afterwards, also
    when the gateway fails to start."""
    issuer, upstream = Issuer(), Upstream()
    try:
        extra_routes = routes(upstream) if callable(routes) else routes
        gateway = Gateway(gateway_toml(issuer, upstream, extra, extra_routes), directory)
        try:
            yield LiveGateway(gateway, issuer, upstream)
        finally:
            gateway.stop()
    finally:
        issuer.close()
        upstream.close()
