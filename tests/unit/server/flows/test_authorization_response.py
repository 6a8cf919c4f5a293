"""Authorization responses: query redirects and form_post pages, always with `iss` and the exact
`state` (RFC 6749 §4.1.2, RFC 9207, Form Post Response Mode, RFC 9700 §4.11-§4.12)."""

from __future__ import annotations

import base64
import hashlib
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlsplit

import pytest

from authgate.oauth.errors import AccessDenied, InvalidScope, LoginRequired
from authgate.server.flows.authorization_request import RedirectTarget
from authgate.server.flows.authorization_response import (
    authorization_error_response,
    authorization_success_response,
)
from authgate.server.flows.pages import PageRenderer, PageResponse
from tests.support.flows import ISSUER

HOSTILE_STATE = '"><script>alert(1)</script>&x=1 ?!'


@pytest.fixture(scope="module")
def renderer() -> PageRenderer:
    return PageRenderer(static_url="/static")


def header(response: PageResponse, name: str) -> str:
    values = [value for key, value in response.headers if key.lower() == name.lower()]
    assert len(values) == 1, name
    return values[0]


def query_of(response: PageResponse) -> tuple[str, list[tuple[str, str]]]:
    location = header(response, "Location")
    parts = urlsplit(location)
    assert parts.fragment == ""
    return parts._replace(query="").geturl(), parse_qsl(parts.query, keep_blank_values=True)


def test_code_by_query_redirect(renderer: PageRenderer) -> None:
    target = RedirectTarget("https://app.example.com/cb?tenant=a", "query", "xyz")
    response = authorization_success_response(target, code="c0de", issuer=ISSUER, renderer=renderer)
    assert response.status_code == 303  # never 307 (RFC 9700 §4.12)
    base, params = query_of(response)
    assert base == "https://app.example.com/cb"
    assert params == [("tenant", "a"), ("code", "c0de"), ("state", "xyz"), ("iss", ISSUER)]
    assert header(response, "Cache-Control") == "no-store"
    assert header(response, "Referrer-Policy") == "no-referrer"


def test_state_round_trips_exactly(renderer: PageRenderer) -> None:
    state = "".join(chr(c) for c in range(0x20, 0x7F))
    target = RedirectTarget("https://app.example.com/cb", "query", state)
    _, params = query_of(
        authorization_success_response(target, code="c", issuer=ISSUER, renderer=renderer)
    )
    assert dict(params)["state"] == state


def test_no_state_is_invented(renderer: PageRenderer) -> None:
    target = RedirectTarget("https://app.example.com/cb", "query", None)
    _, params = query_of(
        authorization_success_response(target, code="c", issuer=ISSUER, renderer=renderer)
    )
    assert [name for name, _ in params] == ["code", "iss"]


def test_error_by_query_redirect(renderer: PageRenderer) -> None:
    target = RedirectTarget("http://127.0.0.1:5000/cb", "query", "s")
    error = InvalidScope('scope "x\\y" \u00e9 not allowed\n')
    response = authorization_error_response(target, error, issuer=ISSUER, renderer=renderer)
    base, params = query_of(response)
    assert base == "http://127.0.0.1:5000/cb"
    assert params == [
        ("error", "invalid_scope"),
        # RFC 6749 §4.1.2.1: error_description excludes '"', '\\' and non-ASCII.
        ("error_description", "scope ?x?y? ? not allowed?"),
        ("state", "s"),
        ("iss", ISSUER),
    ]


def test_error_without_description(renderer: PageRenderer) -> None:
    target = RedirectTarget("com.example.app:/cb", "query", None)
    response = authorization_error_response(
        target, LoginRequired(), issuer=ISSUER, renderer=renderer
    )
    assert header(response, "Location") == (
        "com.example.app:/cb?error=login_required&iss=https%3A%2F%2Fauth.example.com"
    )


class FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, str | None]] = []
        self.inputs: list[tuple[str | None, str | None]] = []
        self.buttons = 0
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.forms.append(attributes)
        elif tag == "input":
            assert attributes.get("type") == "hidden"
            self.inputs.append((attributes.get("name"), attributes.get("value")))
        elif tag == "button":
            self.buttons += 1
        elif tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def test_form_post_page(renderer: PageRenderer) -> None:
    target = RedirectTarget("https://app.example.com/cb?x=1", "form_post", HOSTILE_STATE)
    response = authorization_success_response(target, code="c0de", issuer=ISSUER, renderer=renderer)
    assert response.status_code == 200
    parser = FormParser()
    parser.feed(response.body)
    assert parser.forms == [
        {"method": "post", "action": "https://app.example.com/cb?x=1", "class": "stack"}
    ]
    assert parser.inputs == [("code", "c0de"), ("state", HOSTILE_STATE), ("iss", ISSUER)]
    assert parser.buttons == 1  # works without JavaScript
    assert "<script>alert" not in response.body
    # The only script is the auto-submit line, allowed by its hash and nothing else.
    assert len(parser.scripts) == 1
    digest = base64.b64encode(hashlib.sha256(parser.scripts[0].encode()).digest()).decode()
    csp = header(response, "Content-Security-Policy")
    assert f"script-src 'sha256-{digest}'" in csp
    assert "unsafe-inline" not in csp
    assert "form-action https://app.example.com;" in csp
    assert "frame-ancestors 'none'" in csp
    assert header(response, "X-Frame-Options") == "DENY"


def test_form_post_error(renderer: PageRenderer) -> None:
    target = RedirectTarget("http://127.0.0.1:4000/cb", "form_post", None)
    response = authorization_error_response(
        target, AccessDenied("the user said no"), issuer=ISSUER, renderer=renderer
    )
    parser = FormParser()
    parser.feed(response.body)
    assert parser.inputs == [
        ("error", "access_denied"),
        ("error_description", "the user said no"),
        ("iss", ISSUER),
    ]
    assert "form-action http://127.0.0.1:4000;" in header(response, "Content-Security-Policy")
