"""Metadata (RFC 8414 §3; OpenID Connect Discovery §4) and the JWKS (RFC 7517 §5).

The JWKS is public and cacheable: `Cache-Control: public, max-age` equals `keys.jwks_max_age`, the
figure the key schedule waits for before a newly published key signs.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from authgate.server.context import AuthServer
from authgate.server.endpoints.responses import json_response
from authgate.server.metadata import server_metadata

__all__ = ["jwks_endpoint", "metadata_endpoint"]


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
