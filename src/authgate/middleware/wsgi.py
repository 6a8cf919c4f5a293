"""WSGI middleware: the gate in front of any WSGI application (PEP 3333; RFC 6750 §2-§3).

```python
gate = Gate(load_gate_config("gate.toml"))
app.wsgi_app = AuthGateWSGIMiddleware(app.wsgi_app, gate)      # Flask; any WSGI app works
```

The same pipeline as every other shell (`Gate.check_nowait`), run synchronously in the request's
thread; only a token that is not yet in the verified-token cache (or must be introspected) is
verified on a private event loop thread (see `_loop_thread` for why), bounded by `timeout`
seconds, after which the answer is 503. Allowed requests reach the application with
`environ["authgate.principal"]` and `environ["authgate.route"]`, and with `PATH_INFO` replaced by
the canonical path that was judged. Routes match `PATH_INFO`, the path below `SCRIPT_NAME`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Coroutine, Iterable
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

from authgate.gate.challenge import FORM_TOO_LARGE, Answer
from authgate.gate.dpop import encoded_path, request_url
from authgate.gate.pipeline import Decision, Gate, GateRequest, Pending
from authgate.gate.rate_limits import RouteRateLimit
from authgate.middleware._loop_thread import LoopThread
from authgate.middleware.keys import GATE_KEY, PRINCIPAL_KEY, ROUTE_KEY
from authgate.verifier.core import Credential
from authgate.verifier.errors import VerifierUnavailable
from authgate.verifier.principal import Principal

__all__ = [
    "AuthGateWSGIMiddleware",
    "SyncGate",
    "gate_request_from_environ",
]

T = TypeVar("T")
Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

_SPECIAL_HEADERS = {"CONTENT_TYPE": "content-type", "CONTENT_LENGTH": "content-length"}


def gate_request_from_environ(environ: Environ, form_body: bytes | None = None) -> GateRequest:
    """The `GateRequest` for a WSGI environ (`PATH_INFO` is latin-1-decoded bytes, PEP 3333)."""
    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append((key[5:].replace("_", "-").lower(), str(value)))
        elif key in _SPECIAL_HEADERS:
            headers.append((_SPECIAL_HEADERS[key], str(value)))
    return GateRequest(
        environ.get("REQUEST_METHOD", "GET").upper(),
        environ.get("PATH_INFO") or "/",
        headers,
        environ.get("QUERY_STRING", ""),
        form_body,
        decoded_as="latin-1",
        client=environ.get("REMOTE_ADDR") or None,
        url=_environ_url(environ) if "HTTP_DPOP" in environ else None,
    )


def _environ_url(environ: Environ) -> str:
    """The URI the request was sent to, for a DPoP proof's `htu` (PEP 3333's URL reconstruction):
    `wsgi.url_scheme`, `Host` (else the server's name and port), `SCRIPT_NAME` + `PATH_INFO`."""
    scheme = str(environ.get("wsgi.url_scheme", "http"))
    host = environ.get("HTTP_HOST")
    if not host:
        host = f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
    path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO") or "/")
    return request_url(scheme, str(host), encoded_path(path, "latin-1"))


class SyncGate:
    """A `Gate` for synchronous callers: decides in the caller's thread, verifies on a loop."""

    def __init__(self, gate: Gate, *, timeout: float = 30.0, runner: LoopThread | None = None):
        self.gate = gate
        self.timeout = timeout
        self._runner = runner or LoopThread()
        self._started = False

    def ensure_started(self) -> None:
        if not self._started:
            self._runner.run(self.gate.start(), self.timeout)
            self._started = True

    def check(self, request: GateRequest) -> Decision:
        """`Gate.check`, waiting at most `timeout` seconds for verification."""
        self.ensure_started()
        step = self.gate.check_nowait(request)
        if isinstance(step, Pending):
            try:
                return self._runner.run(self.gate.verify_pending(step), self.timeout)
            except TimeoutError:
                unavailable = VerifierUnavailable("verifier", debug="verification timed out")
                return self.gate.refusal_for(unavailable, path=step.path, route=step.route)
        return step

    def admit(
        self,
        rate_limit: RouteRateLimit,
        principal: Principal | None,
        *,
        credential: Credential | None = None,
        client: str | None = None,
    ) -> Decision:
        """`Gate.admit` (a decorator's rate limit), waiting at most `timeout` seconds for the
        store (its own `[limits] timeout` is shorter: the limit's failure mode answers first)."""
        self.ensure_started()
        step = self.gate.admit_nowait(rate_limit, principal, credential=credential, client=client)
        if isinstance(step, Pending):
            try:
                return self._runner.run(self.gate.verify_pending(step), self.timeout)
            except TimeoutError:
                unavailable = VerifierUnavailable("verifier", debug="rate limit timed out")
                return self.gate.refusal_for(unavailable, path=step.path)
        return step

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine of the gate on its loop (bounded by `timeout`)."""
        self.ensure_started()
        return self._runner.run(coro, self.timeout)

    def close(self) -> None:
        if self._started:
            self._runner.run(self.gate.aclose(), self.timeout)
            self._started = False
        self._runner.close()


def answer_response(
    answer: Answer, start_response: StartResponse, *, head_only: bool = False
) -> list[bytes]:
    """Start a WSGI response for `answer` and return its body."""
    status = f"{answer.status} {HTTPStatus(answer.status).phrase}"
    headers = [*answer.headers, ("content-length", str(0 if head_only else len(answer.body)))]
    start_response(status, headers)
    return [] if head_only else [answer.body]


class AuthGateWSGIMiddleware:
    """Enforces a `Gate` in front of a WSGI application."""

    def __init__(
        self,
        app: WSGIApp,
        gate: Gate | SyncGate,
        *,
        serve_metadata: bool = True,
        max_body_bytes: int = 64 * 1024,
        timeout: float = 30.0,
    ) -> None:
        self.app = app
        self.sync = gate if isinstance(gate, SyncGate) else SyncGate(gate, timeout=timeout)
        self.serve_metadata = serve_metadata
        self.max_body_bytes = max_body_bytes

    @property
    def gate(self) -> Gate:
        return self.sync.gate

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        gate = self.sync.gate
        method = environ.get("REQUEST_METHOD", "GET").upper()
        head = method == "HEAD"
        if self.serve_metadata:
            answer = gate.resource_metadata_answer(method, environ.get("PATH_INFO") or "/")
            if answer is not None:
                return answer_response(answer, start_response, head_only=head)
        form_body = None
        if gate.wants_body(method, environ.get("CONTENT_TYPE")):
            form_body = _read_body(environ, self.max_body_bytes)
            if form_body is None:
                return answer_response(FORM_TOO_LARGE, start_response)
        decision = self.sync.check(gate_request_from_environ(environ, form_body))
        if decision.answer is not None:
            return answer_response(decision.answer, start_response, head_only=head)
        environ[PRINCIPAL_KEY] = decision.principal
        environ[ROUTE_KEY] = decision.route
        environ[GATE_KEY] = self.sync
        if decision.path is not None:
            environ["PATH_INFO"] = unquote_to_bytes(decision.path).decode("latin-1")
        if decision.rate_limit is not None:
            start_response = _adding_fields(start_response, gate.rate_limit_headers(decision))
        return self.app(environ, start_response)


def _adding_fields(start_response: StartResponse, fields: list[tuple[str, str]]) -> StartResponse:
    """`start_response` that adds `fields` (the RateLimit fields) to the application's headers."""
    if not fields:
        return start_response

    def start_with_fields(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
        return start_response(status, [*headers, *fields], *exc_info)

    return start_with_fields


def _read_body(environ: Environ, limit: int) -> bytes | None:
    """Read the body (at most `limit` bytes) and put it back for the application."""
    length = environ.get("CONTENT_LENGTH") or ""
    stream = environ["wsgi.input"]
    if length.isascii() and length.isdigit():
        if int(length) > limit:
            return None
        body = stream.read(int(length))
    else:
        body = stream.read(limit + 1)
        if len(body) > limit:
            return None
    environ["wsgi.input"] = io.BytesIO(body)
    return bytes(body)
