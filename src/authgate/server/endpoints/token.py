"""The token endpoint (RFC 6749 §3.2, §5): authenticate the client, check that it may use the
`grant_type` (registered for it; a public client only where the grant allows public clients),
then dispatch to the grant.

`resource` may repeat (RFC 8707 §2); every other parameter may appear once (RFC 6749 §3.2).
A `DPoP` proof (RFC 9449 §5) binds what the grant issues to its key (`tokens.dpop`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from authgate.oauth.errors import InvalidRequest, UnauthorizedClient, UnsupportedGrantType
from authgate.server.auth_server import AuthServer
from authgate.server.endpoints.client_requests import read_client_form
from authgate.server.endpoints.responses import NO_STORE, json_response
from authgate.server.tokens.dpop import binding

__all__ = ["token_endpoint"]


async def token_endpoint(request: Request) -> Response:
    """POST /token."""
    server: AuthServer = request.app.state.authgate
    # The `token` limit per authenticated client (counting the id a request merely names would
    # let anyone spend another client's quota), decided with the lockouts in one store call.
    form, client = await read_client_form(
        request, server, endpoint="token", repeatable=("resource",), limit="token"
    )
    decisions = request.state.rate_limits
    grant_type = form.get("grant_type")
    if grant_type is None:
        raise InvalidRequest("grant_type is required")
    handler = server.grants.get(grant_type)
    if handler is None:
        raise UnsupportedGrantType("unsupported grant_type")
    if grant_type not in client.grant_types:
        raise UnauthorizedClient("this client may not use this grant type")
    if client.is_public and not handler.allows_public_clients:
        # The one place a grant's `allows_public_clients` is enforced (RFC 6749 §4.4: client
        # credentials need a confidential client).
        raise UnauthorizedClient(f"public clients cannot use {grant_type}")
    dpop = server.dpop
    jkt = await dpop.proven_key(request.headers.getlist("dpop"), client) if dpop else None
    with binding(jkt):  # RFC 9449 §5: what the grant issues is bound to the proof's key
        response = await handler.handle(form, client, request.is_disconnected)
    request.state.grant_type = handler.grant_type  # counted in the metrics (a bounded label)
    nonce = dpop.nonce_header() if dpop else None
    limits = server.limits.admitted_headers(decisions)
    if not nonce and not limits:  # the RateLimit fields only with `[limits] headers = "all"`
        return json_response(response.to_dict())
    return json_response(response.to_dict(), headers={**NO_STORE, **(nonce or {}), **limits})
