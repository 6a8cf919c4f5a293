"""The registration endpoint (RFC 7591 §3) and each registered client's configuration endpoint
(RFC 7592 §2), served when `[registration] mode` is "token" or "open".

POST /register takes a JSON object of client metadata and answers 201 with the client
information (§3.2.1), or 400 `invalid_client_metadata` / `invalid_redirect_uri` (§3.2.2). In
"token" mode it needs an initial access token (`Authorization: Bearer`, RFC 6750 §2.1); in "open"
mode each caller address is rate-limited (`[limits.registration]`). GET, PUT and DELETE
/register/CLIENT_ID read, replace and delete the registration with the registration access token
issued with it; any other token, or an unknown client, is 401 `invalid_token` with a Bearer
challenge (RFC 7592 §2: the answer never tells whether the client exists).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from authgate.gate import CredentialRules, error_answer, extract_credential
from authgate.limits import refusal
from authgate.oauth.errors import InvalidClientMetadata, InvalidToken
from authgate.server.auth_server import AuthServer
from authgate.server.endpoints.browser import request_address
from authgate.server.endpoints.responses import json_response, limited_response
from authgate.server.http.forms import read_body
from authgate.server.models import Client
from authgate.server.paths import ENDPOINT_PATHS
from authgate.server.registration.clients import (
    Registered,
    delete_registration,
    find_registered_client,
    register_client,
    update_registration,
)
from authgate.server.registration.metadata import (
    client_information,
    parse_json_object,
    read_metadata,
)
from authgate.verifier.core import BearerCredential
from authgate.verifier.errors import Reason, TokenRejected

__all__ = ["client_configuration_endpoint", "registration_endpoint"]

_RULES = CredentialRules()  # the Authorization header only


async def registration_endpoint(request: Request) -> Response:
    """POST /register."""
    server: AuthServer = request.app.state.authgate
    settings = server.config.registration
    now = int(server.clock())
    admit = None
    try:
        if settings.mode == "token":
            token_hash = server.secret.hash_registration_token(_bearer(request))
            found = await server.storage.find_initial_access_token(token_hash)
            if found is None or not found.usable(now):
                raise TokenRejected(Reason.INACTIVE)

            async def admit() -> None:
                # Counted only now: the metadata passed every rule, so a refusal costs no use.
                if await server.storage.use_initial_access_token(token_hash, now) is None:
                    raise TokenRejected(Reason.INACTIVE)  # used up or revoked meanwhile
        else:
            decisions = await server.limits.address_request(
                "registration", request_address(request, server)
            )
            if (answer := refusal(decisions)) is not None:
                return limited_response(answer)
        metadata = read_metadata(await _read_json(request, server))
        registered = await register_client(
            server.storage,
            server.secret,
            settings,
            metadata,
            admit=admit,
            signing_algorithms=server.config.keys.algorithms,
            now=now,
        )
    except InvalidToken as exc:
        return _bearer_refusal(exc, server)
    request.state.client_id = registered.client.client_id
    return json_response(_information(server, registered), 201)


async def client_configuration_endpoint(request: Request) -> Response:
    """GET, PUT and DELETE /register/CLIENT_ID (RFC 7592 §2.1-§2.3)."""
    server: AuthServer = request.app.state.authgate
    now = int(server.clock())
    try:
        token = _bearer(request)
        client = await find_registered_client(
            server.storage, server.secret, request.path_params["client_id"], token
        )
        if client is None:
            raise TokenRejected(Reason.INACTIVE)
    except InvalidToken as exc:
        return _bearer_refusal(exc, server)
    request.state.client_id = client.client_id
    if request.method == "DELETE":
        await delete_registration(server.storage, client, now=now)
        return Response(status_code=204, headers={"Cache-Control": "no-store"})
    if request.method == "PUT":
        metadata = read_metadata(await _read_json(request, server), update=True)
        registered = await update_registration(
            server.storage,
            server.secret,
            server.config.registration,
            client,
            metadata,
            signing_algorithms=server.config.keys.algorithms,
            now=now,
        )
        return json_response(_information(server, registered))
    return json_response(_information(server, Registered(client)))


def _information(server: AuthServer, registered: Registered) -> dict[str, Any]:
    return client_information(
        registered.client,
        registration_client_uri=registration_client_uri(server, registered.client),
        client_secret=registered.client_secret,
        registration_access_token=registered.registration_access_token,
    )


def registration_client_uri(server: AuthServer, client: Client) -> str:
    """The client's configuration endpoint (RFC 7592 §3); client ids are URL-safe."""
    return server.config.endpoint(f"{ENDPOINT_PATHS['registration']}/{client.client_id}")


def _bearer(request: Request) -> str:
    credential = extract_credential(request.headers.items(), "", None, _RULES)
    if not isinstance(credential, BearerCredential):
        raise TokenRejected(Reason.MISSING)
    return credential.token


def _bearer_refusal(error: InvalidToken, server: AuthServer) -> Response:
    """401 with the RFC 6750 §3 Bearer challenge (not the Basic one of the token endpoint)."""
    answer = error_answer(error, realm=server.config.issuer)
    return Response(answer.body, status_code=answer.status, headers=dict(answer.headers))


async def _read_json(request: Request, server: AuthServer) -> dict[str, Any]:
    """The body as a JSON object (RFC 7591 §3.1: `application/json`)."""
    media_type, _, parameters = request.headers.get("content-type", "").partition(";")
    charset = parameters.strip().lower().replace(" ", "")
    if media_type.strip().lower() != "application/json" or charset not in (
        "",
        "charset=utf-8",
        'charset="utf-8"',
    ):
        raise InvalidClientMetadata("the body must be application/json")
    return parse_json_object(await read_body(request, server.config.http.max_body_size))
