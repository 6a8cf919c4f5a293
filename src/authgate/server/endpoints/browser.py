"""The browser side of the user-facing endpoints: the session cookie, the signed-in session, CSRF
checks and turning rendered pages into responses (RFC 6265bis §4.1.3.2, §5.6.7; RFC 6749 §10.12;
RFC 9700 §4.7 and §4.16; `flows.sessions` and `flows.pages` hold the rules).

Every visitor gets a random cookie id on the first page, before signing in, so that the login form
itself carries a CSRF token bound to this browser. Signing in always replaces the id (no session
fixation); the session is stored server side under the id's keyed hash, so signing out and expiry
are real. Every page goes out with the security headers of `flows.pages.security_headers`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from authgate.http_forwarding import client_address
from authgate.oauth.errors import InvalidRequest, OAuthError
from authgate.server.auth_server import AuthServer
from authgate.server.flows.pages import PageResponse
from authgate.server.flows.pending_requests import PendingRequest
from authgate.server.flows.sessions import CSRF_FIELD, is_active, start_session, touch
from authgate.server.http.forms import read_body
from authgate.server.models import Session, User
from authgate.server.secret_key import generate_token

__all__ = [
    "TICKET_FIELD",
    "Browser",
    "CsrfFailure",
    "csrf_value",
    "open_browser",
    "read_form_pairs",
    "read_query_pairs",
    "read_request_pairs",
    "request_address",
    "single",
]

# The hidden field of our forms that carries the waiting request (`flows.pending_requests`).
TICKET_FIELD = "ticket"

_COOKIE_ID = re.compile(r"[A-Za-z0-9_\-]{43}")  # `generate_token`: 32 bytes, base64url
_MAX_QUERY = 8 * 1024
# A page's form carries a ticket of the query (`flows.pending_requests`).
_MAX_FORM = 48 * 1024
_FORM_TYPE = "application/x-www-form-urlencoded"


class CsrfFailure(InvalidRequest):
    """A form came without this browser's CSRF token (another site, or an expired page)."""

    status_code = 403


@dataclass(slots=True)
class Browser:
    """One request from a browser: its cookie id, its signed-in session, the cookies to set."""

    server: AuthServer
    cookie_id: str
    address: str  # the client address, for throttling
    session: Session | None = None
    user: User | None = None
    set_cookies: list[str] = field(default_factory=list)

    @property
    def csrf_token(self) -> str:
        """The CSRF token of the forms rendered for this browser."""
        return self.server.pages.csrf.token(self.cookie_id)

    def check_csrf(self, presented: str | None) -> None:
        """Raise `CsrfFailure` unless `presented` is this browser's token."""
        if not self.server.pages.csrf.verify(self.cookie_id, presented):
            raise CsrfFailure("the form has expired or did not come from this site; start again")

    async def read_form(self, request: Request) -> list[tuple[str, str]]:
        """The parameters of a form of ours that this browser posted back; `CsrfFailure` unless
        it carries this browser's CSRF token."""
        pairs = await read_form_pairs(request)
        self.check_csrf(csrf_value(pairs))
        return pairs

    def open_ticket(
        self, pairs: Iterable[tuple[str, str]], kinds: Collection[str]
    ) -> PendingRequest:
        """The request waiting in the form's ticket, which must be of one of `kinds`;
        `InvalidRequest` when it is missing, altered or expired."""
        server = self.server
        return server.pages.tickets.open(single(pairs, TICKET_FIELD), kinds, server.now())

    async def sign_in(self, user: User, amr: Iterable[str]) -> None:
        """Start a new session for `user` under a new cookie id."""
        server = self.server
        if self.session is not None:
            await server.storage.delete_session(self.session.session_hash)
        cookie_id, session = start_session(
            hash_token=server.secret.hash_token, user_id=user.user_id, amr=amr, now=server.now()
        )
        await server.storage.save_session(session)
        self.cookie_id, self.session, self.user = cookie_id, session, user
        self.set_cookies.append(server.pages.cookie.set_header(cookie_id))

    async def sign_out(self) -> None:
        """End the session and forget the cookie."""
        if self.session is not None:
            await self.server.storage.delete_session(self.session.session_hash)
        self.session = self.user = None
        self.set_cookies.append(self.server.pages.cookie.clear_header())

    def page(
        self,
        template: str,
        context: Mapping[str, Any],
        *,
        status_code: int = 200,
        form_targets: Iterable[str] = (),
        headers: Iterable[tuple[str, str]] = (),
    ) -> Response:
        """Render `template` with the CSRF token and the signed-in user's name in its context."""
        full = {"csrf_token": self.csrf_token, **context}
        if self.user is not None:
            full.setdefault("user_name", self.user.name or self.user.username)
        rendered = self.server.pages.renderer.render(
            template, full, status_code=status_code, form_targets=form_targets
        )
        return self.respond(rendered, headers)

    def error_page(self, error: OAuthError, status_code: int | None = None) -> Response:
        """The error page for `error` (never a redirect: RFC 6749 §4.1.2.1)."""
        context = {"error": error.error, "description": error.description}
        status = status_code or (error.status_code if error.status_code >= 400 else 400)
        if status == 401:
            status = 400  # a page is no HTTP authentication challenge (RFC 9110 §15.5.2)
        return self.page("error.html", context, status_code=status)

    def respond(self, page: PageResponse, headers: Iterable[tuple[str, str]] = ()) -> Response:
        """`page` as a Starlette response, with the cookies this request set."""
        response = Response(page.body.encode("utf-8"), status_code=page.status_code)
        for name, value in (*page.headers, *headers):
            response.headers.append(name, value)
        for cookie in self.set_cookies:
            response.headers.append("Set-Cookie", cookie)
        return response


