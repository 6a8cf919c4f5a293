"""The device authorization endpoint (RFC 8628 §3.1-§3.2).

The client authenticates as at the token endpoint (public clients name themselves with
`client_id`; a `private_key_jwt` assertion is addressed to the token endpoint or the issuer) and
must be registered for the device grant. `scope` and `resource` choose the API and scopes exactly
as in an authorization request (`targets.user_targets`). The answer holds the `device_code`, the
`user_code` as `XXXX-XXXX`, `verification_uri` (the `/device` page), `verification_uri_complete`,
`expires_in` and `interval`, and is never cached.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from authgate.oauth.errors import TemporarilyUnavailable, UnauthorizedClient
from authgate.server.auth_server import AuthServer
from authgate.server.endpoints.client_requests import read_client_form
from authgate.server.endpoints.responses import json_response
from authgate.server.flows.device_codes import authorization_response, start
from authgate.server.grants import DEVICE_CODE_GRANT
from authgate.server.paths import ENDPOINT_PATHS
from authgate.server.storage.protocols import AlreadyExistsError
from authgate.server.targets.scopes import parse_scope

__all__ = ["device_authorization_endpoint"]

_ATTEMPTS = 5  # a new user code when one is taken; 20^8 codes make a second collision unlikely


async def device_authorization_endpoint(request: Request) -> Response:
    """POST /device_authorization."""
    server: AuthServer = request.app.state.authgate
    # A private_key_jwt assertion here is addressed as at the token endpoint.
    form, client = await read_client_form(
        request, server, endpoint="token", repeatable=("resource",), limit="device_authorization"
    )
    if DEVICE_CODE_GRANT not in client.grant_types:
        raise UnauthorizedClient("this client may not use the device authorization grant")
    target = await server.targets.resolve(
        client, form.get_all("resource"), parse_scope(form.get("scope"))
    )
    for _ in range(_ATTEMPTS):
        now = server.now()
        device_code, user_code, record = start(
            hash_token=server.secret.hash_token,
            client_id=client.client_id,
            scopes=target.scopes,
            audiences=target.audiences,
            now=now,
            policy=server.config.device,
        )
        try:
            await server.storage.create_device_authorization(record)
        except AlreadyExistsError:
            continue
        verification_uri = server.config.endpoint(ENDPOINT_PATHS["device"])
        return json_response(
            authorization_response(device_code, user_code, record, verification_uri, now)
        )
    raise TemporarilyUnavailable("no free user code; try again")
