"""Attacks on token exchange (RFC 8693), in process, on SQLite and PostgreSQL: exchanging into an
API the client may not use, widening the scope, forging `act` in the request, impersonating
without permission, expired, foreign, forged and unrelated subject tokens, tokens of the wrong
kind, and unsupported requested token types."""

from __future__ import annotations

import pytest

from authgate.jose import JWK, jwt
from tests.support.e2e import API, Flow
from tests.support.exchange import (
    ACCESS,
    BILLING,
    ID,
    JWT,
    OPAQUE,
    REFRESH,
    Exchange,
    set_up_exchange,
)
from tests.support.log_scan import captured_server_logs  # noqa: F401 - autouse: the log scan
from tests.support.server_harness import ISSUER, expect_error
from tests.support.tokens import claims_of


@pytest.fixture
async def ex(flow: Flow) -> Exchange:
    return await set_up_exchange(flow)


async def _delegated(ex: Exchange, subject: str, **form: str) -> dict[str, str]:
    """The form of a delegation by the service with its own actor token."""
    return {
        "subject_token": subject,
        "subject_token_type": ACCESS,
        "actor_token": await ex.actor_token(),
        "actor_token_type": ACCESS,
        "resource": BILLING,
        **form,
    }


async def test_exchange_into_a_forbidden_audience(ex: Exchange) -> None:
    user = await ex.user_token()
    for target in ({"resource": API}, {"audience": API}, {"audience": "https://nowhere.test"}):
        form = await _delegated(ex, user["access_token"], resource="")
        form.pop("resource")
        response = await ex.exchange(**form, **target)
        expect_error(response, 400, "invalid_target")


async def test_scope_widening_is_refused(ex: Exchange) -> None:
    user = await ex.user_token(scope="openid read")
    response = await ex.exchange(**await _delegated(ex, user["access_token"], scope="read write"))
    expect_error(response, 400, "invalid_scope")
    # The same scope or less is fine.
    allowed = await ex.exchange(**await _delegated(ex, user["access_token"], scope="read"))
    assert allowed.status_code == 200, allowed.text


async def test_act_in_the_request_is_ignored(ex: Exchange) -> None:
    """`act` is never taken from request parameters: only from the verified tokens."""
    user = await ex.user_token()
    form = await _delegated(ex, user["access_token"])
    response = await ex.exchange(**form, act='{"sub":"admin"}', may_act='{"sub":"x"}')
    assert response.status_code == 200, response.text
    assert claims_of(response.json()["access_token"])["act"] == {"sub": ex.service.client_id}


async def test_forged_act_in_a_self_signed_subject_token_is_refused(ex: Exchange) -> None:
    """A JWT claiming our issuer but signed with the attacker's key, carrying an `act` chain."""
    key = JWK.generate("EC", crv="P-256", kid="attacker", alg="ES256")
    now = int(ex.flow.harness.clock())
    forged = jwt.encode(
        {
            "iss": ISSUER,
            "sub": ex.flow.user.user_id,
            "aud": API,
            "client_id": ex.flow.web.client_id,
            "scope": "read write",
            "act": {"sub": "trusted-service"},
            "iat": now,
            "exp": now + 300,
            "jti": "forged",
        },
        key,
        "ES256",
        {"typ": "at+jwt"},
    )
    response = await ex.exchange(**await _delegated(ex, forged))
    expect_error(response, 400, "invalid_request")


async def test_impersonation_without_permission(ex: Exchange) -> None:
    user = await ex.user_token()
    response = await ex.exchange(
        subject_token=user["access_token"], subject_token_type=ACCESS, resource=BILLING
    )
    expect_error(response, 400, "invalid_request")
    assert "impersonate" in response.json()["error_description"]
    # actor_token_type alone does not make a delegation.
    response = await ex.exchange(
        subject_token=user["access_token"],
        subject_token_type=ACCESS,
        actor_token_type=ACCESS,
        resource=BILLING,
    )
    expect_error(response, 400, "invalid_request")


async def test_expired_subject_token(ex: Exchange) -> None:
    user = await ex.user_token()
    ex.flow.harness.clock.advance(3600)
    actor = await ex.actor_token()  # fresh
    response = await ex.exchange(
        subject_token=user["access_token"],
        subject_token_type=ACCESS,
        actor_token=actor,
        actor_token_type=ACCESS,
        resource=BILLING,
    )
    expect_error(response, 400, "invalid_request")


