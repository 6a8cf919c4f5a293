"""The audit trail from the running server, on SQLite and PostgreSQL: refresh-token reuse and
throttled sign-ins are stored and logged (logger `authgate.audit`), once per crossing, with no
token or password in the event or the log line."""

from __future__ import annotations

import logging

import pytest

from authgate.server.models import AuditEvent
from tests.support.e2e import PASSWORD, USERNAME, WEB_REDIRECT, Flow


async def _events(flow: Flow, kind: str) -> list[AuditEvent]:
    events = await flow.harness.server.storage.list_audit_events(0, 1000)
    return [e for e in events if e.kind == kind]


async def test_refresh_token_reuse_is_audited(flow: Flow, caplog: pytest.LogCaptureFixture) -> None:
    first = await flow.web_tokens()
    second = await flow.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert second.status_code == 200
    assert await _events(flow, "refresh_token.reused") == []  # a rotation is no alarm
    flow.harness.clock.advance(11)  # past the grace window
    with caplog.at_level(logging.INFO, logger="authgate.audit"):
        reuse = await flow.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert reuse.json()["error"] == "invalid_grant"
    (event,) = await _events(flow, "refresh_token.reused")
    assert event.actor == flow.web.client_id
    assert event.subject == flow.user.user_id
    assert event.details["client_id"] == flow.web.client_id
    assert event.details["reason"] == "the refresh token was already used"
    assert event.at == int(flow.harness.clock())
    logged = [r.getMessage() for r in caplog.records if r.name == "authgate.audit"]
    assert len(logged) == 1
    assert "refresh_token.reused" in logged[0]
    for secret in (first["refresh_token"], second.json()["refresh_token"], flow.web_secret):
        assert secret not in logged[0]
        assert secret not in repr(event)


async def _fail(flow: Flow, username: str) -> int:
    agent = flow.agent()
    page = await agent.authorize(
        response_type="code",
        client_id=flow.web.client_id,
        redirect_uri=WEB_REDIRECT,
        scope="openid read",
        state="s",
    )
    return (await agent.sign_in(page, username, "not the password")).status_code


async def test_a_throttled_account_is_audited_once(
    flow: Flow, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="authgate.audit"):
        for _ in range(5):  # the free attempts
            assert await _fail(flow, USERNAME) == 200
        assert await _events(flow, "signin.throttled") == []
        assert await _fail(flow, USERNAME) == 200  # the sixth makes the next one wait
        flow.harness.clock.advance(3)
        assert await _fail(flow, USERNAME) == 200  # another failure: no second event
    (event,) = await _events(flow, "signin.throttled")
    assert event.subject == USERNAME.casefold()
    assert event.details == {"key": "account", "failures": 6, "wait": 2}
    assert event.actor == "server"
    logged = " ".join(r.getMessage() for r in caplog.records if r.name == "authgate.audit")
    assert "not the password" not in logged
    assert PASSWORD not in logged


@pytest.mark.log_scan_known_values
async def test_a_hostile_username_is_bounded_in_the_event(
    flow: Flow, captured_server_logs: list[str]
) -> None:
    typed = "mallory\n\t" + "x" * 5000
    for _ in range(6):
        assert await _fail(flow, typed) == 200
    (event,) = await _events(flow, "signin.throttled")
    assert "\n" not in event.subject
    assert "\t" not in event.subject
    assert len(event.subject) <= 2048
    assert event.subject.startswith("mallory??")
    assert not [line for line in captured_server_logs if "not the password" in line]
