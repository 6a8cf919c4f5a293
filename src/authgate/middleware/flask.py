"""Flask integration: the WSGI middleware plus view decorators (RFC 6750 §3).

```python
authgate = FlaskAuthGate(app, gate)              # enforces the gate's routes on every request

@app.get("/orders")
@require_scopes("orders:read")
def orders():
    return {"subject": current_principal().subject}
```

`FlaskAuthGate` wraps `app.wsgi_app` in `AuthGateWSGIMiddleware` (pass `enforce_routes=False` to
use the decorators alone, or keep the middleware with the gate's `mode = "dependencies"`: it then
verifies any credential sent and leaves requests no route matches to the decorators). The
decorators use the principal the middleware verified; on a public route, or without the
middleware, they verify the request's credential with the same gate. They apply a `Requirement`,
the same check that gate routes use, and answer refusals with the gate's answer: the status,
`WWW-Authenticate` and JSON body the middleware would send.

`require`, `require_scopes` and `require_roles` take `rate_limit=`, a `RouteRateLimit` (the object
a route's limit is), counted after the requirement holds, exactly as a route's limit: a 429 with
`Retry-After` and the RateLimit fields when used up, and with `[limits] headers = "all"` the
fields on the view's response. `@rate_limited(limit)` is the limit alone, for views without
authentication (it counts the principal the middleware verified, if any, else the client
address).

This module imports Flask; `authgate` itself does not require it (`pip install flask`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

try:
    from flask import Flask, Response, current_app, g, make_response, request
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("authgate.middleware.flask needs Flask: pip install flask") from exc

from authgate.gate.challenge import Answer
from authgate.gate.pipeline import Gate
from authgate.gate.rate_limits import KeyKind, RouteRateLimit
from authgate.middleware.keys import PRINCIPAL_KEY
from authgate.middleware.wsgi import AuthGateWSGIMiddleware, SyncGate, gate_request_from_environ
from authgate.oauth.errors import OAuthError
from authgate.policy.rules import Match, Requirement
from authgate.verifier.core import DPoPCredential
from authgate.verifier.errors import VerifierUnavailable
from authgate.verifier.principal import Principal

__all__ = [
    "FlaskAuthGate",
    "authenticated",
    "current_principal",
    "rate_limited",
    "require",
    "require_roles",
    "require_scopes",
]

F = TypeVar("F", bound=Callable[..., Any])
_EXTENSION = "authgate"


class FlaskAuthGate:
    """Binds a `Gate` to a Flask application."""

    def __init__(
        self,
        app: Flask | None = None,
        gate: Gate | None = None,
        *,
        enforce_routes: bool = True,
        timeout: float = 30.0,
    ) -> None:
        self.sync: SyncGate | None = SyncGate(gate, timeout=timeout) if gate is not None else None
        self.enforce_routes = enforce_routes
        self.timeout = timeout
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, gate: Gate | None = None) -> None:
        if gate is not None:
            self.sync = SyncGate(gate, timeout=self.timeout)
        if self.sync is None:
            raise ValueError("FlaskAuthGate needs a Gate")
        app.extensions[_EXTENSION] = self
        if self.enforce_routes:
            app.wsgi_app = AuthGateWSGIMiddleware(app.wsgi_app, self.sync)  # type: ignore[method-assign]

    def authenticate(self) -> Principal:
        """The current request's principal: the middleware's, or verified now. Raises OAuthError."""
        found = request.environ.get(PRINCIPAL_KEY)
        if isinstance(found, Principal):
            return found
        if self.sync is None:
            raise RuntimeError("FlaskAuthGate is not initialised")
        gate = self.sync.gate
        self.sync.ensure_started()
        credential = gate.extract(gate_request_from_environ(request.environ))
        principal = None
        if type(credential) is not DPoPCredential:  # a DPoP proof's jti is claimed in the store
            principal = gate.verifier.authenticate_nowait(credential)
        if principal is None:  # a token not in the cache: verify on the gate's loop
            principal = self.sync.run(gate.authenticate_credential(credential))
        request.environ[PRINCIPAL_KEY] = principal
        return principal

    def refusal(self, error: OAuthError, scopes: tuple[str, ...] = ()) -> Response:
        """The Flask response for a refusal (`scopes`: what the view needs, named on a 401)."""
        if self.sync is None:
            raise RuntimeError("FlaskAuthGate is not initialised")
        answer = self.sync.gate.refusal_for(error, scopes=scopes).answer
        if answer is None:  # pragma: no cover - a refusal always answers
            raise RuntimeError("no answer for a refusal")
        return _response(answer)

    def admit(
        self, rate_limit: RouteRateLimit, principal: Principal | None
    ) -> Response | list[tuple[str, str]]:
        """Count the current request against `rate_limit`: the refusal's response (429, or 503
        for a fail-closed limit whose store is down), or the RateLimit fields for the view's
        response (none unless `[limits] headers = "all"`)."""
        if self.sync is None:
            raise RuntimeError("FlaskAuthGate is not initialised")
        gate = self.sync.gate
        credential = None
        if rate_limit.key is KeyKind.API_KEY and principal is not None:
            try:  # the key it was verified from
                credential = gate.extract(gate_request_from_environ(request.environ))
            except OAuthError:
                credential = None
        decision = self.sync.admit(
            rate_limit, principal, credential=credential, client=request.remote_addr or None
        )
        if decision.answer is not None:
            return _response(decision.answer)
        return gate.rate_limit_headers(decision)


def _response(answer: Answer) -> Response:
    return Response(answer.body, status=answer.status, headers=list(answer.headers))


def _extension() -> FlaskAuthGate:
    found = current_app.extensions.get(_EXTENSION)
    if not isinstance(found, FlaskAuthGate):
        # A wiring mistake in the application, not a type error in an argument.
        raise RuntimeError("no FlaskAuthGate on this application")  # noqa: TRY004
    return found


def current_principal() -> Principal | None:
    """The principal of the current request, if one was authenticated."""
    found = request.environ.get(PRINCIPAL_KEY)
    return found if isinstance(found, Principal) else None


def require(
    requirement: Requirement | None = None, *, rate_limit: RouteRateLimit | None = None
) -> Callable[[F], F]:
    """Decorate a view: authenticate, then apply `requirement` (if any), then count the request
    against `rate_limit` (if any)."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            extension = _extension()
            scopes = requirement.scopes if requirement is not None else ()
            try:
                principal = extension.authenticate()
            except OAuthError as exc:
                return extension.refusal(exc, scopes)
            except TimeoutError:
                return extension.refusal(VerifierUnavailable("verifier"))
            if requirement is not None:
                denied = requirement.check(principal)
                if denied is not None:
                    return extension.refusal(denied)
            g.authgate_principal = principal
            if rate_limit is None:
                return view(*args, **kwargs)
            call = functools.partial(view, *args, **kwargs)
            return _limited_view(extension, rate_limit, principal, call)

        return wrapper  # type: ignore[return-value]

    return decorate


