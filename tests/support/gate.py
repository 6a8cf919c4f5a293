"""Helpers for the gate tests: a real issuer on loopback (JWKS, metadata, introspection) served by
`http.server` in a thread, keys and tokens made with `authgate.jose`, and a manual clock."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from authgate.jose import JWK, jwt
from tests.support.tokens import b64url

AUDIENCE = "https://api.example.test"


def forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A compact JWS with any header and signature bytes (for hostile tokens)."""
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(claims).encode())
    return f"{head}.{body}.{b64url(signature)}"


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Route:
    """What the fake issuer answers on one path."""

    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    stream: bool = False  # no Content-Length: the body ends when the connection closes
    handler: Callable[[dict[str, list[str]], dict[str, str]], tuple[int, Any]] | None = None


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up early (size and time limits at work) are expected, not errors."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        return


class IssuerServer:
    """A loopback issuer: JWKS at /jwks, RFC 8414 and OIDC metadata, RFC 7662 introspection."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def _serve(self) -> None:
                path = self.path.partition("?")[0]
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                with server.lock:
                    server.hits[path] += 1
                    server.requests.append((self.command, path, dict(self.headers), body))
                    route = server.routes.get(path)
                server.gate.wait(10)
                if route is None:
                    self._answer(404, b'{"error":"not_found"}', {})
                    return
                if route.delay:
                    time.sleep(route.delay)
                if route.handler is not None:
                    form = parse_qs(body.decode())
                    status, payload = route.handler(form, dict(self.headers))
                    self._answer(status, json.dumps(payload).encode(), {})
                    return
                self._answer(route.status, route.body, route.headers, stream=route.stream)

            def _answer(
                self, status: int, body: bytes, headers: dict[str, str], *, stream: bool = False
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if stream:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                else:
                    self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def set_json(self, path: str, document: Any, **kwargs: Any) -> None:
        self.routes[path] = Route(body=json.dumps(document).encode(), **kwargs)

    def close(self) -> None:
        self.gate.set()
        self._server.shutdown()
        self._server.server_close()


@dataclass
class FakeIssuer:
    """Signing keys for one issuer and a way to mint tokens with them."""

    server: IssuerServer
    issuer: str
    keys: list[JWK] = field(default_factory=list)
    alg: str = "ES256"

    def new_key(self, kid: str | None = None) -> JWK:
        key = JWK.generate("EC", crv="P-256", kid=kid or uuid.uuid4().hex[:12], alg=self.alg)
        self.keys.append(key)
        return key

    def publish(
        self,
        *,
        cache_control: str | None = "max-age=300",
        keys: list[JWK] | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        headers = dict(extra or {})
        if cache_control is not None:
            headers["Cache-Control"] = cache_control
        published = keys if keys is not None else self.keys
        self.server.set_json(
            "/jwks", {"keys": [k.public().to_dict() for k in published]}, headers=headers
        )

    def publish_metadata(self, *, issuer: str | None = None) -> None:
        doc = {
            "issuer": issuer or self.issuer,
            "jwks_uri": self.server.url + "/jwks",
            "introspection_endpoint": self.server.url + "/introspect",
        }
        self.server.set_json("/.well-known/oauth-authorization-server", doc)

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "user-1",
            "aud": AUDIENCE,
            "exp": now + 600,
            "iat": now,
            "client_id": "client-1",
            "scope": "orders:read profile",
            "jti": uuid.uuid4().hex,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(
        self, key: JWK | None = None, *, header: dict[str, Any] | None = None, **claims: Any
    ) -> str:
        signing = key or self.keys[-1]
        return jwt.encode(
            self.claims(**claims),
            signing,
            signing.alg or self.alg,
            {"typ": "at+jwt", **(header or {})},
        )
