"""ASGI middleware: the gate in front of any ASGI application, for HTTP and WebSocket scopes
(RFC 6750 §2-§3, RFC 9728 §3, ASGI 3.0 with the WebSocket Denial Response extension).

```python
gate = Gate(load_gate_config("gate.toml"))   # or Gate(GateConfig(...)) built in code
app = AuthGateMiddleware(app, gate)
# FastAPI: app.add_middleware(AuthGateMiddleware, gate=gate)
```

Each HTTP request and WebSocket handshake is decided by `Gate.check` (one pipeline for every
shell). Allowed requests reach the application with `scope["authgate.principal"]` (None on public
routes), `scope["authgate.route"]` and `scope["authgate.gate"]` set, and with `path`/`raw_path`
replaced by the canonical path the policy judged. Refused HTTP requests get the gate's answer
(401/403/400/503 with `WWW-Authenticate`); refused WebSocket handshakes get that same HTTP answer
when the server supports the denial-response extension, otherwise a close with code 1008 (which
servers send as 403). The RFC 9728 metadata document is served at its well-known path.

Refusals made inside the application: the FastAPI dependencies raise `GateRefusal`, which carries
the gate's complete answer; the middleware sends that answer, so a dependency's refusal is byte for
byte the middleware's own (without the middleware, `use_gate` registers a handler that does the
same). Framework documentation: with `framework_docs=True`, GET and HEAD requests for exactly the
paths the FastAPI application declares (`openapi_url`, `docs_url`, `redoc_url`,
`swagger_ui_oauth2_redirect_url`) pass without a credential; off by default.

Lifespan: keys are fetched when the application starts (before `lifespan.startup` reaches it) and
the gate is closed at shutdown; without lifespan events, the gate starts on the first request.
With the "body" bearer method, a form-encoded body is read (at most `max_body_bytes`, 413 beyond)
and replayed to the application unchanged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote

from authgate.gate.challenge import FORM_TOO_LARGE, Answer
from authgate.gate.dpop import encoded_path, request_url
from authgate.gate.pipeline import Decision, Gate, GateRequest
from authgate.middleware.keys import GATE_KEY, PRINCIPAL_KEY, RESPONSE_FIELDS_KEY, ROUTE_KEY

__all__ = [
    "AuthGateMiddleware",
    "GateRefusal",
    "framework_doc_paths",
    "gate_request_from_scope",
    "send_answer",
]

logger = logging.getLogger("authgate.gate")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class GateRefusal(Exception):
    """A refusal made inside the application (a FastAPI dependency), with the gate's answer.

    Not an `HTTPException`: the framework's handler would render that as `{"detail": …}`. It
    travels up to `AuthGateMiddleware` (or to the handler `use_gate` registers), which sends
    `answer` exactly as the gate's own refusals are sent.
    """

    def __init__(self, answer: Answer) -> None:
        super().__init__(f"refused with {answer.status}")
        self.answer = answer


def framework_doc_paths(app: object) -> frozenset[str] | None:
    """The documentation paths a FastAPI application serves, as FastAPI decides them (none when
    `openapi_url` is None); None when `app` is not such an application."""
    if not hasattr(app, "openapi_url") or not hasattr(app, "docs_url"):
        return None
    openapi = getattr(app, "openapi_url", None)
    if not isinstance(openapi, str) or not openapi:
        return frozenset()
    paths = {openapi}
    docs = getattr(app, "docs_url", None)
    if isinstance(docs, str) and docs:
        paths.add(docs)
        redirect = getattr(app, "swagger_ui_oauth2_redirect_url", None)
        if isinstance(redirect, str) and redirect:
            paths.add(redirect)
    redoc = getattr(app, "redoc_url", None)
    if isinstance(redoc, str) and redoc:
        paths.add(redoc)
    return frozenset(paths)


def gate_request_from_scope(scope: Scope, form_body: bytes | None = None) -> GateRequest:
    """The `GateRequest` for an HTTP or WebSocket scope."""
    raw_path = scope.get("raw_path")
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", ())]
    method = scope.get("method", "GET") if scope["type"] == "http" else "GET"
    query = scope.get("query_string", b"").decode("latin-1")
    # The server's view of the client (behind a proxy, what the server was told to believe).
    peer = scope.get("client")
    client = str(peer[0]) if peer else None
    url = _scope_url(scope, headers) if any(k == "dpop" for k, _ in headers) else None
    if raw_path:
        return GateRequest(method, raw_path, headers, query, form_body, client=client, url=url)
    return GateRequest(
        method,
        scope.get("path", "/"),
        headers,
        query,
        form_body,
        decoded_as="utf-8",
        client=client,
        url=url,
    )


def _scope_url(scope: Scope, headers: list[tuple[str, str]]) -> str:
    """The URI the request was sent to, for a DPoP proof's `htu`: the server's scheme (behind a
    proxy, what the server was told to believe) and `Host`, and the path as received."""
    scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", "http"), scope.get("scheme"))
    host = next((v for k, v in headers if k == "host"), None)
    if host is None:
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else encoded_path(scope.get("path", "/"), "utf-8")
    return request_url(str(scheme or "http"), host, path)


async def send_answer(send: Send, answer: Answer, *, head_only: bool = False) -> None:
    """Send a complete HTTP answer."""
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers]
    headers.append((b"content-length", str(0 if head_only else len(answer.body)).encode()))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head_only else answer.body})


class AuthGateMiddleware:
    """Enforces a `Gate` in front of an ASGI application."""

    def __init__(
        self,
        app: ASGIApp,
        gate: Gate,
        *,
        serve_metadata: bool = True,
        max_body_bytes: int = 64 * 1024,
        framework_docs: bool = False,
    ) -> None:
        self.app = app
        self.gate = gate
        self.serve_metadata = serve_metadata
        self.max_body_bytes = max_body_bytes
        self.framework_docs = framework_docs
        self._doc_paths: frozenset[str] | None = None  # found on the first request
        self._start_lock = asyncio.Lock()
        self._started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(scope, receive, send)
        elif kind in ("http", "websocket"):
            await self._guard(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def ensure_started(self) -> None:
        if not self._started:
            async with self._start_lock:
                if not self._started:
                    await self.gate.start()
                    self._started = True

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def receive_and_start() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.ensure_started()
            return message

        async def close_then_send(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await self.gate.aclose()
                self._started = False
            await send(message)

        await self.app(scope, receive_and_start, close_then_send)

    async def _guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.ensure_started()
        http = scope["type"] == "http"
        method = scope.get("method", "GET")
        if http and self.serve_metadata:
            answer = self.gate.resource_metadata_answer(method, scope.get("path", ""))
            if answer is not None:
                await send_answer(send, answer, head_only=method == "HEAD")
                return
        if http and self.framework_docs:
            docs = self.gate.public_path(gate_request_from_scope(scope), self._docs(scope))
            if docs is not None:
                await self._call_app(scope, receive, send, docs)
                return
        form_body = None
        if http and self.gate.wants_body(method, _header(scope, b"content-type")):
            form_body, complete = await _read_body(receive, self.max_body_bytes)
            if not complete:
                await send_answer(send, FORM_TOO_LARGE)
                return
            receive = _replay(form_body, receive)
        decision = await self.gate.check(gate_request_from_scope(scope, form_body))
        if decision.answer is not None:
            if http:
                await send_answer(send, decision.answer, head_only=method == "HEAD")
            else:
                await _deny_websocket(scope, receive, send, decision.answer)
            return
        await self._call_app(scope, receive, send, decision)

    async def _call_app(
        self, scope: Scope, receive: Receive, send: Send, decision: Decision
    ) -> None:
        child = dict(scope)
        child[PRINCIPAL_KEY] = decision.principal
        child[ROUTE_KEY] = decision.route
        child[GATE_KEY] = self.gate
        added: list[tuple[bytes, bytes]] = []  # by dependencies, until the response starts
        child[RESPONSE_FIELDS_KEY] = added
        if decision.rate_limit is not None and scope["type"] == "http":
            send = _adding_fields(send, self.gate.rate_limit_headers(decision))
        path = decision.path
        if path is not None and path.encode() != scope.get("raw_path"):
            # Hand the application exactly the path the policy judged.
            child["raw_path"] = path.encode("ascii")
            child["path"] = unquote(path)
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if added:
                    message = {**message, "headers": [*message.get("headers", ()), *added]}
            await send(message)

        try:
            await self.app(child, receive, watch)
        except GateRefusal as refusal:
            # A dependency refused before anything was sent: answer as the gate does. Once the
            # response has started, the refusal cannot be sent; let it propagate.
            if started or scope["type"] != "http":
                raise
            await send_answer(send, refusal.answer, head_only=scope.get("method") == "HEAD")

    def _docs(self, scope: Scope) -> frozenset[str]:
        if self._doc_paths is None:
            # The application this middleware wraps, or (under add_middleware) the one that
            # built the middleware stack, which Starlette puts in the scope.
            found = framework_doc_paths(self.app)
            if found is None:
                found = framework_doc_paths(scope.get("app"))
            if found is None:
                logger.warning(
                    "framework_docs is on, but the application declares no documentation "
                    "paths (a FastAPI application's openapi_url, docs_url…): none is opened"
                )
            self._doc_paths = found or frozenset()
        return self._doc_paths


def _adding_fields(send: Send, fields: list[tuple[str, str]]) -> Send:
    """`send` that adds `fields` (the RateLimit fields) to the application's response."""
    if not fields:
        return send
    encoded = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in fields]

    async def send_with_fields(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *encoded]}
        await send(message)

    return send_with_fields


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), True
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", False
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _deny_websocket(scope: Scope, receive: Receive, send: Send, answer: Answer) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if "websocket.http.response" in scope.get("extensions", {}):
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers]
        await send(
            {"type": "websocket.http.response.start", "status": answer.status, "headers": headers}
        )
        await send({"type": "websocket.http.response.body", "body": answer.body})
    else:
        await send({"type": "websocket.close", "code": 1008})
