"""The device authorization grant end to end, in process, on SQLite and PostgreSQL (RFC 8628): the
device authorization response, polling (`authorization_pending`, `slow_down`, `access_denied`,
`expired_token`), the verification pages behind sign-in, tokens handed out once, throttled
user-code guessing."""

from __future__ import annotations

import re
from typing import Any

from tests.support.e2e import (
    DEVICE_GRANT,
    PASSWORD,
    USERNAME,
    Flow,
    UserAgent,
    assert_page_headers,
    only_form,
)
from tests.support.server_harness import ISSUER

USER_CODE = re.compile(r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}")


async def start(flow: Flow, scope: str = "openid offline_access read") -> dict[str, Any]:
    response = await flow.post("/device_authorization", flow.native, scope=scope)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


async def poll(flow: Flow, device_code: str) -> Any:
    return await flow.token(flow.native, grant_type=DEVICE_GRANT, device_code=device_code)


async def signed_in_device_page(flow: Flow) -> tuple[UserAgent, Any]:
    agent = flow.agent()
    login = await agent.http.get("/device")
    assert only_form(login).action == ISSUER + "/login"
    page = await agent.sign_in(login, USERNAME, PASSWORD)
    assert page.status_code == 200
    assert only_form(page).action == ISSUER + "/device"
    return agent, page


async def test_device_authorization_response(flow: Flow) -> None:
    body = await start(flow)
    assert set(body) == {
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    }
    assert USER_CODE.fullmatch(body["user_code"])
    assert len(body["device_code"]) >= 43
    assert body["verification_uri"] == ISSUER + "/device"
    assert body["verification_uri_complete"] == f"{ISSUER}/device?user_code={body['user_code']}"
    assert body["expires_in"] == 600
    assert body["interval"] == 5


async def test_device_flow_approved_through_the_pages(flow: Flow) -> None:
    body = await start(flow)
    pending = await poll(flow, body["device_code"])
    assert pending.status_code == 400
    assert pending.json()["error"] == "authorization_pending"
    too_fast = await poll(flow, body["device_code"])
    assert too_fast.json()["error"] == "slow_down"
    flow.harness.clock.advance(6)
    still_too_fast = await poll(flow, body["device_code"])
    assert still_too_fast.json()["error"] == "slow_down"  # the interval grew by 5 s for good

    agent, page = await signed_in_device_page(flow)
    typed = body["user_code"].lower().replace("-", " ")  # case, dashes and spaces do not matter
    confirm = await agent.submit(only_form(page), user_code=typed)
    assert confirm.status_code == 200
    assert_page_headers(confirm)
    assert "Native App" in confirm.text
    assert body["user_code"] in confirm.text
    assert "Orders API" in confirm.text
    assert "Keep this access while you are not signed in" in confirm.text
    assert "If someone sent you this code, deny" in confirm.text  # RFC 8628 §5.4
    done = await agent.submit(only_form(confirm), "approve")
    assert "Device connected" in done.text

    flow.harness.clock.advance(10)
    tokens = await poll(flow, body["device_code"])
    assert tokens.status_code == 200, tokens.text
    issued = tokens.json()
    assert issued["scope"] == "openid offline_access read"
    assert issued["refresh_token"]
    assert issued["id_token"]
    flow.harness.clock.advance(10)
    again = await poll(flow, body["device_code"])
    assert again.json()["error"] == "invalid_grant"  # handed out once
    refreshed = await flow.token(
        flow.native, grant_type="refresh_token", refresh_token=issued["refresh_token"]
    )
    assert refreshed.status_code == 200


async def test_verification_uri_complete_after_sign_in(flow: Flow) -> None:
    body = await start(flow, scope="read")
    agent = flow.agent()
    login = await agent.http.get(body["verification_uri_complete"].removeprefix(ISSUER))
    confirm = await agent.sign_in(login, USERNAME, PASSWORD)
    assert only_form(confirm).value("user_code") == body["user_code"]
    assert {name for name, _ in only_form(confirm).buttons} == {"approve", "deny"}


