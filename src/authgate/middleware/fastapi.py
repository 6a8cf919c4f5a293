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
`Requirement`, the same object and check that gate routes use. Each takes `rate_limit=`, a
`RouteRateLimit` (the object a route's limit is), counted after the requirement holds, exactly as
a route's limit: per subject, client id, API key, claim or address, with tiers. `rate_limited`
is the limit alone, for endpoints without authentication (it counts the principal the middleware
verified, if any, else the client address).

Refusals raise `GateRefusal` with the gate's complete answer (status, `WWW-Authenticate`,
`Retry-After`, `Cache-Control`, the RateLimit fields of a 429 and the JSON body), which
`AuthGateMiddleware` sends, or,
without the middleware, the exception handler `use_gate` registers: so a dependency's refusal is
the same answer, byte for byte, as the middleware's (not FastAPI's `{"detail": …}`), and no
handler of the application's is needed. In WebSocket endpoints they raise `WebSocketException`
(code 1008; 1013 "try again later" for a rate limit). With `[limits] headers = "all"` an allowed
request's RateLimit fields are added to the response: by the middleware when it runs, else through
FastAPI's `Response` parameter (kept only when the endpoint does not return a `Response` itself).

This module imports FastAPI; `authgate` itself does not require it (`pip install fastapi`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

try:
    from fastapi import WebSocketException
    from starlette.requests import HTTPConnection, Request
    from starlette.responses import Response
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("authgate.middleware.fastapi needs FastAPI: pip install fastapi") from exc

from authgate.gate.pipeline import Gate
from authgate.gate.rate_limits import KeyKind, RouteRateLimit
from authgate.middleware.asgi import GateRefusal, gate_request_from_scope
from authgate.middleware.keys import GATE_KEY, PRINCIPAL_KEY, RESPONSE_FIELDS_KEY
from authgate.oauth.errors import OAuthError
from authgate.policy.rules import Match, Requirement
from authgate.verifier.principal import Principal

__all__ = [
    "GateRefusal",
    "current_principal",
    "rate_limited",
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


def _refusal(
    connection: HTTPConnection, gate: Gate, error: OAuthError, scopes: tuple[str, ...] = ()
) -> Exception:
    answer = gate.refusal_for(error, scopes=scopes).answer
    if connection.scope["type"] == "websocket":
        return WebSocketException(code=1008, reason=error.description)
    if answer is None:  # pragma: no cover - a refusal always answers
        raise RuntimeError("no answer for a refusal")
    return GateRefusal(answer)


async def current_principal(connection: HTTPConnection) -> Principal:
    """The authenticated caller, or a 401/400/503 refusal."""
    return await _authenticated(connection, ())


async def _authenticated(connection: HTTPConnection, scopes: tuple[str, ...]) -> Principal:
    """`current_principal`, whose 401 names `scopes` (RFC 6750 §3)."""
    found = connection.scope.get(PRINCIPAL_KEY)
    if isinstance(found, Principal):
        return found
    gate = _gate_of(connection)
    await gate.start()  # idempotent; only without the middleware does it do anything
    try:
        principal = await gate.authenticate(gate_request_from_scope(connection.scope))
    except OAuthError as exc:
        raise _refusal(connection, gate, exc, scopes) from None
    connection.scope[PRINCIPAL_KEY] = principal
    return principal


def require(
    requirement: Requirement | None = None, *, rate_limit: RouteRateLimit | None = None
) -> Callable[..., Awaitable[Principal]]:
    """A dependency that returns the principal if it meets `requirement` (else 403), and counts
    its request against `rate_limit` (429 when used up)."""

    scopes = requirement.scopes if requirement is not None else ()

    async def dependency(connection: HTTPConnection, response: Response) -> Principal:
        principal = await _authenticated(connection, scopes)
        if requirement is not None:
            denied = requirement.check(principal)
            if denied is not None:
                raise _refusal(connection, _gate_of(connection), denied)
        if rate_limit is not None:
            await _count(connection, response, rate_limit, principal)
        return principal

    return dependency


def require_scopes(
    *scopes: str, match: str = "all", rate_limit: RouteRateLimit | None = None
) -> Callable[..., Awaitable[Principal]]:
    """Require all (or, with `match="any"`, one) of `scopes`: 403 `insufficient_scope` otherwise."""
    return require(Requirement(scopes=scopes, scopes_match=Match(match)), rate_limit=rate_limit)


def require_roles(
    *roles: str, match: str = "all", rate_limit: RouteRateLimit | None = None
) -> Callable[..., Awaitable[Principal]]:
    """Require all (or, with `match="any"`, one) of `roles`."""
    return require(Requirement(roles=roles, roles_match=Match(match)), rate_limit=rate_limit)


def rate_limited(rate_limit: RouteRateLimit) -> Callable[..., Awaitable[Principal | None]]:
    """A dependency that counts the request against `rate_limit` without asking for a credential:
    the principal the middleware verified (returned), or else the client address, is counted."""

    async def dependency(connection: HTTPConnection, response: Response) -> Principal | None:
        found = connection.scope.get(PRINCIPAL_KEY)
        principal = found if isinstance(found, Principal) else None
        await _count(connection, response, rate_limit, principal)
        return principal

    return dependency


async def _count(
    connection: HTTPConnection,
    response: Response,
    rate_limit: RouteRateLimit,
    principal: Principal | None,
) -> None:
    """Count the request (the gate's step 6); raise its 429/503 refusal, or add the RateLimit
    fields of an allowed answer when `[limits] headers = "all"`."""
    gate = _gate_of(connection)
    credential = None
    if rate_limit.key is KeyKind.API_KEY and principal is not None:
        with contextlib.suppress(OAuthError):  # the key it was verified from
            credential = gate.extract(gate_request_from_scope(connection.scope))
    client = connection.client.host if connection.client is not None else None
    decision = await gate.admit(rate_limit, principal, credential=credential, client=client)
    answer = decision.answer
    if answer is not None:
        if connection.scope["type"] == "websocket":
            reason = decision.error.description if decision.error is not None else None
            raise WebSocketException(code=1013, reason=reason)  # IANA close code: try again later
        raise GateRefusal(answer)
    fields = gate.rate_limit_headers(decision)
    if not fields or connection.scope["type"] != "http":
        return
    added = connection.scope.get(RESPONSE_FIELDS_KEY)
    if isinstance(added, list):  # the middleware adds them to whatever response is sent
        added.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in fields)
    else:
        for name, value in fields:
            response.headers.append(name, value)
