"""The headless Chromium (Debian `chromium` + `chromium-driver`, through Selenium) shared by the
browser tests: a fresh profile per test, removed afterwards; the client's loopback site the
browser is sent back to, and the user's steps on the sign-in and consent pages."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.e2e import PASSWORD, USERNAME

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser() -> Iterator[object]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.fail("chromium and chromium-driver are required (scripts/test installs them)")
    from selenium import webdriver  # noqa: PLC0415  (only browser tests need selenium)
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    profile = tempfile.mkdtemp(prefix="authgate-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=900,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    os.environ.setdefault("SE_AVOID_STATS", "true")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class ClientSite:
    """The application's loopback site: records each request's path and query."""

    port: int
    landed: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait(self, path: str) -> dict[str, list[str]]:
        assert self.arrived.wait(20), "the browser did not come back to the client"
        landed_path, query = self.landed[-1]
        assert landed_path == path
        return query


@contextlib.contextmanager
def client_site() -> Iterator[ClientSite]:
    """A `ClientSite` on a free loopback port, recording /callback and /signed-out."""
    recorder: list[ClientSite] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path in ("/callback", "/signed-out"):
                recorder[0].landed.append((parts.path, parse_qs(parts.query)))
                recorder[0].arrived.set()
            self.send_response(200 if parts.path != "/favicon.ico" else 404)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"the application")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.append(ClientSite(server.server_address[1]))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield recorder[0]
    finally:
        server.shutdown()
        server.server_close()


def sign_in(driver: Any, username: str, password: str) -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415 - only browser tests need it

    driver.find_element(By.NAME, "username").clear()
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def wait_for(driver: Any, by: str, value: str) -> Any:
    """The element, once the page that has it has loaded."""
    from selenium.webdriver.support import expected_conditions  # noqa: PLC0415
    from selenium.webdriver.support.wait import WebDriverWait  # noqa: PLC0415

    return WebDriverWait(driver, 15).until(
        expected_conditions.presence_of_element_located((by, value))
    )


def sign_in_and_approve(driver: Any, url: str, site: ClientSite) -> str:
    """The user, in the browser: open the authorization URL, sign in, allow; returns the URL the
    browser was sent back to on `site` (`/callback` with the code or the error)."""
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    site.arrived.clear()
    driver.get(url)
    sign_in(driver, USERNAME, PASSWORD)
    wait_for(driver, By.NAME, "approve").click()
    site.wait("/callback")
    return str(driver.current_url)
