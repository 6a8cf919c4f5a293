"""One authorization request from arrival to code (RFC 6749 §4.1.1-§4.1.2.1; RFC 7636; RFC 8707
§2; RFC 9207; OpenID Connect Core §3.1.2; RFC 9700 §2.1, §4.11): validate it, then sign the user
in, ask for consent, or issue the code, whichever `flows.interaction.next_step` says.

The authorization endpoint starts here; the login and consent forms come back here with the
request's sealed ticket and run the very same validation again, so every answer is decided from the
client's parameters, the session and the remembered consent, never from what a form claims.
Errors about the client or its redirect URI show the error page; every other error goes to the
validated redirect URI with `state` and `iss` (`flows.authorization_response`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from starlette.responses import Response

from authgate.oauth.errors import AccessDenied, InvalidRequest, OAuthError
from authgate.server.auth_server import AuthServer
from authgate.server.endpoints.browser import TICKET_FIELD, Browser
from authgate.server.endpoints.login_page import login_form
from authgate.server.flows.authorization_request import (
    READ_PARAMETERS,
    AuthorizationRequest,
    PageError,
    RedirectError,
    RedirectTarget,
    parse_authorization_request,
    read_client_id,
)
from authgate.server.flows.authorization_response import (
    authorization_error_response,
    authorization_success_response,
)
from authgate.server.flows.codes import issue_code
from authgate.server.flows.consent import record_consent
from authgate.server.flows.interaction import Step, next_step
from authgate.server.flows.pending_requests import PendingRequest
from authgate.server.flows.redirect_uris import is_loopback_redirect
from authgate.server.metadata_clients import ClientMetadataError, MetadataClient
from authgate.server.models import Client, Session
from authgate.server.paths import ENDPOINT_PATHS
from authgate.server.targets.identity_scopes import describe_scopes
from authgate.server.targets.user_targets import UserTarget

__all__ = ["TICKET_KIND", "authorization_login_page", "continue_authorization"]

TICKET_KIND = "authorize"
# What a ticket keeps of the request: the parameters the parser reads (others are ignored).
_KEPT = READ_PARAMETERS
_MAX_CLIENT_ID = 128


async def continue_authorization(
    server: AuthServer,
    browser: Browser,
    pairs: Sequence[tuple[str, str]],
    *,
    requested_at: int,
    approved: bool | None = None,
) -> Response:
    """Answer the authorization request made of `pairs` (first seen at `requested_at`) for this
    browser. `approved`: the user's answer on the consent page (None: no answer given)."""
    try:
        client, request = await _validate(server, pairs, requested_at)
    except PageError as exc:
        return browser.error_page(exc.error)
    except RedirectError as exc:
        return _redirect_error(server, browser, exc.target, exc.error)
    session = browser.session
    try:
        target = await server.targets.resolve(client, request.resources, request.scopes)
        if approved is False:
            raise AccessDenied("the user denied the request")
        consent = None
        if session is not None:
            consents = server.storage
            consent = await consents.get_consent(session.user_id, client.client_id)
            if approved:
                consent = record_consent(
                    consent,
                    user_id=session.user_id,
                    client_id=client.client_id,
                    scopes=target.scopes,
                    audiences=target.audiences,
                    now=server.now(),
                )
                await consents.save_consent(consent)
            elif _impersonable(client):
                # RFC 6749 §10.2: a repeated request is not approved without the user when
                # nothing shows it comes from the original client; any program on the device
                # can name a loopback-only client's URL.
                consent = None
        step = next_step(
            request,
            auth_time=session.auth_time if session is not None else None,
            consent=consent,
            scopes=target.scopes,
            audiences=target.audiences,
            now=server.now(),
        )
    except OAuthError as exc:
        return _redirect_error(server, browser, request.target, exc)
    if step is Step.LOGIN or session is None:
        return login_form(
            browser,
            ticket=_ticket(server, pairs, requested_at),
            client_name=client.name,
            username=request.login_hint,
            form_targets=[request.redirect_uri],
        )
    if step is Step.CONSENT:
        return _consent_page(
            server, browser, client=client, request=request, target=target, pairs=pairs
        )
    return await _issue(server, browser, session=session, request=request, target=target)


