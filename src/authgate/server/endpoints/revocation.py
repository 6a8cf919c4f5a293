"""Token revocation (RFC 7009): opaque access tokens are marked revoked; JWT access tokens go on
the revocation list until they expire, so introspection reports them inactive.

Unknown, malformed, expired or already revoked tokens get 200 (§2.2). A token issued to another
client is refused (§2.1) with `invalid_request`, and is not revoked.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from authgate.oauth.errors import InvalidRequest
from authgate.server.context import AuthServer
from authgate.server.endpoints.responses import NO_STORE
from authgate.server.forms import read_form
from authgate.server.metadata import ENDPOINT_PATHS

__all__ = ["revocation_endpoint"]


async def revocation_endpoint(request: Request) -> Response:
    """POST /revoke."""
    server: AuthServer = request.app.state.authgate
    form = await read_form(request, server.config.http.max_body_size)
    caller = (
        await server.client_auth.authenticate(
            request.headers.get("authorization"),
            form,
            server.config.endpoint(ENDPOINT_PATHS["revocation"]),
        )
    ).client
    request.state.client_id = caller.client_id
    token = form.get("token")
    if token is None:
        raise InvalidRequest("token is required")
    info = await server.inspector.find(token)
    if info is not None and info.active:
        if info.client_id != caller.client_id:
            raise InvalidRequest("the token was not issued to this client")
        await server.inspector.revoke(info)
    return Response(b"", status_code=200, headers=NO_STORE)
