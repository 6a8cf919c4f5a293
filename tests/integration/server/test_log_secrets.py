"""No credential in any log line (issue 10): the flows that handle every kind of credential are
run in process with the server's loggers at DEBUG written as JSON lines, and each value the test
saw (codes, tokens, the client secret, the password, user and device codes, cookie values) is
searched for in every line. (The suite's autouse `captured_server_logs` scans every other test's
lines for credential-shaped strings, and the `served` fixture scans the serve process's log.)"""

from __future__ import annotations

import json

from tests.support.e2e import DEVICE_GRANT, PASSWORD, USERNAME, WEB_REDIRECT, Flow, only_form
from tests.support.log_scan import assert_no_secrets


async def test_no_credential_in_any_log_line(flow: Flow, captured_server_logs: list[str]) -> None:
    seen: list[str] = [flow.web_secret, PASSWORD]
    await flow.harness.create_api("https://svc.example.test", scopes=("svc",))
    service, service_secret = await flow.harness.create_client(
        name="svc", grant_types=("client_credentials",), scopes=("svc",)
    )
    assert service_secret is not None
    seen.append(service_secret)

    # Failed sign-ins (a wrong password; a password typed into the username field).
    agent = flow.agent()
    request = {
        "response_type": "code",
        "client_id": flow.web.client_id,
        "redirect_uri": WEB_REDIRECT,
        "scope": "openid read",
        "state": "s",
    }
    page = await agent.authorize(**request)
    await agent.sign_in(page, USERNAME, "wrong-password-" + PASSWORD)
    await agent.sign_in(await agent.authorize(**request), PASSWORD, PASSWORD)
    seen.append("wrong-password-" + PASSWORD)

    # The code flow, refresh, introspection, revocation.
    result = await flow.web_code(scope="openid offline_access read")
    seen.append(result["code"])
    tokens = (
        await flow.token(
            grant_type="authorization_code", code=result["code"], redirect_uri=WEB_REDIRECT
        )
    ).json()
    seen += [tokens["access_token"], tokens["refresh_token"], tokens["id_token"]]
    refreshed = (
        await flow.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    ).json()
    seen += [refreshed["access_token"], refreshed["refresh_token"]]
    await flow.introspect(refreshed["access_token"])
    await flow.post("/revoke", token=refreshed["refresh_token"])
    # A replayed, revoked refresh token; a replayed code.
    await flow.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    reused = await flow.token(
        grant_type="authorization_code", code=result["code"], redirect_uri=WEB_REDIRECT
    )
    assert reused.status_code == 400  # refused, and logged as refused
    await flow.http.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})

    # Client credentials, right and wrong secrets.
    good = await flow.harness.token(service, service_secret)
    seen.append(good.json()["access_token"])
    await flow.harness.token(service, service_secret[::-1])
    seen.append(service_secret[::-1])

    # The device flow.
    device = (await flow.post("/device_authorization", flow.native, scope="openid read")).json()
    seen += [device["device_code"], device["user_code"]]
    await flow.token(flow.native, grant_type=DEVICE_GRANT, device_code=device["device_code"])
    device_agent = flow.agent()
    login = await device_agent.http.get("/device")
    page = await device_agent.sign_in(login, USERNAME, PASSWORD)
    confirm = await device_agent.submit(only_form(page), user_code=device["user_code"])
    await device_agent.submit(only_form(confirm), "approve")
    polled = await flow.token(
        flow.native, grant_type=DEVICE_GRANT, device_code=device["device_code"]
    )
    assert polled.status_code == 200, polled.text
    seen.append(polled.json()["access_token"])

    # Cookie values the browsers were given.
    for http in flow.agents:
        seen += [cookie.value for cookie in http.cookies.jar if cookie.value]

    assert captured_server_logs, "nothing was logged: the scan would prove nothing"
    assert any('"logger":"authgate.access"' in line for line in captured_server_logs)
    during_requests = [
        json.loads(line)
        for line in captured_server_logs
        if line.startswith('{"') and ("authgate.access" in line or "refused" in line)
    ]
    assert len(during_requests) > 20
    assert all(line["request_id"] != "-" for line in during_requests)  # each names its request
    assert_no_secrets(captured_server_logs, seen)