def _loopback_only(client: Client) -> bool:
    return all(is_loopback_redirect(uri) for uri in client.redirect_uris)


def _impersonable(client: Client) -> bool:
    """A client known only by its own document whose every redirect URI is loopback."""
    return isinstance(client, MetadataClient) and _loopback_only(client)


async def _validate(
    server: AuthServer, pairs: Sequence[tuple[str, str]], requested_at: int
) -> tuple[Client, AuthorizationRequest]:
    client_id = read_client_id(pairs)
    client: Client | None = None
    if server.client_metadata.handles(client_id):
        try:
            client = await server.client_metadata.client_for(client_id)
        except ClientMetadataError as exc:
            raise PageError(exc) from None  # never redirect: no redirect URI is trusted yet
    elif len(client_id) <= _MAX_CLIENT_ID:
        client = await server.registry.get_client(client_id)
    if client is None:
        raise PageError(InvalidRequest("unknown client"))
    return client, parse_authorization_request(pairs, client, requested_at=requested_at)


async def authorization_login_page(
    server: AuthServer,
    browser: Browser,
    pending: PendingRequest,
    *,
    username: str | None,
    error: str,
    status_code: int = 200,
    headers: Iterable[tuple[str, str]] = (),
) -> Response:
    """The login page again for a pending authorization request, with `error`."""
    try:
        client, request = await _validate(server, pending.params, pending.requested_at)
    except PageError as exc:
        return browser.error_page(exc.error)
    except RedirectError as exc:
        return _redirect_error(server, browser, exc.target, exc.error)
    return login_form(
        browser,
        ticket=_ticket(browser.server, pending.params, pending.requested_at),
        client_name=client.name,
        username=username,
        error=error,
        status_code=status_code,
        form_targets=[request.redirect_uri],
        headers=headers,
    )


def _redirect_error(
    server: AuthServer, browser: Browser, target: RedirectTarget, error: OAuthError
) -> Response:
    page = authorization_error_response(
        target, error, issuer=server.config.issuer, renderer=browser.server.pages.renderer
    )
    return browser.respond(page)


def _ticket(server: AuthServer, pairs: Sequence[tuple[str, str]], requested_at: int) -> str:
    kept = [(name, value) for name, value in pairs if name in _KEPT]
    return server.pages.tickets.seal(TICKET_KIND, kept, requested_at)


def _consent_page(
    server: AuthServer,
    browser: Browser,
    *,
    client: Client,
    request: AuthorizationRequest,
    target: UserTarget,
    pairs: Sequence[tuple[str, str]],
) -> Response:
    parts = urlsplit(request.redirect_uri)
    context = {
        "form_action": server.config.endpoint(ENDPOINT_PATHS["consent"]),
        "client_name": client.name,
        # A client known only by its own metadata document: its name is its own claim, and a
        # client whose every redirect URI is loopback is an app on the user's own device.
        "self_asserted": isinstance(client, MetadataClient),
        "client_id_host": urlsplit(client.client_id).hostname,
        "loopback_only": _impersonable(client),
        "apis": [] if target.userinfo_only else [target.api.name],
        "scopes": describe_scopes(target.scopes),
        "redirect_host": parts.hostname or parts.scheme,
        "hidden": [(TICKET_FIELD, _ticket(server, pairs, request.requested_at))],
    }
    return browser.page("consent.html", context, form_targets=[request.redirect_uri])


async def _issue(
    server: AuthServer,
    browser: Browser,
    *,
    session: Session,
    request: AuthorizationRequest,
    target: UserTarget,
) -> Response:
    code, record = issue_code(
        request,
        hash_code=server.secret.hash_token,
        user_id=session.user_id,
        auth_time=session.auth_time,
        amr=session.amr,
        scopes=target.scopes,
        audiences=target.audiences,
        now=server.now(),
        lifetime=server.config.tokens.authorization_code_ttl,
    )
    await server.storage.save_code(record)
    page = authorization_success_response(
        request.target, code=code, issuer=server.config.issuer, renderer=server.pages.renderer
    )
    return browser.respond(page)
