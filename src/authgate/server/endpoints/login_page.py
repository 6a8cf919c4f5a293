"""The sign-in form, shown wherever a flow needs a signed-in user (authorization, device
verification). It posts to `/login` with the pending request's ticket
(`flows.pending_requests`), which `/login` resumes after a successful sign-in."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.responses import Response

from authgate.server.endpoints.browser import TICKET_FIELD, Browser
from authgate.server.paths import ENDPOINT_PATHS

__all__ = ["login_form"]


def login_form(
    browser: Browser,
    *,
    ticket: str,
    client_name: str | None = None,
    username: str | None = None,
    error: str | None = None,
    status_code: int = 200,
    form_targets: Iterable[str] = (),
    headers: Iterable[tuple[str, str]] = (),
) -> Response:
    """The login page. `form_targets`: where a successful sign-in may redirect to (the client's
    redirect URI), which the page's CSP `form-action` must allow."""
    context: dict[str, object] = {
        "form_action": browser.server.config.endpoint(ENDPOINT_PATHS["login"]),
        "hidden": [(TICKET_FIELD, ticket)],
    }
    if client_name:
        context["client_name"] = client_name
    if username:
        context["username"] = username
    if error:
        context["error"] = error
    return browser.page(
        "login.html",
        context,
        status_code=status_code,
        form_targets=form_targets,
        headers=headers,
    )
