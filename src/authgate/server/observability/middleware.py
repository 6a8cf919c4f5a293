"""The outermost ASGI layer: gives each request its id (in a context variable, so that every log
line of the request carries it, and in the `X-Request-Id` response header) and counts the
answered request in `ServerMetrics`, with the access tokens a successful token response issued
(noted in `counters.issued_tokens`). It reads no body and touches no database."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authgate.http_forwarding import TrustedProxies
from authgate.server.observability.counters import IssuedTokens, issued_tokens
from authgate.server.observability.metrics import ENDPOINT_NAMES, ServerMetrics
from authgate.server.observability.request_ids import (
    HEADER,
    REQUEST_ID,
    accept_request_id,
    new_request_id,
)

__all__ = ["RequestObservation"]


class RequestObservation:
    """Request id and metrics for every HTTP request."""

    def __init__(
        self,
        app: ASGIApp,
        proxies: TrustedProxies,
        metrics: ServerMetrics,
        names: Mapping[str, str] = ENDPOINT_NAMES,
    ) -> None:
        self.app = app
        self.proxies = proxies
        self.metrics = metrics
        self.names = names  # path -> endpoint label (`metrics.endpoint_names` for the issuer)
        self._any_trusted = bool(proxies)  # without trusted proxies, every id is generated

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        if self._any_trusted:
            sent = None
            for name, value in scope["headers"]:
                if name == HEADER:
                    sent = value
                    break
            client = scope.get("client")
            request_id = accept_request_id(sent, client[0] if client else None, self.proxies)
        else:  # `accept_request_id`'s answer without looking: no peer is a trusted proxy
            request_id = new_request_id()
        token = REQUEST_ID.set(request_id)
        endpoint = self.names.get(scope["path"], "other")
        issued = IssuedTokens() if endpoint == "token" else None
        issued_token = issued_tokens.set(issued)
        echoed = request_id.encode("ascii")
        status = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", echoed)]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            REQUEST_ID.reset(token)
            issued_tokens.reset(issued_token)
            # No answer started: the client left (the access log's 499, nginx's code).
            self.metrics.observe(endpoint, status or 499, time.perf_counter() - started)
            if issued is not None and status == 200:
                state: dict[str, Any] = scope.get("state", {})
                grant = state.get("grant_type")
                if isinstance(grant, str):  # a refresh answered again issued nothing new
                    for token_format, alg in issued.tokens:
                        self.metrics.tokens_issued[grant, token_format, alg] += 1
