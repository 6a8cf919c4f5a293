"""The ASGI application: routes, error rendering, logging, background maintenance.

Every failure is answered, never dropped: OAuth errors render as RFC 6749 §5.2 JSON, unknown paths
as 404 and wrong methods as 405 JSON, an unreachable or stalled database (an error, or a lock,
statement or pool timeout) as 503 `temporarily_unavailable` with `Retry-After`, and anything
unexpected as 500 `server_error` with the traceback (without exception messages, which might quote
input) in the log; a client that hangs up mid-body is logged as 499, not as a fault. The access
log names method, path, status and client_id, never query strings, bodies or headers, so no secret
or token reaches a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authgate import tracing
from authgate.http_forwarding import TrustedProxies
from authgate.oauth.errors import InvalidRequest, OAuthError, ServerError, TemporarilyUnavailable
from authgate.server.auth_server import AuthServer
from authgate.server.config import Config
from authgate.server.config_loader import load_config
from authgate.server.endpoints.authorize import authorization_endpoint
from authgate.server.endpoints.consent import consent_endpoint
from authgate.server.endpoints.cors import ApiCors
from authgate.server.endpoints.device_authorization import device_authorization_endpoint
from authgate.server.endpoints.device_verification import (
    device_page_endpoint,
    device_submit_endpoint,
)
from authgate.server.endpoints.discovery import jwks_endpoint, metadata_endpoint
from authgate.server.endpoints.introspection import introspection_endpoint
from authgate.server.endpoints.login import login_endpoint
from authgate.server.endpoints.logout import end_session_endpoint
from authgate.server.endpoints.pushed_authorization import pushed_authorization_endpoint
from authgate.server.endpoints.rate_limited import limited
from authgate.server.endpoints.registration import (
    client_configuration_endpoint,
    registration_endpoint,
)
from authgate.server.endpoints.responses import json_response, oauth_error_response
from authgate.server.endpoints.revocation import revocation_endpoint
from authgate.server.endpoints.static_files import static_files
from authgate.server.endpoints.token import token_endpoint
from authgate.server.endpoints.userinfo import userinfo_endpoint
from authgate.server.observability.admin_listener import AdminListener, public_probe_routes
from authgate.server.observability.metrics import (
    ServerCollector,
    ServerMetrics,
    endpoint_names,
    scrape_endpoint,
)
from authgate.server.observability.middleware import RequestObservation
from authgate.server.observability.worker_metrics import WorkerMetrics
from authgate.server.paths import ENDPOINT_PATHS, STATIC_PATH, issuer_path, metadata_paths
from authgate.server.storage import Storage

__all__ = ["create_app", "create_app_from_environment"]

_log = logging.getLogger("authgate.server")
_access = logging.getLogger("authgate.access")
_PURGE_INTERVAL = 600
_CLIENT_GONE = 499  # the access log's status for a request whose client left (nginx's code)


_Handler = Callable[[Request, Exception], Awaitable[Response]]


class _MethodNotAllowed(InvalidRequest):
    status_code = 405


def create_app(
    config: Config,
    *,
    storage: Storage | None = None,
    clock: Callable[[], float] = time.time,
    background: bool = True,
) -> Starlette:
    """The authorization server for `config`. `storage`/`clock` are injected by tests;
    `background=False` leaves key maintenance to explicit calls."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if config.tracing.enabled:  # before storage opens, so that its engine is traced
            tracing.enable("authgate-server")
        server = await AuthServer.start(
            config,
            storage=storage,
            clock=clock,
        )
        app.state.authgate = server
        try:
            listener = await AdminListener.open(config.admin, server, metrics_endpoint)
        except BaseException:
            await server.close()
            raise
        tasks = _background_tasks(server, background, metrics, workers)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if listener is not None:
                await listener.stop()
            await server.close()

    metrics = ServerMetrics()
    workers = WorkerMetrics.from_environment()
    metrics_endpoint = scrape_endpoint(metrics, workers)
    routes = _routes(config, metrics_endpoint)
    realm = config.issuer

    async def on_oauth_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, OAuthError):  # registered for OAuthError only
            raise exc
        _log.info(
            "%s %s refused: %s%s",
            request.method,
            request.url.path,
            exc.error,
            f" ({exc.debug})" if exc.debug else "",
        )
        return oauth_error_response(exc, realm)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, HTTPException):  # registered for HTTPException only
            raise exc
        if exc.status_code == 405:
            response = oauth_error_response(_MethodNotAllowed("method not allowed"), realm)
            if exc.headers and "Allow" in exc.headers:  # the route's methods (RFC 9110 §15.5.6)
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        return json_response({"error": "not_found"}, 404 if exc.status_code == 404 else 400)

    async def on_database_error(request: Request, exc: Exception) -> Response:
        _log.error(
            "database unavailable during %s %s: %s",
            request.method,
            request.url.path,
            type(exc).__name__,
        )
        error = TemporarilyUnavailable("the service is temporarily unavailable")
        return oauth_error_response(error, realm)

    handlers: dict[Any, _Handler] = {
        OAuthError: on_oauth_error,
        HTTPException: on_http_error,
        DBAPIError: on_database_error,
        OSError: on_database_error,
        TimeoutError: on_database_error,  # a driver's or a lock's time limit
        PoolTimeout: on_database_error,  # no pooled connection within the pool timeout
    }
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)
    # Innermost: POST /token reaches its endpoint without the exception layer and the router.
    token_path = issuer_path(config.issuer) + ENDPOINT_PATHS["token"]
    app.add_middleware(_TokenRoute, path=token_path, handlers=handlers)
    browser_callable = [
        issuer_path(config.issuer) + ENDPOINT_PATHS[name]
        for name in (
            "token",
            "revocation",
            "userinfo",
            "device_authorization",
            "jwks",
            "pushed_authorization_request",  # a browser app may push its request (RFC 9126)
        )
    ]
    app.add_middleware(ApiCors, paths=[*browser_callable, *metadata_paths(config.issuer)])
    route_paths = frozenset(r.path for r in routes if isinstance(r, Route))
    app.add_middleware(_GuardMiddleware, realm=realm, paths=route_paths)
    # Outermost: the request id is set before the access line and any error line is written.
    proxies = TrustedProxies(config.http.trusted_proxies)
    app.add_middleware(
        RequestObservation, proxies=proxies, metrics=metrics, names=endpoint_names(config.issuer)
    )
    return app