async def test_denied_and_expired(flow: Flow) -> None:
    denied = await start(flow)
    agent, page = await signed_in_device_page(flow)
    confirm = await agent.submit(only_form(page), user_code=denied["user_code"])
    done = await agent.submit(only_form(confirm), "deny")
    assert "Access denied" in done.text
    answer = await poll(flow, denied["device_code"])
    assert answer.status_code == 400  # token endpoint errors are 400 (RFC 6749 §5.2)
    assert answer.json()["error"] == "access_denied"

    late = await start(flow)
    flow.harness.clock.advance(601)
    assert (await poll(flow, late["device_code"])).json()["error"] == "expired_token"
    expired_page = await agent.submit(only_form(page), user_code=late["user_code"])
    assert "not valid or has expired" in expired_page.text
    used_up = await agent.submit(only_form(confirm), "approve")  # decided already
    assert "not valid or has expired" in used_up.text


async def test_user_code_guessing_is_throttled(flow: Flow) -> None:
    agent, page = await signed_in_device_page(flow)
    form = only_form(page)
    for _ in range(6):  # five free attempts; the sixth makes the next one wait
        wrong = await agent.submit(form, user_code="BBBB-BBBB")
        assert wrong.status_code == 200
        assert "not valid or has expired" in wrong.text
    blocked = await agent.submit(form, user_code="BBBB-BBBB")
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    real = await start(flow)
    still_blocked = await agent.submit(form, user_code=real["user_code"])
    assert still_blocked.status_code == 429  # even a right code waits
    flow.harness.clock.advance(int(blocked.headers["retry-after"]))
    allowed = await agent.submit(form, user_code=real["user_code"])
    assert "Allow" in allowed.text


async def test_approving_devices_with_right_codes_is_never_throttled(flow: Flow) -> None:
    """Issue 8, finding 4: every code counted against the user and the address (twice per device:
    typed, then approved), so the third device approved within the hour got 429. Now a right code
    takes its count back; only wrong codes add up (the clock stands still here)."""
    agent, page = await signed_in_device_page(flow)
    for _ in range(6):
        body = await start(flow, scope="read")
        confirm = await agent.submit(only_form(page), user_code=body["user_code"])
        assert confirm.status_code == 200, confirm.text
        done = await agent.submit(only_form(confirm), "approve")
        assert done.status_code == 200, done.text
        assert "Device connected" in done.text
    # Wrong codes are throttled exactly as on a fresh page: five free, the sixth sets a wait.
    statuses = []
    for _ in range(7):
        response = await agent.submit(only_form(page), user_code="BBBB-BBBB")
        statuses.append(response.status_code)
    assert statuses == [200] * 6 + [429]


async def test_device_endpoint_errors(flow: Flow) -> None:
    web = await flow.post("/device_authorization", scope="read")  # not registered for it
    assert web.status_code == 400
    assert web.json()["error"] == "unauthorized_client"
    unknown_scope = await flow.post("/device_authorization", flow.native, scope="write")
    assert unknown_scope.json()["error"] == "invalid_scope"
    target = await flow.post(
        "/device_authorization", flow.native, scope="read", resource="https://x.example"
    )
    assert target.json()["error"] == "invalid_target"
    anonymous = await flow.http.post("/device_authorization", data={"scope": "read"})
    assert anonymous.status_code == 401
    bogus = await poll(flow, "not-a-device-code")
    assert bogus.json()["error"] == "invalid_grant"
    missing = await flow.token(flow.native, grant_type=DEVICE_GRANT)
    assert missing.json()["error"] == "invalid_request"


async def test_guessing_through_the_answer_form_is_throttled_too(flow: Flow) -> None:
    agent, page = await signed_in_device_page(flow)
    form = only_form(page)
    statuses = []
    for _ in range(7):
        response = await agent.submit(form, user_code="BBBB-BBBB", approve="approve")
        statuses.append(response.status_code)
    assert statuses == [200] * 6 + [429]
