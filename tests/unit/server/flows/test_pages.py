"""The server-rendered pages: fields, CSRF, escaping, accessibility basics, security headers,
and overriding templates."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jinja2
import pytest

from authgate.server.flows.pages import (
    BUILTIN_TEMPLATES,
    PageRenderer,
    PageResponse,
    csp_source,
    security_headers,
)
from authgate.server.targets.identity_scopes import describe_scopes

HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>&amp;'
CSRF = "csrf-token-value-123"
STATIC_DIR = BUILTIN_TEMPLATES.parent / "static"


@dataclass
class Element:
    tag: str
    attrs: dict[str, str | None]


@dataclass
class Page(HTMLParser):
    elements: list[Element] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        HTMLParser.__init__(self)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(Element(tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[Element]:
        return [
            e
            for e in self.elements
            if e.tag == tag and all(e.attrs.get(k) == v for k, v in attrs.items())
        ]

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def parse(response: PageResponse) -> Page:
    page = Page()
    page.feed(response.body)
    page.close()
    return page


@pytest.fixture(scope="module")
def renderer() -> PageRenderer:
    return PageRenderer(static_url="/static/", site_name="Example Sign-in")


SCOPES = describe_scopes(["openid", "email", "orders:read"], {"orders:read": HOSTILE})
CONTEXTS: dict[str, dict[str, Any]] = {
    "login.html": {
        "form_action": "/login",
        "csrf_token": CSRF,
        "client_name": HOSTILE,
        "username": HOSTILE,
        "error": "Incorrect username or password.",
        "hidden": [("request_id", HOSTILE)],
    },
    "consent.html": {
        "form_action": "/consent",
        "csrf_token": CSRF,
        "client_name": HOSTILE,
        "apis": [HOSTILE],
        "scopes": SCOPES,
        "user_name": HOSTILE,
        "redirect_host": HOSTILE,
        "hidden": [("request_id", "r1")],
    },
    "logout.html": {
        "form_action": "/logout",
        "csrf_token": CSRF,
        "client_name": HOSTILE,
        "user_name": "alice",
        "hidden": [("state", HOSTILE)],
    },
    "device.html": {
        "form_action": "/device",
        "csrf_token": CSRF,
        "user_code": HOSTILE,
        "error": "That code is not valid.",
    },
    "device_confirm.html": {
        "form_action": "/device/confirm",
        "csrf_token": CSRF,
        "client_name": HOSTILE,
        "user_code": "BCDF-GHJK",
        "scopes": SCOPES,
        "apis": [HOSTILE],
    },
    "device_done.html": {"approved": True, "client_name": HOSTILE},
    "error.html": {"error": "invalid_request", "description": HOSTILE},
    "logged_out.html": {},
}
FORM_PAGES = ("login.html", "consent.html", "logout.html", "device.html", "device_confirm.html")


@pytest.mark.parametrize("template", sorted(CONTEXTS))
def test_every_page_is_safe_html(renderer: PageRenderer, template: str) -> None:
    response = renderer.render(template, CONTEXTS[template])
    page = parse(response)
    assert page.find("html")[0].attrs["lang"] == "en"
    assert page.find("meta", charset="utf-8")
    assert page.find("link", rel="stylesheet", href="/static/authgate.css")
    assert page.find("main", id="main")
    assert len(page.find("h1")) == 1
    # No script anywhere, and the hostile value never became markup.
    assert not page.find("script")
    assert not page.find("img")
    assert "<script>alert" not in response.body
    if "client_name" in CONTEXTS[template] or template == "error.html":
        assert '"><script>alert(1)</script>' in page.all_text  # shown as text, escaped
    assert "Example Sign-in" in page.all_text


@pytest.mark.parametrize("template", FORM_PAGES)
def test_every_form_posts_with_the_csrf_token(renderer: PageRenderer, template: str) -> None:
    page = parse(renderer.render(template, CONTEXTS[template]))
    forms = page.find("form")
    assert len(forms) == 1
    assert forms[0].attrs["method"] == "post"
    assert forms[0].attrs["action"] == CONTEXTS[template]["form_action"]
    csrf = page.find("input", type="hidden", name="csrf_token")
    assert [e.attrs["value"] for e in csrf] == [CSRF]


@pytest.mark.parametrize("template", FORM_PAGES)
def test_every_visible_input_has_a_label(renderer: PageRenderer, template: str) -> None:
    page = parse(renderer.render(template, CONTEXTS[template]))
    labelled = {e.attrs.get("for") for e in page.find("label")}
    for element in page.find("input"):
        if element.attrs.get("type") != "hidden":
            assert element.attrs.get("id") in labelled, element
            assert element.attrs.get("autocomplete"), element


def test_login_fields(renderer: PageRenderer) -> None:
    page = parse(renderer.render("login.html", CONTEXTS["login.html"]))
    [username] = page.find("input", name="username")
    [password] = page.find("input", name="password")
    assert username.attrs["autocomplete"] == "username"
    assert username.attrs["value"] == HOSTILE  # kept after a failed attempt, as an attribute
    assert password.attrs["type"] == "password"
    assert password.attrs["autocomplete"] == "current-password"
    assert "value" not in password.attrs  # a password is never echoed back
    assert "required" in username.attrs
    assert "required" in password.attrs
    # After a failed attempt the username is kept, so the password field gets the focus.
    assert "autofocus" in password.attrs
    assert "autofocus" not in username.attrs
    [alert] = page.find("div", role="alert")
    assert alert.attrs["id"] == username.attrs["aria-describedby"] == "form-error"
    assert "Error:" in page.all_text  # not shown by colour alone
    assert page.find("input", type="hidden", name="request_id", value=HOSTILE)


def test_login_without_optional_context(renderer: PageRenderer) -> None:
    page = parse(renderer.render("login.html", {"form_action": "/login", "csrf_token": CSRF}))
    assert page.find("input", name="username", value="")
    assert "autofocus" in page.find("input", name="username")[0].attrs
    assert not page.find("div", role="alert")
    assert "aria-invalid" not in page.find("input", name="username")[0].attrs


def test_consent_shows_client_api_and_every_scope(renderer: PageRenderer) -> None:
    page = parse(renderer.render("consent.html", CONTEXTS["consent.html"]))
    approve = page.find("button", name="approve")
    deny = page.find("button", name="deny")
    assert len(approve) == 1
    assert len(deny) == 1
    assert approve[0].attrs["type"] == deny[0].attrs["type"] == "submit"
    text = page.all_text
    for scope in SCOPES:
        assert scope.description in text
    assert "openid" in text
    assert "orders:read" in text
    assert len(page.find("li")) == len(SCOPES)


def test_consent_without_api(renderer: PageRenderer) -> None:
    context = {**CONTEXTS["consent.html"], "apis": []}
    assert "asks to:" in parse(renderer.render("consent.html", context)).all_text


def test_device_page_field(renderer: PageRenderer) -> None:
    page = parse(renderer.render("device.html", CONTEXTS["device.html"]))
    [field_] = page.find("input", name="user_code")
    assert field_.attrs["autocapitalize"] == "characters"
    assert field_.attrs["spellcheck"] == "false"
    assert "user_code_hint" in (field_.attrs["aria-describedby"] or "")


def test_device_confirm_shows_client_scopes_and_code(renderer: PageRenderer) -> None:
    page = parse(renderer.render("device_confirm.html", CONTEXTS["device_confirm.html"]))
    assert "BCDF-GHJK" in page.all_text
    assert page.find("input", type="hidden", name="user_code", value="BCDF-GHJK")
    assert page.find("button", name="approve")
    assert page.find("button", name="deny")
    assert "started this yourself" in page.all_text  # RFC 8628 §5.4 warning


def test_device_done_denied(renderer: PageRenderer) -> None:
    assert (
        "Access denied" in parse(renderer.render("device_done.html", {"approved": False})).all_text
    )


def test_logout_buttons(renderer: PageRenderer) -> None:
    page = parse(renderer.render("logout.html", CONTEXTS["logout.html"]))
    assert page.find("button", name="logout")
    assert page.find("button", name="cancel")


def test_error_page_never_links_anywhere(renderer: PageRenderer) -> None:
    page = parse(renderer.render("error.html", CONTEXTS["error.html"], status_code=400))
    assert [e.attrs.get("href") for e in page.find("a")] == ["#main"]  # only the skip link
    assert "invalid_request" in page.all_text


def test_missing_required_context_is_an_error_not_a_blank(renderer: PageRenderer) -> None:
    with pytest.raises(jinja2.UndefinedError):
        renderer.render("consent.html", {"form_action": "/c", "csrf_token": CSRF})


def test_security_headers_on_every_page(renderer: PageRenderer) -> None:
    response = renderer.render("login.html", CONTEXTS["login.html"], status_code=401)
    headers = dict(response.headers)
    assert response.status_code == 401
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    csp = headers["Content-Security-Policy"]
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    assert directives == {
        "default-src": "'none'",
        "script-src": "'none'",
        "style-src": "'self'",
        "img-src": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
        "base-uri": "'none'",
    }
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_form_targets_extend_form_action(renderer: PageRenderer) -> None:
    response = renderer.render(
        "consent.html",
        CONTEXTS["consent.html"],
        form_targets=["https://app.example.com/cb?x=1", "com.example.app:/cb"],
    )
    csp = dict(response.headers)["Content-Security-Policy"]
    assert "form-action 'self' https://app.example.com com.example.app:;" in csp


@pytest.mark.parametrize(
    ("uri", "source"),
    [
        ("https://app.example.com/cb?x=1", "https://app.example.com"),
        ("https://app.example.com:8443/cb", "https://app.example.com:8443"),
        ("http://127.0.0.1:5000/cb", "http://127.0.0.1:5000"),
        ("http://[::1]:5000/cb", "http:"),
        ("com.example.app:/cb", "com.example.app:"),
    ],
)
def test_csp_source(uri: str, source: str) -> None:
    assert csp_source(uri) == source


def test_security_headers_without_self() -> None:
    csp = dict(security_headers(allow_self_forms=False))["Content-Security-Policy"]
    assert "form-action 'none'" in csp


def test_templates_can_be_overridden(tmp_path: Path) -> None:
    (tmp_path / "base.html").write_text(
        '<!doctype html><html lang="{{ lang }}"><body class="acme">'
        "{% block content %}{% endblock %}</body></html>"
    )
    renderer = PageRenderer(static_url="/s", template_dirs=[tmp_path], lang="fr")
    response = renderer.render("login.html", {"form_action": "/login", "csrf_token": CSRF})
    page = parse(response)
    assert page.find("body", **{"class": "acme"})
    assert page.find("html")[0].attrs["lang"] == "fr"
    assert page.find("input", name="username")  # the built-in login.html, in the team's layout
    # A team's own template still gets autoescaping.
    (tmp_path / "error.html").write_text("<p>{{ description }}</p>")
    body = renderer.render("error.html", {"error": "x", "description": HOSTILE}).body
    assert "<script>" not in body


def test_stylesheet_is_shipped_with_focus_styles() -> None:
    css = (STATIC_DIR / "authgate.css").read_text()
    assert ":focus-visible" in css
    assert "prefers-color-scheme" in css
