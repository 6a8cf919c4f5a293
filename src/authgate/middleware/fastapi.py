"""FastAPI dependencies over the gate (RFC 6750 §3: 401/403 with `WWW-Authenticate`).

```python
app.add_middleware(AuthGateMiddleware, gate=gate)

@app.get("/orders")
async def orders(principal: Principal = Depends(require_scopes("orders:read"))): ...

@app.websocket("/feed")
async def feed(ws: WebSocket, principal: Principal = Depends(current_principal)): ...
```

`current_principal` returns the principal the middleware verified; on a route the gate lets
through without a credential (a public route, or any request in dependencies mode), or without the
middleware (`use_gate(app, gate)`), it verifies the request's credential itself with the same
gate. `require_scopes`, `require_roles` and `require` build dependencies that apply a
`Requirement`, the same object and check that gate routes use.

Refusals raise `GateRefusal` with the gate's complete answer (status, `WWW-Authenticate`,
`Retry-After`, `Cache-Control` and the RFC 6750 JSON body), which `AuthGateMiddleware` sends, or,
without the middleware, the exception handler `use_gate` registers: so a dependency's refusal is
the same answer, byte for byte, as the middleware's (not FastAPI's `{"detail": …}`), and no
handler of the application's is needed. In WebSocket endpoints they raise `WebSocketException`
(code 1008).

This module imports FastAPI; `authgate` itself does not require it (`pip install fastapi`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

try:
    from fastapi import Depends, WebSocketException
    from starlette.requests import HTTPConnection, Request
    from starlette.responses import Response
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("authgate.middleware.fastapi needs FastAPI: pip install fastapi") from exc

from authgate.gate.pipeline import Gate
from authgate.middleware.asgi import GateRefusal, gate_request_from_scope
from authgate.middleware.keys import GATE_KEY, PRINCIPAL_KEY
from authgate.oauth.errors import OAuthError
from authgate.policy.rules import Match, Requirement
from authgate.verifier.principal import Principal

__all__ = [
    "GateRefusal",
    "current_principal",
    "require",
    "require_roles",
    "require_scopes",
    "use_gate",
]


def use_gate(app: object, gate: Gate) -> None:
    """Make `gate` available to the dependencies of `app` without the middleware, and answer
    their refusals as the gate does (an exception handler for `GateRefusal`)."""
    app.state.authgate_gate = gate  # type: ignore[attr-defined]
    app.add_exception_handler(GateRefusal, _refusal_response)  # type: ignore[attr-defined]


async def _refusal_response(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, GateRefusal):  # pragma: no cover - registered for GateRefusal only
        raise exc
    answer = exc.answer
    body = b"" if request.method == "HEAD" else answer.body  # as the middleware sends it
    return Response(body, status_code=answer.status, headers=dict(answer.headers))


def _gate_of(connection: HTTPConnection) -> Gate:
    gate = connection.scope.get(GATE_KEY) or getattr(connection.app.state, "authgate_gate", None)
    if not isinstance(gate, Gate):
        # A wiring mistake in the application, not a type error in an argument.
        message = "no authgate Gate: add AuthGateMiddleware or call use_gate(app, gate)"
        raise RuntimeError(message)  # noqa: TRY004
    return gate


def _refusal(connection: HTTPConnection, gate: Gate, error: OAuthError) -> Exception:
    answer = gate.refusal_for(error).answer
    if connection.scope["type"] == "websocket":
        return WebSocketException(code=1008, reason=error.description)
    if answer is None:  # pragma: no cover - a refusal always answers
        raise RuntimeError("no answer for a refusal")
    return GateRefusal(answer)


async def current_principal(connection: HTTPConnection) -> Principal:
    """The authenticated caller, or a 401/400/503 refusal."""
    found = connection.scope.get(PRINCIPAL_KEY)
    if isinstance(found, Principal):
        return found
    gate = _gate_of(connection)
    await gate.start()  # idempotent; only without the middleware does it do anything
    try:
        principal = await gate.authenticate(gate_request_from_scope(connection.scope))
    except OAuthError as exc:
        raise _refusal(connection, gate, exc) from None
    connection.scope[PRINCIPAL_KEY] = principal
    return principal


def require(requirement: Requirement) -> Callable[..., Awaitable[Principal]]:
    """A dependency that returns the principal if it meets `requirement`, else refuses (403)."""

    async def dependency(
        connection: HTTPConnection, principal: Annotated[Principal, Depends(current_principal)]
    ) -> Principal:
        denied = requirement.check(principal)
        if denied is not None:
            raise _refusal(connection, _gate_of(connection), denied)
        return principal

    return dependency


def require_scopes(*scopes: str, match: str = "all") -> Callable[..., Awaitable[Principal]]:
    """Require all (or, with `match="any"`, one) of `scopes`: 403 `insufficient_scope` otherwise."""
    return require(Requirement(scopes=scopes, scopes_match=Match(match)))


def require_roles(*roles: str, match: str = "all") -> Callable[..., Awaitable[Principal]]:
    """Require all (or, with `match="any"`, one) of `roles`."""
    return require(Requirement(roles=roles, roles_match=Match(match)))
