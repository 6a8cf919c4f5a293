"""Token revocation (RFC 7009): opaque access tokens are marked revoked; JWT access tokens go on
the revocation list until they expire, so introspection reports them inactive. A refresh token, of
any generation, revokes its whole family and every access token of its grant (§2.1; RFC 9700
§4.14.2).

Unknown, malformed, expired or already revoked tokens get 200 (§2.2). An access token issued to
another client is refused (§2.1) with `invalid_request`, and is not revoked; so is a refresh
token of another client. Public clients may revoke their own tokens by naming themselves (§2.1).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from authgate.oauth.errors import InvalidRequest
from authgate.server.auth_server import AuthServer
from authgate.server.endpoints.client_requests import read_client_form
from authgate.server.endpoints.responses import NO_STORE
from authgate.server.flows.refresh_tokens import revoke_refresh_token

__all__ = ["revocation_endpoint"]


async def revocation_endpoint(request: Request) -> Response:
    """POST /revoke."""
    server: AuthServer = request.app.state.authgate
    form, caller = await read_client_form(
        request, server, endpoint="revocation", limit="revocation"
    )
    token = form.get("token")
    if token is None:
        raise InvalidRequest("token is required")
    info = await server.inspector.find(token)
    if info is not None and info.kind == "refresh_token" and info.token_hash is not None:
        revoked = await revoke_refresh_token(
            server.storage,
            server.storage,
            info.token_hash,
            client_id=caller.client_id,
            now=int(server.clock()),
            counters=server.counters,
        )
        if not revoked and info.client_id != caller.client_id:
            raise InvalidRequest("the token was not issued to this client")
    elif info is not None and info.active:
        if info.client_id != caller.client_id:
            raise InvalidRequest("the token was not issued to this client")
        await server.inspector.revoke(info)
    return Response(b"", status_code=200, headers=NO_STORE)
