"""The login and consent pages in a real headless Chromium (Debian `chromium` + `chromium-driver`).

A tiny loopback server serves the rendered pages with their security headers; the browser fills the
login form, approves on the consent page and follows the redirect to a client on another port.
The test checks what arrived (fields, CSRF tokens) and saves screenshots of both pages to /tmp.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from authgate.server.flows.authorization_request import RedirectTarget
from authgate.server.flows.authorization_response import authorization_success_response
from authgate.server.flows.pages import BUILTIN_TEMPLATES, PageRenderer, PageResponse
from authgate.server.flows.sessions import CsrfTokens
from authgate.server.targets.identity_scopes import describe_scopes
from tests.support.browser import wait_for

pytestmark = pytest.mark.browser

STATIC = BUILTIN_TEMPLATES.parent / "static"
SESSION_ID = "browser-session-id"
CSRF = CsrfTokens(b"s" * 32)
SCREENSHOTS = Path(tempfile.gettempdir())


@dataclass
class Recorder:
    posts: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    callback: threading.Event = field(default_factory=threading.Event)
    callback_query: dict[str, list[str]] = field(default_factory=dict)


def serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def servers() -> Iterator[tuple[str, str, Recorder]]:
    recorder = Recorder()
    renderer = PageRenderer(static_url="/static", site_name="authgate test")

    class Client(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path != "/cb":  # the browser also asks for /favicon.ico
                self.send_error(404)
                return
            recorder.callback_query = parse_qs(parts.query)
            recorder.callback.set()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"client received the code")

        def log_message(self, *args: object) -> None:
            pass

    client = serve(Client)
    redirect_uri = f"http://127.0.0.1:{client.server_address[1]}/cb"

    class Server(BaseHTTPRequestHandler):
        def send(self, response: PageResponse) -> None:
            self.send_response(response.status_code)
            for name, value in response.headers:
                self.send_header(name, value)
            body = response.body.encode()
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def redirect(self, location: str) -> None:
            self.send_response(303)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/static/authgate.css":
                css = (STATIC / "authgate.css").read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "text/css")
                self.send_header("Content-Length", str(len(css)))
                self.end_headers()
                self.wfile.write(css)
            elif path == "/login":
                context = {
                    "form_action": "/login",
                    "csrf_token": CSRF.token(SESSION_ID),
                    "client_name": "Example <Orders> App",
                    "hidden": [("request_id", "req-1")],
                }
                self.send(renderer.render("login.html", context, form_targets=[redirect_uri]))
            elif path == "/consent":
                context = {
                    "form_action": "/consent",
                    "csrf_token": CSRF.token(SESSION_ID),
                    "client_name": "Example <Orders> App",
                    "apis": ["Orders API"],
                    "scopes": describe_scopes(
                        ["openid", "profile", "orders:read", "orders:write"],
                        {"orders:read": "Read your orders", "orders:write": "Place orders"},
                    ),
                    "user_name": "alice",
                    "redirect_host": "127.0.0.1",
                    "hidden": [("request_id", "req-1")],
                }
                self.send(renderer.render("consent.html", context, form_targets=[redirect_uri]))
            else:
                self.send_error(404)

        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            form = parse_qs(self.rfile.read(length).decode())
            path = urlsplit(self.path).path
            recorder.posts[path] = form
            if not CSRF.verify(SESSION_ID, form.get("csrf_token", [None])[0]):
                self.send_error(403)
            elif path == "/login":
                self.redirect("/consent")
            elif path == "/consent":
                target = RedirectTarget(redirect_uri, "query", "state-1")
                self.send(
                    authorization_success_response(
                        target, code="the-code", issuer=base, renderer=renderer
                    )
                )
            else:
                self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = serve(Server)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield base, redirect_uri, recorder
    server.shutdown()
    client.shutdown()


def test_login_and_consent_in_chromium(servers: tuple[str, str, Recorder], browser: object) -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415
    from selenium.webdriver.remote.webdriver import WebDriver  # noqa: PLC0415

    assert isinstance(browser, WebDriver)
    base, redirect_uri, recorder = servers
    browser.get(f"{base}/login")
    assert browser.title == "Sign in · authgate test"
    assert "Example <Orders> App" in browser.find_element(By.CLASS_NAME, "client-name").text
    # The stylesheet loaded under the page's CSP (the card has its border and padding).
    card = browser.find_element(By.ID, "main")
    assert card.value_of_css_property("padding-top") == "32px"
    browser.save_screenshot(str(SCREENSHOTS / "authgate-login.png"))

    username = browser.find_element(By.NAME, "username")
    assert browser.switch_to.active_element == username  # autofocus
    username.send_keys("alice")
    browser.find_element(By.NAME, "password").send_keys("correct horse battery staple")
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    wait_for(browser, By.NAME, "approve")  # the consent page, once the form's answer has loaded
    assert browser.current_url == f"{base}/consent"
    assert recorder.posts["/login"] == {
        "csrf_token": [CSRF.token(SESSION_ID)],
        "request_id": ["req-1"],
        "username": ["alice"],
        "password": ["correct horse battery staple"],
    }
    items = [li.text for li in browser.find_elements(By.CSS_SELECTOR, ".scopes li")]
    assert len(items) == 4
    assert any("Read your orders" in item for item in items)
    browser.save_screenshot(str(SCREENSHOTS / "authgate-consent.png"))

    browser.find_element(By.NAME, "approve").click()
    assert recorder.callback.wait(20), "the browser did not reach the client's redirect URI"
    assert recorder.posts["/consent"] == {
        "csrf_token": [CSRF.token(SESSION_ID)],
        "request_id": ["req-1"],
        "approve": ["approve"],
    }
    assert recorder.callback_query == {
        "code": ["the-code"],
        "state": ["state-1"],
        "iss": [base],
    }
    assert browser.current_url.startswith(redirect_uri + "?" + urlencode({"code": "the-code"}))