def _background_tasks(
    server: AuthServer, background: bool, metrics: ServerMetrics, workers: WorkerMetrics | None
) -> list[asyncio.Task[None]]:
    """Key maintenance and purging (unless `background` is off), and, with several worker
    processes, the writing of this one's metrics for the others (`worker_metrics`)."""
    tasks = []
    if background:
        tasks = [
            asyncio.create_task(server.keys.run()),
            asyncio.create_task(_purge_forever(server)),
        ]
    if workers is not None:
        collect = lambda: ServerCollector(metrics, server).collect()  # noqa: E731
        tasks.append(asyncio.create_task(workers.run(collect)))
    return tasks


def _routes(
    config: Config, metrics_endpoint: Callable[[Request], Awaitable[Response]]
) -> list[BaseRoute]:
    """The server's endpoints and pages, below the issuer's path, and the metadata at each of its
    well-known URLs (`paths.metadata_paths`)."""
    base = issuer_path(config.issuer)
    at = {name: base + path for name, path in ENDPOINT_PATHS.items()}
    routes = [
        Route(at["token"], token_endpoint, methods=["POST"]),
        Route(at["introspection"], limited(introspection_endpoint), methods=["POST"]),
        Route(at["revocation"], limited(revocation_endpoint), methods=["POST"]),
        Route(at["jwks"], jwks_endpoint, methods=["GET"]),
        *(
            Route(path, metadata_endpoint, methods=["GET"])
            for path in metadata_paths(config.issuer)
        ),
        # The user-facing flows.
        _without_head(
            Route(
                at["authorization"],
                limited(authorization_endpoint, per_address="authorize"),
                methods=["GET", "POST"],
            )
        ),
        Route(at["login"], login_endpoint, methods=["POST"]),
        Route(at["consent"], limited(consent_endpoint, per_address="consent"), methods=["POST"]),
        Route(at["end_session"], end_session_endpoint, methods=["GET", "POST"]),
        Route(at["device"], limited(device_page_endpoint, per_address="device"), methods=["GET"]),
        Route(
            at["device"], limited(device_submit_endpoint, per_address="device"), methods=["POST"]
        ),
        Route(at["device_authorization"], limited(device_authorization_endpoint), methods=["POST"]),
        Route(at["userinfo"], userinfo_endpoint, methods=["GET", "POST"]),
        Route(at["pushed_authorization_request"], pushed_authorization_endpoint, methods=["POST"]),
        Mount(base + STATIC_PATH, static_files(config.pages.static_dirs), name="static"),
        # Probes and metrics (not the issuer's): no credentials; with `[admin] listen` only
        # /healthz stays here.
        *public_probe_routes(config.admin, metrics_endpoint),
    ]
    if config.registration.enabled:  # RFC 7591 §3, RFC 7592 §2; absent (404) when off
        registration = at["registration"]
        routes += [
            Route(registration, registration_endpoint, methods=["POST"]),
            _without_head(
                Route(
                    f"{registration}/{{client_id}}",
                    client_configuration_endpoint,
                    methods=["GET", "PUT", "DELETE"],
                )
            ),
        ]
    return routes


