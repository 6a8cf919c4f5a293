"""The pushed authorization request endpoint (RFC 9126 §2).

The client authenticates exactly as at the token endpoint (`clients.authentication`; a
`private_key_jwt` assertion may name the issuer, the token endpoint or this endpoint, §2). The
pushed parameters are validated by the parser of the authorization endpoint
(`flows.authorization_request`) and the API and scopes resolved as there, but every error is
answered here as JSON (§2.3): there is no browser to show a page to and no redirect. The answer is
201 with the `request_uri` and `expires_in` (§2.2), never cached.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from authgate.server.auth_server import AuthServer
from authgate.server.endpoints.client_requests import read_client_form
from authgate.server.endpoints.responses import json_response
from authgate.server.flows.authorization_request import (
    AuthorizationError,
    parse_authorization_request,
)
from authgate.server.flows.pushed_requests import new_pushed_request, pushed_parameters

__all__ = ["pushed_authorization_endpoint"]


async def pushed_authorization_endpoint(request: Request) -> Response:
    """POST /par."""
    server: AuthServer = request.app.state.authgate
    form, client = await read_client_form(
        request, server, endpoint="pushed_authorization_request", repeatable=("resource",)
    )
    params = pushed_parameters(form.pairs(), client.client_id)
    now = server.now()
    try:
        parsed = parse_authorization_request(params, client, requested_at=now)
    except AuthorizationError as exc:
        raise exc.error from None  # §2.3: the same errors, as a JSON response
    # invalid_target / invalid_scope now rather than after sign-in (the same rule runs again).
    await server.targets.resolve(client, parsed.resources, parsed.scopes)
    lifetime = server.config.par.lifetime
    request_uri, record = new_pushed_request(
        params,
        client_id=client.client_id,
        hash_token=server.secret.hash_token,
        now=now,
        lifetime=lifetime,
    )
    await server.storage.save_pushed_request(record)
    return json_response({"request_uri": request_uri, "expires_in": lifetime}, status=201)
