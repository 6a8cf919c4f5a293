"""RP-initiated logout: the end-session endpoint (OpenID Connect RP-Initiated Logout 1.0 §2-§4;
RFC 9700 §4.11 on open redirects).

`GET` or `POST /logout` with `id_token_hint`, `client_id`, `post_logout_redirect_uri`, `state`.
Any site can send a browser here, so the user always confirms with a CSRF-protected form. The
hint is accepted when we signed it (any published key, our `iss`, an ID token rather than an
access token); its expiry does not matter (§2). The browser is sent to `post_logout_redirect_uri`
only when that URI is registered for the client the request names (`flows.logout`), with `state`;
otherwise the signed-out page is shown. A browser with no session is not asked anything.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response

from authgate.jose import JoseError, jws
from authgate.oauth.errors import InvalidRequest, OAuthError
from authgate.server.auth_server import AuthServer
from authgate.server.endpoints.browser import (
    TICKET_FIELD,
    Browser,
    csrf_value,
    open_browser,
    read_request_pairs,
    single,
)
from authgate.server.flows.logout import LogoutRequest, parse_logout_request, post_logout_redirect
from authgate.server.flows.pages import PageResponse, security_headers
from authgate.server.flows.sessions import CSRF_FIELD
from authgate.server.models import Client
from authgate.server.paths import ENDPOINT_PATHS

__all__ = ["end_session_endpoint"]

TICKET_KIND = "logout"
_MAX_CLIENT_ID = 128


async def end_session_endpoint(request: Request) -> Response:
    """GET or POST /logout."""
    server: AuthServer = request.app.state.authgate
    browser = await open_browser(request, server)
    try:
        pairs = await read_request_pairs(request)
        if request.method == "POST" and any(k in (CSRF_FIELD, TICKET_FIELD) for k, _ in pairs):
            return await _confirmed(server, browser, pairs)
        logout = parse_logout_request(pairs)
        client, target = await _destination(server, logout)
    except OAuthError as exc:
        return browser.error_page(exc)
    if browser.session is None:
        return _finish(browser, target)
    kept = [(name, value) for name, value in pairs if value]
    context: dict[str, object] = {
        "form_action": server.config.endpoint(ENDPOINT_PATHS["end_session"]),
        "hidden": [(TICKET_FIELD, server.pages.tickets.seal(TICKET_KIND, kept, server.now()))],
    }
    if client is not None:
        context["client_name"] = client.name
    return browser.page("logout.html", context, form_targets=[target] if target else [])


async def _confirmed(
    server: AuthServer, browser: Browser, pairs: Sequence[tuple[str, str]]
) -> Response:
    browser.check_csrf(csrf_value(pairs))
    pending = browser.open_ticket(pairs, (TICKET_KIND,))
    _, target = await _destination(server, parse_logout_request(pending.params))
    if single(pairs, "logout") is not None:
        await browser.sign_out()
        return _finish(browser, target)
    if single(pairs, "cancel") is not None:
        return browser.page("logout_cancelled.html", {})
    raise InvalidRequest("choose Sign out or Stay signed in")


async def _destination(
    server: AuthServer, logout: LogoutRequest
) -> tuple[Client | None, str | None]:
    """The client the request names and the validated post-logout redirect (or None)."""
    hint_client_id = _hint_client(server, logout.id_token_hint) if logout.id_token_hint else None
    client_id = logout.client_id or hint_client_id
    client = None
    if client_id is not None:
        if len(client_id) <= _MAX_CLIENT_ID:
            client = await server.registry.get_client(client_id)
        if client is None:
            raise InvalidRequest("unknown client")
    registered = client.post_logout_redirect_uris if client is not None else ()
    target = post_logout_redirect(logout, hint_client_id=hint_client_id, registered=registered)
    return client, target


def _hint_client(server: AuthServer, hint: str) -> str:
    """The client an `id_token_hint` was issued to; `InvalidRequest` unless we issued it."""
    try:
        verified = jws.verify(hint, server.keys.verification_keys(), server.config.keys.algorithms)
        claims = json.loads(verified.payload)
    except (JoseError, ValueError):
        raise InvalidRequest("id_token_hint is not an ID token of this server") from None
    typ = verified.header.get("typ")
    if typ not in (None, "JWT") or not isinstance(claims, dict):
        raise InvalidRequest("id_token_hint is not an ID token")  # e.g. an access token
    if claims.get("iss") != server.config.issuer:
        raise InvalidRequest("id_token_hint is not an ID token of this server")
    aud, azp = claims.get("aud"), claims.get("azp")
    if isinstance(azp, str):
        return azp
    if isinstance(aud, str):
        return aud
    if isinstance(aud, list) and len(aud) == 1 and isinstance(aud[0], str):
        return aud[0]
    raise InvalidRequest("id_token_hint names no client")


def _finish(browser: Browser, target: str | None) -> Response:
    if target is None:
        return browser.page("logged_out.html", {})
    # 303: the browser follows with GET, never re-posting the form (RFC 9700 §4.12).
    return browser.respond(PageResponse(303, (("Location", target), *security_headers())))
