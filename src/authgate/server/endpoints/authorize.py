"""The authorization endpoint (RFC 6749 §3.1, §4.1.1; OpenID Connect Core §3.1.2.1: GET and POST).

GET takes the request from the query, POST from an urlencoded form. The request is validated and
answered by `authorization_flow`: the login page, the consent page, the code, or an error (on the
error page when the client or its redirect URI cannot be trusted, else at the redirect URI).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from authgate.oauth.errors import OAuthError
from authgate.server.auth_server import AuthServer
from authgate.server.endpoints.authorization_flow import continue_authorization
from authgate.server.endpoints.browser import open_browser, read_request_pairs

__all__ = ["authorization_endpoint"]


async def authorization_endpoint(request: Request) -> Response:
    """GET or POST /authorize."""
    server: AuthServer = request.app.state.authgate
    browser = await open_browser(request, server)
    try:
        pairs = await read_request_pairs(request)
    except OAuthError as exc:
        return browser.error_page(exc)
    return await continue_authorization(server, browser, pairs, requested_at=server.now())
