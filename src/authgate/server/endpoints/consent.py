"""The consent form's target (RFC 6749 §4.1.1 and §10.2 user approval; OpenID Connect Core
§3.1.2.4; RFC 9700 §4.7 CSRF).

The form carries this browser's CSRF token and the request's ticket; `approve` remembers the
consent (per user, client, scopes and API) and continues to the code, `deny` sends
`access_denied` to the client. The request is validated again from the ticket's parameters.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from authgate.oauth.errors import InvalidRequest, OAuthError
from authgate.server.auth_server import AuthServer
from authgate.server.endpoints.authorization_flow import TICKET_KIND, continue_authorization
from authgate.server.endpoints.browser import (
    open_browser,
    single,
)

__all__ = ["consent_endpoint"]


async def consent_endpoint(request: Request) -> Response:
    """POST /consent."""
    server: AuthServer = request.app.state.authgate
    browser = await open_browser(request, server)
    try:
        form = await browser.read_form(request)
        pending = browser.open_ticket(form, (TICKET_KIND,))
        approve, deny = single(form, "approve"), single(form, "deny")
        if (approve is None) == (deny is None):
            raise InvalidRequest("choose Allow or Deny")
    except OAuthError as exc:
        return browser.error_page(exc)
    return await continue_authorization(
        server,
        browser,
        pending.params,
        requested_at=pending.requested_at,
        approved=approve is not None,
    )