async def open_browser(request: Request, server: AuthServer) -> Browser:
    """The browser of `request`: its active session, or a (new) anonymous cookie id."""
    address = request_address(request, server)
    value = request.cookies.get(server.pages.cookie.name)
    if value is None or _COOKIE_ID.fullmatch(value) is None:
        fresh = Browser(server, generate_token(), address)
        fresh.set_cookies.append(server.pages.cookie.set_header(fresh.cookie_id))
        return fresh
    browser = Browser(server, value, address)
    store = server.storage
    session = await store.get_session(server.secret.hash_token(value))
    if session is None:
        return browser
    now = server.now()
    if not is_active(session, now, server.config.sessions):
        await store.delete_session(session.session_hash)
        return browser
    user = await server.registry.get_user(session.user_id)
    if user is None:  # deleted since signing in
        await store.delete_session(session.session_hash)
        return browser
    touched = touch(session, now, server.config.sessions)
    if touched is not None:
        await store.save_session(touched)
        session = touched
    browser.session, browser.user = session, user
    return browser


def request_address(request: Request, server: AuthServer) -> str:
    """The client's address: the TCP peer, or behind `http.trusted_proxies` the right-most
    untrusted X-Forwarded-For entry (RFC 7239 §5.2), so users behind one proxy are not throttled
    as one."""
    peer = request.client.host if request.client is not None else "unknown"
    # Repeated header lines form one list (RFC 9110 §5.3).
    chain = ", ".join(request.headers.getlist("x-forwarded-for"))
    return client_address(peer, chain, server.pages.proxies)


def read_query_pairs(request: Request) -> list[tuple[str, str]]:
    """The query's parameters in order, duplicates kept (the flows judge them); `InvalidRequest`
    for an oversized query or one that is not UTF-8."""
    return _pairs(request.url.query)


async def read_request_pairs(request: Request) -> list[tuple[str, str]]:
    """The parameters of a GET or POST request (OpenID Connect Core §3.1.2.1): the urlencoded body
    of a POST, the query of a GET."""
    if request.method == "POST":
        return await read_form_pairs(request)
    return read_query_pairs(request)


async def read_form_pairs(request: Request) -> list[tuple[str, str]]:
    """The urlencoded body's parameters in order, duplicates kept."""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media != _FORM_TYPE:
        raise InvalidRequest("send the form as application/x-www-form-urlencoded")
    body = await read_body(request, _MAX_FORM)
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidRequest("the form must be percent-encoded") from None
    return _pairs(text, limit=len(text))


def _pairs(text: str, *, limit: int = _MAX_QUERY) -> list[tuple[str, str]]:
    if len(text) > limit:
        raise InvalidRequest("the request is too large")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the request parameters are malformed") from None
    if any("\x00" in name or "\x00" in value for name, value in pairs):
        raise InvalidRequest("the request parameters are malformed")
    return pairs


def single(pairs: Iterable[tuple[str, str]], name: str) -> str | None:
    """The one non-empty value of `name` in a form of ours; `InvalidRequest` when repeated."""
    values = [value for key, value in pairs if key == name and value]
    if len(values) > 1:
        raise InvalidRequest(f"{name} must not be repeated")
    return values[0] if values else None


def csrf_value(pairs: Iterable[tuple[str, str]]) -> str | None:
    """The CSRF field of a submitted form."""
    return single(pairs, CSRF_FIELD)