async def test_revoked_subject_token(ex: Exchange) -> None:
    user = await ex.user_token()
    response = await ex.flow.post("/revoke", token=user["access_token"])
    assert response.status_code == 200
    refused = await ex.exchange(**await _delegated(ex, user["access_token"]))
    expect_error(refused, 400, "invalid_request")


async def test_token_of_another_client_for_another_api_is_refused(ex: Exchange) -> None:
    """The service is not a resource server of Billing, and did not receive this token."""
    outsider, secret = await ex.new_service("outsider", introspect=())
    user = await ex.user_token()
    actor = await ex.actor_token(outsider, secret)
    response = await ex.exchange(
        outsider,
        secret,
        subject_token=user["access_token"],
        subject_token_type=ACCESS,
        actor_token=actor,
        actor_token_type=ACCESS,
        resource=BILLING,
    )
    expect_error(response, 400, "invalid_request")
    # Nor may it present the service's own token as its actor.
    response = await ex.exchange(
        outsider,
        secret,
        subject_token=actor,
        subject_token_type=ACCESS,
        actor_token=await ex.actor_token(),
        actor_token_type=ACCESS,
        resource=BILLING,
    )
    expect_error(response, 400, "invalid_request")


async def test_foreign_issuer_is_refused_without_configuration(ex: Exchange) -> None:
    key = JWK.generate("EC", crv="P-256", kid="idp", alg="ES256")
    now = int(ex.flow.harness.clock())
    foreign = jwt.encode(
        {"iss": "https://idp.example.test", "sub": "x", "aud": ISSUER, "exp": now + 60},
        key,
        "ES256",
    )
    response = await ex.exchange(**await _delegated(ex, foreign, subject_token_type=JWT))
    expect_error(response, 400, "invalid_request")
    assert "issuer" in response.json()["error_description"]


async def test_id_token_of_another_client_is_refused(ex: Exchange) -> None:
    now = int(ex.flow.harness.clock())
    id_token = await ex.flow.harness.server.issuer.sign_id_token(
        {
            "iss": ISSUER,
            "sub": ex.flow.user.user_id,
            "aud": ex.flow.web.client_id,  # the web client's, not the service's
            "iat": now,
            "exp": now + 300,
        }
    )
    response = await ex.exchange(**await _delegated(ex, id_token, subject_token_type=ID))
    expect_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"subject_token_type": REFRESH}, "invalid_request"),
        ({"subject_token_type": "urn:example:saml"}, "invalid_request"),
        ({"subject_token_type": ""}, "invalid_request"),
        ({"subject_token": ""}, "invalid_request"),
        ({"subject_token": "x" * 10000}, "invalid_request"),
        ({"subject_token": "not.a.jwt"}, "invalid_request"),
        ({"requested_token_type": REFRESH}, "invalid_request"),
        ({"requested_token_type": ID}, "invalid_request"),
        ({"resource": OPAQUE}, "invalid_target"),  # act cannot ride in an opaque token
    ],
)
async def test_malformed_requests(ex: Exchange, changes: dict[str, str], error: str) -> None:
    user = await ex.user_token()
    response = await ex.exchange(**{**await _delegated(ex, user["access_token"]), **changes})
    expect_error(response, 400, error)


async def test_a_refresh_token_is_not_a_subject_token(ex: Exchange) -> None:
    user = await ex.user_token(scope="openid offline_access read")
    response = await ex.exchange(
        **await _delegated(ex, user["refresh_token"], subject_token_type=ACCESS)
    )
    expect_error(response, 400, "invalid_request")


async def test_a_client_without_the_grant_is_refused(ex: Exchange) -> None:
    user = await ex.user_token()
    response = await ex.exchange(
        ex.flow.web, ex.flow.web_secret, **await _delegated(ex, user["access_token"])
    )
    expect_error(response, 400, "unauthorized_client")


async def test_exchanging_again_cannot_extend_the_subject_tokens_life(ex: Exchange) -> None:
    user = await ex.user_token()
    user_exp = claims_of(user["access_token"])["exp"]
    ex.flow.harness.clock.advance(200)
    first = await ex.exchange(**await _delegated(ex, user["access_token"]))
    assert first.status_code == 200, first.text
    assert first.json()["expires_in"] == user_exp - int(ex.flow.harness.clock())
    assert claims_of(first.json()["access_token"])["exp"] == user_exp
    # The service exchanges its own exchanged token again, later: still the user's expiry.
    ex.flow.harness.clock.advance(50)
    again = await ex.exchange(
        **await _delegated(ex, first.json()["access_token"], subject_token_type=JWT)
    )
    assert again.status_code == 200, again.text
    assert claims_of(again.json()["access_token"])["exp"] == user_exp