def rate_limited(rate_limit: RouteRateLimit) -> Callable[[F], F]:
    """Decorate a view that needs no authentication: count its requests against `rate_limit`
    (by the principal the middleware verified, if any, else by the client address)."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            call = functools.partial(view, *args, **kwargs)
            return _limited_view(_extension(), rate_limit, current_principal(), call)

        return wrapper  # type: ignore[return-value]

    return decorate


def _limited_view(
    extension: FlaskAuthGate,
    rate_limit: RouteRateLimit,
    principal: Principal | None,
    call: Callable[[], Any],
) -> Any:
    """The view's response once its request is admitted (with the RateLimit fields, if any), or
    the limit's refusal."""
    admitted = extension.admit(rate_limit, principal)
    if isinstance(admitted, Response):
        return admitted
    result = call()
    if not admitted:
        return result
    response = make_response(result)
    response.headers.extend(admitted)
    return response


def authenticated(view: F) -> F:
    """Decorate a view that needs an authenticated caller and nothing more."""
    return require()(view)


def require_scopes(
    *scopes: str, match: str = "all", rate_limit: RouteRateLimit | None = None
) -> Callable[[F], F]:
    """Require all (or, with `match="any"`, one) of `scopes`: 403 `insufficient_scope` otherwise."""
    return require(Requirement(scopes=scopes, scopes_match=Match(match)), rate_limit=rate_limit)


def require_roles(
    *roles: str, match: str = "all", rate_limit: RouteRateLimit | None = None
) -> Callable[[F], F]:
    """Require all (or, with `match="any"`, one) of `roles`."""
    return require(Requirement(roles=roles, roles_match=Match(match)), rate_limit=rate_limit)
