"""Token introspection (RFC 7662) for JWT and opaque access tokens.

The caller authenticates as a client (§2.1). It learns that a token is active only when the token
was issued to it or when it may introspect the token's API (`client create --introspect API`);
otherwise, as for unknown, expired, revoked or foreign tokens, the answer is `{"active": false}`
(§2.2), which gives a token scanner nothing. A token whose client was deleted is inactive.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from authgate.oauth.errors import InvalidRequest
from authgate.server.auth_server import AuthServer
from authgate.server.endpoints.client_requests import read_client_form
from authgate.server.endpoints.responses import json_response
from authgate.server.models import Client
from authgate.server.tokens.formats import TokenInfo

__all__ = ["introspection_endpoint"]

_INACTIVE = {"active": False}


def may_introspect(caller: Client, info: TokenInfo) -> bool:
    """Whether `caller` may learn about this token."""
    if info.client_id == caller.client_id:
        return True
    access = caller.access_to(info.audience)
    return access is not None and access.may_introspect


async def introspection_endpoint(request: Request) -> Response:
    """POST /introspect."""
    server: AuthServer = request.app.state.authgate
    form, caller = await read_client_form(
        request,
        server,
        endpoint="introspection",
        allow_public=False,  # RFC 7662 §2.1: the caller must be authenticated
        limit="introspection",
    )
    token = form.get("token")
    if token is None:
        raise InvalidRequest("token is required")
    # token_type_hint is only a hint (§2.1): every kind of token is looked up regardless.
    info = await server.inspector.find(token)
    if info is None or not info.active or not may_introspect(caller, info):
        return json_response(_INACTIVE)
    if await server.registry.get_client(info.client_id) is None:
        return json_response(_INACTIVE)
    return json_response(info.introspection(server.config.issuer))
