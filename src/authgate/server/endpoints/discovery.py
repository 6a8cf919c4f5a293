"""Discovery: the metadata document (RFC 8414 §2-§3; OpenID Connect Discovery 1.0 §3-§4; RFC 8628
§4; RFC 9207 §3; RFC 9126 §5; RP-Initiated Logout 1.0 §2.1), served at
`/.well-known/oauth-authorization-server` and `/.well-known/openid-configuration` with only what
this server implements, all of it; and the JWKS (RFC 7517 §5).

The JWKS is public and cacheable: `Cache-Control: public, max-age` equals `keys.jwks_max_age`, the
figure the key schedule waits for before a newly published key signs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from authgate.server.auth_server import AuthServer
from authgate.server.clients.assertions import ASSERTION_ALGORITHMS
from authgate.server.config import FAPI2_ALGORITHMS, Config
from authgate.server.endpoints.responses import json_response
from authgate.server.flows import pkce
from authgate.server.flows.authorization_request import PROMPT_VALUES
from authgate.server.paths import ENDPOINT_PATHS
from authgate.server.targets.identity_scopes import CLAIMS_BY_SCOPE, IDENTITY_SCOPES

__all__ = ["jwks_endpoint", "metadata_endpoint", "server_metadata"]


async def metadata_endpoint(request: Request) -> Response:
    """GET /.well-known/oauth-authorization-server and /.well-known/openid-configuration."""
    server: AuthServer = request.app.state.authgate
    document = server_metadata(server.config, list(server.grants), server.auth_methods)
    return json_response(document, headers={"Cache-Control": "public, max-age=3600"})


async def jwks_endpoint(request: Request) -> Response:
    """GET /.well-known/jwks.json."""
    server: AuthServer = request.app.state.authgate
    return Response(
        server.keys.jwks_body(),
        headers={"Cache-Control": f"public, max-age={server.config.keys.jwks_max_age}"},
        media_type="application/json",
    )


def server_metadata(
    config: Config, grant_types: Sequence[str], auth_methods: Sequence[str]
) -> dict[str, Any]:
    """The metadata document for `config` with the registered grants and client-auth methods."""
    algs = list(ASSERTION_ALGORITHMS)
    id_token_algs = list(config.keys.algorithms)
    fapi2 = config.security.profile == "fapi2"
    if fapi2:  # what the profile leaves (docs/fapi.md): FAPI 2.0 §5.3.2.1, §5.4.1
        auth_methods = [m for m in auth_methods if m == "private_key_jwt"]
        algs = [a for a in algs if a in FAPI2_ALGORITHMS]
        id_token_algs = [a for a in id_token_algs if a in FAPI2_ALGORITHMS]
    # Introspection needs an authenticated caller; public clients may revoke their own tokens.
    confidential = [m for m in auth_methods if m != "none"]
    registration = (  # RFC 8414 §2, RFC 7591 §3: only when registration is on
        {"registration_endpoint": config.endpoint(ENDPOINT_PATHS["registration"])}
        if config.registration.enabled
        else {}
    )
    document = {
        "issuer": config.issuer,
        "authorization_endpoint": config.endpoint(ENDPOINT_PATHS["authorization"]),
        "token_endpoint": config.endpoint(ENDPOINT_PATHS["token"]),
        "jwks_uri": config.endpoint(ENDPOINT_PATHS["jwks"]),
        "userinfo_endpoint": config.endpoint(ENDPOINT_PATHS["userinfo"]),
        "end_session_endpoint": config.endpoint(ENDPOINT_PATHS["end_session"]),
        "device_authorization_endpoint": config.endpoint(ENDPOINT_PATHS["device_authorization"]),
        "introspection_endpoint": config.endpoint(ENDPOINT_PATHS["introspection"]),
        "revocation_endpoint": config.endpoint(ENDPOINT_PATHS["revocation"]),
        # RFC 9126 §5; the client authenticates there as at the token endpoint.
        "pushed_authorization_request_endpoint": config.endpoint(
            ENDPOINT_PATHS["pushed_authorization_request"]
        ),
        "require_pushed_authorization_requests": config.par.required or fapi2,
        "grant_types_supported": list(grant_types),
        # Only the code flow: no implicit or hybrid response types (RFC 9700 §2.1.2).
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "code_challenge_methods_supported": [pkce.S256],
        "authorization_response_iss_parameter_supported": True,  # RFC 9207 §3
        "scopes_supported": sorted(IDENTITY_SCOPES),  # API scopes are each API's own
        "claims_supported": [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "at_hash",
            "azp",
            "amr",
            *(claim for claims in CLAIMS_BY_SCOPE.values() for claim in claims),
        ],
        "subject_types_supported": ["public"],
        # Every alg the key schedule signs with; a client picks one (id_token_signed_response_alg).
        "id_token_signing_alg_values_supported": id_token_algs,
        "prompt_values_supported": sorted(PROMPT_VALUES),
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "token_endpoint_auth_methods_supported": list(auth_methods),
        "token_endpoint_auth_signing_alg_values_supported": algs,
        "introspection_endpoint_auth_methods_supported": confidential,
        "introspection_endpoint_auth_signing_alg_values_supported": algs,
        "revocation_endpoint_auth_methods_supported": list(auth_methods),
        "revocation_endpoint_auth_signing_alg_values_supported": algs,
        **registration,
        "dpop_signing_alg_values_supported": list(config.dpop.algorithms),  # RFC 9449 §5.1
    }
    if config.client_metadata.enabled:
        # draft-ietf-oauth-client-id-metadata-document §6: URL client ids are accepted.
        document["client_id_metadata_document_supported"] = True
    return document
