"""RFC 9207 §2: every authorization response carries `iss`, errors as well as codes, so that a
client talking to several servers can tell which one answered (RFC 9700 §4.4.2 mix-up) - the
redirected errors of the request, of the sign-in and of the consent, in both response modes."""

from __future__ import annotations

from tests.support.e2e import Flow, only_form, redirect_params
from tests.support.server_harness import ISSUER


async def test_request_errors_carry_iss(flow: Flow) -> None:
    for params, error in (
        ({"scope": "read delete"}, "invalid_scope"),
        ({"resource": "https://unknown.example.test"}, "invalid_target"),
        ({"resource": "not a uri"}, "invalid_target"),
        ({"prompt": "none"}, "login_required"),
        ({"code_challenge_method": "plain", "code_challenge": "x" * 43}, "invalid_request"),
    ):
        response = await flow.authorization_page(state="st", **params)
        sent = redirect_params(response)
        assert sent["error"] == error, (params, sent)
        assert sent["iss"] == ISSUER, params
        assert sent["state"] == "st"


async def test_a_denied_consent_carries_iss(flow: Flow) -> None:
    agent = flow.agent()
    page = await flow.authorization_page(agent, state="d")
    consent = await agent.sign_in(page, "alice", "correct horse battery staple")
    denied = await agent.approve(consent, button="deny")
    sent = redirect_params(denied)
    assert sent == {"error": "access_denied", "state": "d", "iss": ISSUER} | (
        {"error_description": sent["error_description"]} if "error_description" in sent else {}
    )


async def test_a_form_post_error_carries_iss(flow: Flow) -> None:
    response = await flow.authorization_page(
        state="fp", response_mode="form_post", scope="read delete"
    )
    assert response.status_code == 200
    fields = dict(only_form(response).fields)
    assert fields["error"] == "invalid_scope"
    assert fields["iss"] == ISSUER
    assert fields["state"] == "fp"
