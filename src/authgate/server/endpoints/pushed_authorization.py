"""The pushed authorization request endpoint (RFC 9126 §2).

The client authenticates exactly as at the token endpoint (`clients.authentication`; a
`private_key_jwt` assertion may name the issuer, the token endpoint or this endpoint, §2). The
pushed parameters are validated by the parser of the authorization endpoint
(`flows.authorization_request`) and the API and scopes resolved as there, but every error is
answered here as JSON (§2.3): there is no browser to show a page to and no redirect. The answer is
201 with the `request_uri` and `expires_in` (§2.2), never cached.

A `DPoP` proof sent here (RFC 9449 §10.1, htu this endpoint) binds the code as `dpop_jkt` would:
its thumbprint is pushed as `dpop_jkt`, and a pushed `dpop_jkt` naming another key is refused.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response

from authgate.oauth.errors import InvalidDPoPProof
from authgate.server.auth_server import AuthServer
from authgate.server.endpoints.client_requests import read_client_form
from authgate.server.endpoints.responses import NO_STORE, json_response
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
    dpop = server.dpop
    jkt = await dpop.pushed_key(request.headers.getlist("dpop"), client) if dpop else None
    params = pushed_parameters(form.pairs(), client.client_id)
    now = server.now()
    try:
        parsed = parse_authorization_request(params, client, requested_at=now)
    except AuthorizationError as exc:
        raise exc.error from None  # §2.3: the same errors, as a JSON response
    if jkt is not None:
        # RFC 9449 §10.1: "MUST reject the request" when dpop_jkt and the proof's key differ.
        if parsed.dpop_jkt is None:
            params.append(("dpop_jkt", jkt))
        elif not hmac.compare_digest(parsed.dpop_jkt.encode(), jkt.encode()):
            raise InvalidDPoPProof("dpop_jkt does not match the key of the DPoP proof")
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
    body = {"request_uri": request_uri, "expires_in": lifetime}
    nonce = dpop.nonce_header() if dpop else {}  # RFC 9449 §8.2: the next nonce to use
    return json_response(body, status=201, headers={**NO_STORE, **nonce} if nonce else None)