def _without_head(route: Route) -> Route:
    """`route` without the HEAD that Starlette adds to every GET route: HEAD must be safe (RFC
    9110 §9.3.2) and link checkers send it, but GET /authorize can issue a code. Starlette then
    answers HEAD with 405 and `Allow: GET, POST`."""
    if route.methods is not None:
        route.methods.discard("HEAD")
    return route


def create_app_from_environment() -> Starlette:
    """The app for `authgate serve` workers: configuration from `AUTHGATE_*` variables."""
    return create_app(load_config(None, os.environ))


async def _purge_forever(server: AuthServer) -> None:
    while True:
        await asyncio.sleep(_PURGE_INTERVAL)
        try:
            removed = await server.storage.purge_expired(int(server.clock()))
            if removed:
                _log.info("purged %d expired token records", removed)
        except Exception:  # noqa: BLE001 - a background loop must survive any failure
            _log.exception("purging expired records failed; will retry")


class _TokenRoute:
    """`POST /token`, the most requested endpoint, answered without Starlette's
    `ExceptionMiddleware`, router and request wrapper (they re-wrap `send` twice and match the
    routes; together about a tenth of a token's CPU in process): the same endpoint, and an
    exception it raises is answered by the same handlers, looked up by the exception's class as
    Starlette does; one no handler takes goes on to `_GuardMiddleware` (500). Every other request,
    another method on the path included (405 with `Allow`), goes through the router."""

    def __init__(self, app: ASGIApp, path: str, handlers: Mapping[Any, _Handler]) -> None:
        self.app = app
        self.path = path
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Under a `root_path` (never set by `serve`) the router decides, as it strips it.
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != self.path
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await token_endpoint(request)
        except Exception as exc:
            handler = next(
                (self.handlers[cls] for cls in type(exc).__mro__ if cls in self.handlers), None
            )
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)


class _GuardMiddleware:
    """Outermost layer: the access log, and a JSON 500 for anything that escaped."""

    def __init__(self, app: ASGIApp, realm: str, paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.realm = realm
        self.paths = paths  # the routes' paths: span names (any other path is named by method)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if tracing.active():
            await self._traced(scope, receive, send)
        else:
            await self._guarded(scope, receive, send)

    async def _traced(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`_guarded` inside a server span, a child of the caller's W3C `traceparent` if any."""
        method: str = scope["method"]
        path: str = scope["path"]
        # Only known routes name a span: a scanner's paths must not each make a new span name.
        name = f"{method} {path}" if path in self.paths else method
        carrier = {
            key: value.decode("latin-1")
            for name_, value in scope["headers"]
            if (key := name_.decode("latin-1").lower()) in ("traceparent", "tracestate")
        }
        attributes = {"http.request.method": method, "url.path": _safe(path)}
        if path in self.paths:
            attributes["http.route"] = path
        span = tracing.start_span(
            name, kind="server", parent=tracing.extract_context(carrier), attributes=attributes
        )
        if span is None:  # tracing was turned off meanwhile
            await self._guarded(scope, receive, send)
            return
        status = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            with tracing.current(span):
                await self._guarded(scope, receive, send_wrapper)
        finally:
            if status:
                span.set_attribute("http.response.status_code", status)
            if status >= 500:
                tracing.mark_error(span, str(status))
            client_id = scope.get("state", {}).get("client_id")
            if client_id:
                span.set_attribute("oauth.client_id", _safe(client_id))
            span.end()

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except ClientDisconnect:
            # The client hung up mid-body (or `serve`'s body timeout ended it): nobody to answer.
            if status == 0:
                status = _CLIENT_GONE
        except Exception as exc:  # noqa: BLE001 - the last line of defence answers 500
            frames = "".join(traceback.format_tb(exc.__traceback__))
            _log.error(
                "unhandled %s in %s %s\n%s",
                type(exc).__name__,
                scope["method"],
                scope["path"],
                frames,
            )
            if status == 0:
                status = 500
                response = oauth_error_response(ServerError("internal error"), self.realm)
                await response(scope, receive, send)
        finally:
            if _access.isEnabledFor(logging.INFO):
                state: dict[str, Any] = scope.get("state", {})
                _access.info(
                    "%s %s %d %.1fms client_id=%s",
                    scope["method"],
                    _safe(scope["path"]),
                    status,
                    (time.perf_counter() - started) * 1000,
                    _safe(state.get("client_id", "-")),
                )


def _safe(value: str) -> str:
    """A log-safe rendering of a request path or id: printable, bounded."""
    return "".join(ch if ch.isprintable() and ch != " " else "?" for ch in value[:200])
