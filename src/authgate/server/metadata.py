"""Authorization server metadata (RFC 8414 §2), served at `/.well-known/oauth-authorization-server`
and `/.well-known/openid-configuration`: only what this server implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from authgate.server.client_assertion import ASSERTION_ALGORITHMS
from authgate.server.config import Config

__all__ = ["ENDPOINT_PATHS", "server_metadata"]

ENDPOINT_PATHS = {
    "token": "/token",
    "introspection": "/introspect",
    "revocation": "/revoke",
    "jwks": "/.well-known/jwks.json",
}


def server_metadata(
    config: Config, grant_types: Sequence[str], auth_methods: Sequence[str]
) -> dict[str, Any]:
    """The metadata document for `config` with the registered grants and client-auth methods."""
    algs = list(ASSERTION_ALGORITHMS)
    # Client authentication for introspection and revocation never uses "none" here.
    confidential = [m for m in auth_methods if m != "none"]
    return {
        "issuer": config.issuer,
        "token_endpoint": config.endpoint(ENDPOINT_PATHS["token"]),
        "jwks_uri": config.endpoint(ENDPOINT_PATHS["jwks"]),
        "introspection_endpoint": config.endpoint(ENDPOINT_PATHS["introspection"]),
        "revocation_endpoint": config.endpoint(ENDPOINT_PATHS["revocation"]),
        "grant_types_supported": list(grant_types),
        # No authorization endpoint yet, so no response type (RFC 8414 §2: REQUIRED, may be empty).
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": list(auth_methods),
        "token_endpoint_auth_signing_alg_values_supported": algs,
        "introspection_endpoint_auth_methods_supported": confidential,
        "introspection_endpoint_auth_signing_alg_values_supported": algs,
        "revocation_endpoint_auth_methods_supported": confidential,
        "revocation_endpoint_auth_signing_alg_values_supported": algs,
    }
