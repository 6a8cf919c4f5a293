"""Authorization responses: the code or the error, sent to the validated redirect URI (RFC 6749
§4.1.2, §4.1.2.1, Appendix B; RFC 9207 `iss`; OAuth 2.0 Form Post Response Mode §2; RFC 9700
§4.4.2 mix-up, §4.11 and §4.12 on redirects).

`query` answers with a 303 redirect (RFC 9700 §4.12: never 307, which would resend the login form)
whose parameters are added to the URI's existing query; `form_post` answers with a page whose form
posts them. Every response carries `iss` and, when the request had one, the exact `state`.
`error_description` is reduced to the characters RFC 6749 §4.1.2.1 allows.
"""

from __future__ import annotations

import re

from authgate.oauth.errors import OAuthError
from authgate.server.flows.authorization_request import RedirectTarget
from authgate.server.flows.pages import PageRenderer, PageResponse, security_headers
from authgate.server.flows.redirect_uris import add_query

__all__ = ["authorization_error_response", "authorization_success_response"]

_NOT_DESCRIPTION = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


def authorization_success_response(
    target: RedirectTarget, *, code: str, issuer: str, renderer: PageRenderer
) -> PageResponse:
    """Deliver `code` (RFC 6749 §4.1.2)."""
    return _respond(target, {"code": code}, issuer, renderer)


def authorization_error_response(
    target: RedirectTarget, error: OAuthError, *, issuer: str, renderer: PageRenderer
) -> PageResponse:
    """Deliver `error` (RFC 6749 §4.1.2.1). Only for a target from a validated request: errors
    about the client or the redirect URI itself go to the error page."""
    params = {"error": error.error}
    if error.description:
        description = _NOT_DESCRIPTION.sub("?", error.description)
        if description:
            params["error_description"] = description
    return _respond(target, params, issuer, renderer)


def _respond(
    target: RedirectTarget, params: dict[str, str], issuer: str, renderer: PageRenderer
) -> PageResponse:
    if target.state is not None:
        params["state"] = target.state
    params["iss"] = issuer  # RFC 9207 §2
    if target.response_mode == "form_post":
        return renderer.render_form_post(target.redirect_uri, list(params.items()))
    location = add_query(target.redirect_uri, params)
    return PageResponse(303, (("Location", location), *security_headers()))
