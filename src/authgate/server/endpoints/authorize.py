"""The authorization endpoint (RFC 6749 §3.1, §4.1.1; OpenID Connect Core §3.1.2.1: GET and POST).

GET takes the request from the query, POST from an urlencoded form. A request carrying
`request_uri` is a pushed one (RFC 9126 §4): its parameters are the ones pushed to /par, used up
here (`flows.pushed_requests`). A client that must push (`par.required`, or the client's own
`require_pushed_requests`, §5) is refused without one. The request is then validated and answered
by `authorization_flow`: the login page, the consent page, the code, or an error (on the error page
when the client or its redirect URI cannot be trusted, else at the redirect URI).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response

from authgate.oauth.errors import InvalidRequest, OAuthError
from authgate.server.auth_server import AuthServer
from authgate.server.endpoints.authorization_flow import continue_authorization
from authgate.server.endpoints.browser import open_browser, read_request_pairs
from authgate.server.flows.authorization_request import PageError, read_client_id
from authgate.server.flows.pushed_requests import use_request_uri

__all__ = ["authorization_endpoint"]


async def authorization_endpoint(request: Request) -> Response:
    """GET or POST /authorize."""
    server: AuthServer = request.app.state.authgate
    browser = await open_browser(request, server)
    try:
        pairs = await _pushed_or_direct(server, await read_request_pairs(request))
    except PageError as exc:
        return browser.error_page(exc.error)
    except OAuthError as exc:
        return browser.error_page(exc)
    return await continue_authorization(server, browser, pairs, requested_at=server.now())


async def _pushed_or_direct(
    server: AuthServer, pairs: Sequence[tuple[str, str]]
) -> Sequence[tuple[str, str]]:
    """The pushed parameters when the request names a `request_uri`, else `pairs` as they are
    (when the client may send its requests directly)."""
    if not any(name == "request_uri" for name, _ in pairs):
        fapi2 = server.config.security.profile == "fapi2"  # FAPI 2.0 requires PAR of every client
        if server.config.par.required or fapi2:
            raise PageError(InvalidRequest(_MUST_PUSH))
        client_id = read_client_id(pairs)
        if server.client_metadata.handles(client_id):
            # A metadata-document client has no PAR setting of its own, and fetching its document
            # here would fetch it twice per request (`authorization_flow` resolves it once).
            return pairs
        client = await server.registry.get_client(client_id) if len(client_id) <= 128 else None
        if client is not None and client.pushed_requests_required:
            raise PageError(InvalidRequest(_MUST_PUSH))
        return pairs
    client_id = read_client_id(pairs)  # RFC 9126 §4: client_id stays in the front channel
    return await use_request_uri(
        pairs,
        client_id,
        server.storage,
        hash_token=server.secret.hash_token,
        now=server.now(),
    )


_MUST_PUSH = "push this authorization request to the pushed authorization endpoint first (RFC 9126)"
