"""The device verification pages (RFC 8628 §3.3, §5.1-§5.4): where the user types the code shown
on a device, sees which client asks for what, and approves or denies.

`GET /device` (the `verification_uri`; with `?user_code=` it is the `verification_uri_complete`)
needs a signed-in user: without one it shows the login form, which comes back here. A code is
accepted with any case, dashes and spaces. Every code submitted is counted against the signed-in
user and the client address (`throttle.user_code` in the configuration) before it is looked up, so
codes cannot be guessed at speed (§5.1); a valid one takes its count back, so only wrong codes add
up and approving several devices is never throttled. A valid code shows the confirmation page with
the client's name, the API and every scope, and a warning to deny a code someone else sent (§5.4);
the answer is a CSRF-protected form.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import Response

from authgate.oauth.errors import OAuthError
from authgate.server.auth_server import AuthServer
from authgate.server.endpoints.browser import (
    Browser,
    open_browser,
    read_query_pairs,
    single,
)
from authgate.server.endpoints.login_page import login_form
from authgate.server.flows.device_codes import (
    decide_device_code,
    format_user_code,
    normalize_user_code,
)
from authgate.server.flows.pending_requests import PendingRequest
from authgate.server.flows.throttle import Attempt, address_key
from authgate.server.models import DeviceAuthorization, Session
from authgate.server.paths import ENDPOINT_PATHS
from authgate.server.targets.identity_scopes import describe_scopes

__all__ = [
    "TICKET_KIND",
    "device_login_page",
    "device_page_endpoint",
    "device_submit_endpoint",
    "resume_device",
]

TICKET_KIND = "device"
_INVALID = "That code is not valid or has expired. Check the code on your device and try again."


async def device_page_endpoint(request: Request) -> Response:
    """GET /device."""
    server: AuthServer = request.app.state.authgate
    browser = await open_browser(request, server)
    try:
        typed = single(read_query_pairs(request), "user_code")
    except OAuthError as exc:
        return browser.error_page(exc)
    return await _show(server, browser, typed)


async def device_submit_endpoint(request: Request) -> Response:
    """POST /device: a typed code, or the answer on the confirmation page."""
    server: AuthServer = request.app.state.authgate
    browser = await open_browser(request, server)
    try:
        form = await browser.read_form(request)
        typed = single(form, "user_code")
        approve, deny = single(form, "approve"), single(form, "deny")
    except OAuthError as exc:
        return browser.error_page(exc)
    if browser.session is None or (approve is None and deny is None):
        return await _show(server, browser, typed)
    return await _decide(server, browser, browser.session, typed, approved=deny is None)


async def resume_device(server: AuthServer, browser: Browser, pending: PendingRequest) -> Response:
    """After signing in: the page the user was on, with the code typed before, if any."""
    typed = dict(pending.params).get("user_code")
    return await _show(server, browser, typed)


async def device_login_page(
    server: AuthServer,
    browser: Browser,
    pending: PendingRequest,
    *,
    username: str | None,
    error: str,
    status_code: int = 200,
    headers: Iterable[tuple[str, str]] = (),
) -> Response:
    """The login page again for the device page, with `error`."""
    return login_form(
        browser,
        ticket=browser.server.pages.tickets.seal(TICKET_KIND, pending.params, pending.requested_at),
        username=username,
        error=error,
        status_code=status_code,
        headers=headers,
    )


async def _show(server: AuthServer, browser: Browser, typed: str | None) -> Response:
    if browser.session is None:
        params = [("user_code", typed)] if typed else []
        return login_form(
            browser, ticket=server.pages.tickets.seal(TICKET_KIND, params, server.now())
        )
    if typed is None:
        return _entry_page(browser)
    attempt = await _count_attempt(browser, browser.session)
    if attempt.retry_after is not None:
        return _too_many(browser, typed, attempt)
    code = normalize_user_code(typed)
    record = await _find(browser, code) if code is not None else None
    if code is None or record is None:
        return _entry_page(browser, typed, _INVALID)
    await server.throttle.take_back(attempt, clear={_user_key(browser.session)})
    return await _confirm_page(server, browser, record, code)


async def _decide(
    server: AuthServer, browser: Browser, session: Session, typed: str | None, *, approved: bool
) -> Response:
    # The answer names a code too: counted like a typed one, or it would be a way to guess.
    attempt = await _count_attempt(browser, session)
    if attempt.retry_after is not None:
        return _too_many(browser, typed, attempt)
    code = normalize_user_code(typed or "")
    if code is None:
        return _entry_page(browser, typed, _INVALID)
    try:
        record = await decide_device_code(
            server.storage,
            server.secret.hash_token(code),
            approved=approved,
            user_id=session.user_id,
            auth_time=session.auth_time,
            amr=session.amr,
            now=server.now(),
        )
    except OAuthError:
        return _entry_page(browser, typed, _INVALID)
    await server.throttle.take_back(attempt, clear={_user_key(session)})
    client = await server.registry.get_client(record.client_id)
    context: dict[str, object] = {"approved": approved}
    if client is not None:
        context["client_name"] = client.name
    return browser.page("device_done.html", context)


async def _count_attempt(browser: Browser, session: Session) -> Attempt:
    policy = browser.server.config.throttle.user_code
    keys = [("device:" + address_key(browser.address), policy), (_user_key(session), policy)]
    return await browser.server.throttle.count(keys, browser.server.now())


async def _find(browser: Browser, code: str) -> DeviceAuthorization | None:
    server = browser.server
    record = await server.storage.find_device_authorization(server.secret.hash_token(code))
    if record is None or record.status != "pending" or server.now() >= record.expires_at:
        return None
    return record


async def _confirm_page(
    server: AuthServer, browser: Browser, record: DeviceAuthorization, code: str
) -> Response:
    client = await server.registry.get_client(record.client_id)
    api = await server.targets.api_for(record.audiences[0]) if record.audiences else None
    if client is None or api is None:
        return _entry_page(browser, None, _INVALID)
    userinfo_only = api is server.targets.userinfo_api
    context = {
        "form_action": server.config.endpoint(ENDPOINT_PATHS["device"]),
        "client_name": client.name,
        "user_code": format_user_code(code),
        "scopes": describe_scopes(record.scopes),
        "apis": [] if userinfo_only else [api.name],
    }
    return browser.page("device_confirm.html", context)


def _too_many(browser: Browser, typed: str | None, attempt: Attempt) -> Response:
    wait = attempt.retry_after or 1
    if attempt.unavailable:  # the throttle's store does not answer and fails closed
        message = f"Codes cannot be checked right now. Try again in {wait} seconds."
        return _entry_page(browser, typed, message, 503, [("Retry-After", str(wait))])
    browser.server.counters.throttled["user_code"] += 1
    message = f"Too many codes tried. Try again in {wait} seconds."
    return _entry_page(browser, typed, message, 429, [("Retry-After", str(wait))])


def _entry_page(
    browser: Browser,
    typed: str | None = None,
    error: str | None = None,
    status_code: int = 200,
    headers: Iterable[tuple[str, str]] = (),
) -> Response:
    context: dict[str, object] = {
        "form_action": browser.server.config.endpoint(ENDPOINT_PATHS["device"])
    }
    if typed:
        context["user_code"] = typed
    if error:
        context["error"] = error
    return browser.page("device.html", context, status_code=status_code, headers=headers)


def _user_key(session: Session) -> str:
    return "device:user:" + session.user_id
