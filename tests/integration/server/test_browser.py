"""The sign-in pages in a real headless Chromium (Debian `chromium` + `chromium-driver`, through
Selenium; the `browser` fixture of `tests.support.browser`) against
`authgate serve` on loopback, on SQLite and PostgreSQL: sign-in and consent, deny, the device
page, logout, and a wrong password that looks exactly like an unknown user. The client is a small
loopback server that records where the browser lands; screenshots of the pages are saved to the
temporary directory."""

from __future__ import annotations

import re
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.support.browser import ClientSite, client_site, sign_in, wait_for
from tests.support.e2e import DEVICE_GRANT, PASSWORD, USERNAME
from tests.support.e2e_served import Served

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(tempfile.gettempdir())
# What differs between two sign-in pages whoever signs in: this browser's CSRF token and the
# request's ticket (its parameters and time, sealed), besides the username typed.
PER_REQUEST = re.compile(r'name="(csrf_token|ticket)" value="[^"]*"')


@pytest.fixture
def site() -> Iterator[ClientSite]:
    with client_site() as recorder:
        yield recorder


def authorization_url(served: Served, site: ClientSite, state: str) -> str:
    params = {
        "response_type": "code",
        "client_id": served.web.client_id,
        "redirect_uri": site.url("/callback"),
        "scope": "openid profile read",
        "state": state,
        "prompt": "consent",  # the consent page every time, though consent is remembered
    }
    return f"{served.url}/authorize?{urlencode(params)}"


def status(driver: Any) -> int:
    """The HTTP status of the page shown (Navigation Timing; WebDriver scripts bypass the CSP)."""
    code: int = driver.execute_script(
        "return performance.getEntriesByType('navigation')[0].responseStatus"
    )
    return code


def test_sign_in_consent_and_code(served: Served, site: ClientSite, browser: Any) -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    browser.get(authorization_url(served, site, "browser-state"))
    assert browser.title == "Sign in · authgate"
    assert "Web App" in browser.find_element(By.CLASS_NAME, "client-name").text
    assert browser.find_element(By.ID, "main").value_of_css_property("padding-top") == "32px"
    browser.save_screenshot(str(SCREENSHOTS / "authgate-e2e-login.png"))
    sign_in(browser, USERNAME, PASSWORD)

    wait_for(browser, By.NAME, "approve")  # the consent page
    assert browser.title == "Allow access · authgate"
    items = [li.text for li in browser.find_elements(By.CSS_SELECTOR, ".scopes li")]
    assert any("See your name and username" in item for item in items)
    assert any("read" in item for item in items)
    assert "Orders API" in browser.find_element(By.CLASS_NAME, "api-name").text
    browser.save_screenshot(str(SCREENSHOTS / "authgate-e2e-consent.png"))
    browser.find_element(By.NAME, "approve").click()

    query = site.wait("/callback")
    assert query["state"] == ["browser-state"]
    assert query["iss"] == [served.url]
    tokens = httpx.post(
        served.url + "/token",
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": site.url("/callback"),
        },
        auth=(served.web.client_id, served.web_secret),
    )
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["id_token"]


def test_deny(served: Served, site: ClientSite, browser: Any) -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    browser.get(authorization_url(served, site, "deny-state"))
    sign_in(browser, USERNAME, PASSWORD)
    wait_for(browser, By.NAME, "deny").click()
    query = site.wait("/callback")
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["deny-state"]
    assert "code" not in query


def test_wrong_password_and_unknown_user_look_the_same(
    served: Served, site: ClientSite, browser: Any
) -> None:
    pages = []
    for username in (USERNAME, "nobody-" + secrets.token_hex(4)):
        browser.delete_all_cookies()
        browser.get(authorization_url(served, site, "same"))
        sign_in(browser, username, "not the right password")
        wait_for(browser, "id", "form-error")
        assert "Incorrect username or password." in browser.page_source
        html = PER_REQUEST.sub("", browser.page_source).replace(f'value="{username}"', "")
        pages.append((status(browser), browser.title, html))
    assert pages[0] == pages[1]
    assert pages[0][0] == 200


def test_device_page(served: Served, browser: Any) -> None:
    from selenium.common.exceptions import WebDriverException  # noqa: PLC0415
    from selenium.webdriver.common.by import By  # noqa: PLC0415
    from selenium.webdriver.support import expected_conditions  # noqa: PLC0415
    from selenium.webdriver.support.wait import WebDriverWait  # noqa: PLC0415

    device = httpx.post(
        served.url + "/device_authorization",
        data={"client_id": served.native.client_id, "scope": "read"},
    ).json()
    browser.get(device["verification_uri"])
    sign_in(browser, USERNAME, PASSWORD)
    field_ = wait_for(browser, By.NAME, "user_code")
    field_.send_keys(device["user_code"].lower().replace("-", ""))
    browser.save_screenshot(str(SCREENSHOTS / "authgate-e2e-device.png"))
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(browser, By.NAME, "approve")
    assert device["user_code"] in browser.find_element(By.CLASS_NAME, "code").text
    assert "Native App" in browser.find_element(By.CLASS_NAME, "client-name").text
    browser.save_screenshot(str(SCREENSHOTS / "authgate-e2e-device-confirm.png"))
    browser.find_element(By.NAME, "approve").click()
    # The confirmation page names the client too: wait until it has been replaced (while it goes,
    # Chrome may answer a lookup with an error of its own).
    WebDriverWait(browser, 15, ignored_exceptions=[WebDriverException]).until(
        expected_conditions.invisibility_of_element_located((By.NAME, "approve"))
    )
    wait_for(browser, By.CLASS_NAME, "client-name")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Device connected"
    tokens = httpx.post(
        served.url + "/token",
        data={
            "grant_type": DEVICE_GRANT,
            "device_code": device["device_code"],
            "client_id": served.native.client_id,
        },
    )
    assert tokens.status_code == 200, tokens.text


def test_logout(served: Served, site: ClientSite, browser: Any) -> None:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    browser.get(authorization_url(served, site, "before-logout"))
    sign_in(browser, USERNAME, PASSWORD)
    wait_for(browser, By.NAME, "approve").click()
    site.wait("/callback")
    site.arrived.clear()
    params = {
        "client_id": served.web.client_id,
        "post_logout_redirect_uri": site.url("/signed-out"),
        "state": "bye",
    }
    browser.get(f"{served.url}/logout?{urlencode(params)}")
    assert browser.title == "Sign out · authgate"
    browser.save_screenshot(str(SCREENSHOTS / "authgate-e2e-logout.png"))
    browser.find_element(By.NAME, "logout").click()
    assert site.wait("/signed-out") == {"state": ["bye"]}
    # Signed out for real: the next authorization asks for the password again.
    browser.get(authorization_url(served, site, "after-logout"))
    assert wait_for(browser, By.NAME, "password")
