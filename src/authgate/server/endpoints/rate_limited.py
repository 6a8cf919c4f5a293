"""Rate limits around whole endpoints (`ServerLimits`): the pages counted per client address
(`/authorize`, `/consent`, `/device`), and the RateLimit fields of admitted answers when
`[limits] headers = "all"` (the per-caller limits are counted in `client_requests`, after client
authentication, and left in `request.state.rate_limits`).

A page refused by its limit gets 429 with `Retry-After` and the RateLimit fields, and a short
plain-text body (a person reads it; an OAuth error body would mean nothing to them, and nothing
may be redirected to a client before the request is checked).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from authgate.limits import Decision, refusal
from authgate.server.auth_server import AuthServer
from authgate.server.endpoints.browser import request_address
from authgate.server.endpoints.responses import NO_STORE

__all__ = ["limited"]

Endpoint = Callable[[Request], Awaitable[Response]]


def limited(endpoint: Endpoint, *, per_address: str | None = None) -> Endpoint:
    """`endpoint` counted per client address under the limit `per_address` (if any), with the
    admitted answer's RateLimit fields when the server sends them on every answer."""

    async def limited_endpoint(request: Request) -> Response:
        server: AuthServer = request.app.state.authgate
        limits = server.limits
        decisions: list[Decision] = []
        if per_address is not None:
            decisions = await limits.address_request(per_address, request_address(request, server))
            if (answer := refusal(decisions)) is not None:
                wait = dict(answer.headers).get("Retry-After", "1")
                text = (
                    f"Too many requests from your network. Try again in {wait} seconds."
                    if answer.status == 429
                    else f"This page is briefly unavailable. Try again in {wait} seconds."
                )
                return PlainTextResponse(
                    text, answer.status, headers={**NO_STORE, **dict(answer.headers)}
                )
        response = await endpoint(request)
        if limits.all_headers:
            decisions += getattr(request.state, "rate_limits", [])
            response.headers.update(limits.admitted_headers(decisions))
        return response

    limited_endpoint.__name__ = getattr(endpoint, "__name__", "endpoint")
    limited_endpoint.__doc__ = endpoint.__doc__
    return limited_endpoint
