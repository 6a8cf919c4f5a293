"""The sign-in form's target (RFC 6749 §10.10 and §10.12; RFC 9700 §4.7; OWASP Authentication
and Credential Stuffing cheat sheets).

The form carries this browser's CSRF token and the ticket of the request that waits for the user (an
authorization request or a device verification). Every attempt is counted per client address and per
account (as typed) before the password is checked, with exponential backoff (`flows.throttle`); a
successful one takes its count back and clears the account's, so only failures add up (people behind
one NAT or proxy are not made to wait). An unknown username is checked against a dummy argon2 hash,
so its answer (the same page, the same status, the same words) and its timing match a wrong
password. A successful sign-in starts a new session (new cookie id) and resumes the waiting request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from authgate.oauth.errors import OAuthError
from authgate.server import audit
from authgate.server.auth_server import AuthServer
from authgate.server.endpoints.authorization_flow import (
    TICKET_KIND as AUTHORIZE,
)
from authgate.server.endpoints.authorization_flow import (
    authorization_login_page,
    continue_authorization,
)
from authgate.server.endpoints.browser import (
    Browser,
    open_browser,
    single,
)
from authgate.server.endpoints.device_verification import (
    TICKET_KIND as DEVICE,
)
from authgate.server.endpoints.device_verification import device_login_page, resume_device
from authgate.server.flows.passwords import hash_password, password_needs_rehash, verify_password
from authgate.server.flows.pending_requests import PendingRequest
from authgate.server.flows.throttle import (
    Attempt,
    ThrottlePolicy,
    account_key,
    address_key,
    just_blocked,
)
from authgate.server.models import User

__all__ = ["login_endpoint"]

_FAILED = "Incorrect username or password."
_MISSING = "Enter your username and password."
_MAX_USERNAME = 255
_AMR = ("pwd",)  # RFC 8176 §2: password-based authentication


async def login_endpoint(request: Request) -> Response:
    """POST /login."""
    server: AuthServer = request.app.state.authgate
    browser = await open_browser(request, server)
    try:
        form = await browser.read_form(request)
        pending = browser.open_ticket(form, (AUTHORIZE, DEVICE))
        username = single(form, "username")
        password = single(form, "password")
    except OAuthError as exc:
        return browser.error_page(exc)

    async def again(error: str, status_code: int = 200, retry_after: int | None = None) -> Response:
        headers = [("Retry-After", str(retry_after))] if retry_after is not None else []
        page = authorization_login_page if pending.kind == AUTHORIZE else device_login_page
        return await page(
            server,
            browser,
            pending,
            username=username,
            error=error,
            status_code=status_code,
            headers=headers,
        )

    if username is None or password is None:
        return await again(_MISSING)
    # Counted before the check, so that guesses sent at once cannot all be checked first.
    keys = [
        # The address first: once it is refused, its guesses stop counting against accounts.
        (address_key(browser.address), server.config.throttle.login_address),
        (account_key(username), server.config.throttle.login_account),
    ]
    attempt = await server.throttle.count(keys, server.now())
    if attempt.unavailable:
        message = f"Sign-in is briefly unavailable. Try again in {attempt.retry_after} seconds."
        return await again(message, 503, attempt.retry_after)
    if attempt.retry_after is not None:
        server.counters.throttled["signin"] += 1
        message = f"Too many sign-in attempts. Try again in {attempt.retry_after} seconds."
        return await again(message, 429, attempt.retry_after)
    user = await _check_password(server, username, password)
    if user is None:
        server.counters.signin_failures += 1
        await _audit_throttled(server, attempt, dict(keys))
        return await again(_FAILED)
    await server.throttle.take_back(attempt, clear={account_key(username)})
    await browser.sign_in(user, _AMR)
    return await _RESUME[pending.kind](server, browser, pending)


async def _audit_throttled(
    server: AuthServer, attempt: Attempt, policies: dict[str, ThrottlePolicy]
) -> None:
    """Record each key this failure made wait (the account as typed, or the client address)."""
    for counted in attempt.counted:
        if just_blocked(counted, policies[counted.key]):
            kind, _, name = counted.key.partition(":")
            await audit.record(
                server.storage,
                "signin.throttled",
                name,
                now=server.now(),
                actor="server",
                key=kind,
                failures=counted.after.failures,
                wait=counted.after.blocked_until - counted.after.last_failure,
            )


async def _check_password(server: AuthServer, username: str, password: str) -> User | None:
    users = server.storage
    user = await users.get_user_by_username(username) if len(username) <= _MAX_USERNAME else None
    stored = user.password_hash if user is not None else None
    # argon2 takes tens of milliseconds of CPU: off the event loop. Same work for unknown users.
    if not await asyncio.to_thread(verify_password, password, stored) or user is None:
        return None
    if stored is not None and password_needs_rehash(stored):
        new_hash = await asyncio.to_thread(hash_password, password)
        await users.set_password_hash(user.username, new_hash)
    return user


async def _resume_authorization(
    server: AuthServer, browser: Browser, pending: PendingRequest
) -> Response:
    return await continue_authorization(
        server, browser, pending.params, requested_at=pending.requested_at
    )


_RESUME: dict[str, Callable[[AuthServer, Browser, PendingRequest], Awaitable[Response]]] = {
    AUTHORIZE: _resume_authorization,
    DEVICE: resume_device,
}
