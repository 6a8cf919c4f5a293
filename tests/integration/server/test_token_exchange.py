"""Token exchange (RFC 8693) end to end, in process, on SQLite and PostgreSQL: delegation with `act`
(and nested `act` for a chain), impersonation where allowed, `requested_token_type`, ID tokens as
subject tokens, the trusted external issuer verified by the verifier core with `may_act`, and the
response of §2.2.1. Every issued token is checked against the JWKS with joserfc."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import pytest

from authgate.server.config import TokenExchangeSettings
from tests.support.e2e import API, Flow, joserfc_claims, set_up_flow
from tests.support.exchange import (
    ACCESS,
    BILLING,
    GRANT,
    ID,
    JWT,
    Exchange,
    set_up_exchange,
)
from tests.support.gate import FakeIssuer, IssuerServer
from tests.support.server_harness import ISSUER, FakeClock, make_config, running
from tests.support.tokens import claims_of


@pytest.fixture
async def ex(flow: Flow) -> Exchange:
    return await set_up_exchange(flow)


async def _verified(ex: Exchange, token: str, **expected: object) -> dict[str, object]:
    jwks = (await ex.flow.http.get("/.well-known/jwks.json")).json()
    return joserfc_claims(
        token, jwks, now=ex.flow.harness.clock(), typ="at+jwt", iss=ISSUER, **expected
    )


async def test_delegation_puts_the_actor_in_act(ex: Exchange) -> None:
    user = await ex.user_token()
    actor = await ex.actor_token()
    response = await ex.exchange(
        subject_token=user["access_token"],
        subject_token_type=ACCESS,
        actor_token=actor,
        actor_token_type=ACCESS,
        resource=BILLING,
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "issued_token_type", "token_type", "expires_in", "scope"}
    assert body["issued_token_type"] == ACCESS
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "read"  # the subject's scopes that the service holds on Billing
    claims = await _verified(
        ex,
        body["access_token"],
        aud=BILLING,
        sub=ex.flow.user.user_id,
        client_id=ex.service.client_id,
    )
    assert claims["act"] == {"sub": ex.service.client_id}
    # Introspection by the service shows the actor too (RFC 8693 §4.1 with RFC 7662).
    introspected = await ex.flow.harness.http.post(
        "/introspect",
        data={"token": body["access_token"]},
        auth=(ex.service.client_id, ex.service_secret),
    )
    assert introspected.status_code == 200
    billing_rs, rs_secret = await ex.new_service("billing rs", introspect=(BILLING,), scopes=())
    seen = await ex.flow.harness.http.post(
        "/introspect", data={"token": body["access_token"]}, auth=(billing_rs.client_id, rs_secret)
    )
    assert seen.json()["act"] == {"sub": ex.service.client_id}


async def test_a_chain_nests_the_previous_actor(ex: Exchange) -> None:
    user = await ex.user_token()
    first = await ex.exchange(
        subject_token=user["access_token"],
        subject_token_type=ACCESS,
        actor_token=await ex.actor_token(),
        actor_token_type=ACCESS,
        audience=BILLING,
    )
    assert first.status_code == 200, first.text
    # The Billing service, in turn, calls the Orders API on the user's behalf.
    billing, secret = await ex.new_service(
        "billing service", introspect=(BILLING,), scopes=(f"{API}#read",)
    )
    second = await ex.exchange(
        billing,
        secret,
        subject_token=first.json()["access_token"],
        subject_token_type=JWT,
        actor_token=(await ex.flow.harness.token(billing, secret, resource=API)).json()[
            "access_token"
        ],
        actor_token_type=JWT,
        resource=API,
    )
    assert second.status_code == 200, second.text
    assert second.json()["issued_token_type"] == ACCESS
    claims = claims_of(second.json()["access_token"])
    assert claims["sub"] == ex.flow.user.user_id
    assert claims["act"] == {"sub": billing.client_id, "act": {"sub": ex.service.client_id}}


async def test_impersonation_where_the_client_may(ex: Exchange) -> None:
    imp, secret = await ex.new_service("impersonator", exchange_impersonation=True)
    user = await ex.user_token()
    response = await ex.exchange(
        imp,
        secret,
        subject_token=user["access_token"],
        subject_token_type=ACCESS,
        resource=BILLING,
        requested_token_type=JWT,
        scope="read",
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["issued_token_type"] == JWT
    claims = await _verified(ex, body["access_token"], aud=BILLING, sub=ex.flow.user.user_id)
    assert "act" not in claims
    assert claims["scope"] == "read"


async def test_an_id_token_of_the_client_is_a_subject_token_without_scopes(ex: Exchange) -> None:
    server = ex.flow.harness.server
    now = int(ex.flow.harness.clock())
    id_token = await server.issuer.sign_id_token(
        {
            "iss": ISSUER,
            "sub": ex.flow.user.user_id,
            "aud": ex.service.client_id,
            "iat": now,
            "exp": now + 300,
        }
    )
    response = await ex.exchange(
        subject_token=id_token,
        subject_token_type=ID,
        actor_token=await ex.actor_token(),
        actor_token_type=ACCESS,
        resource=BILLING,
    )
    assert response.status_code == 200, response.text
    assert "scope" not in response.json()
    assert claims_of(response.json()["access_token"])["sub"] == ex.flow.user.user_id


async def test_metadata_lists_the_grant(ex: Exchange) -> None:
    metadata = (await ex.flow.http.get("/.well-known/oauth-authorization-server")).json()
    assert GRANT in metadata["grant_types_supported"]


# -- the trusted external issuer ----------------------------------------------------------------


@pytest.fixture
def external() -> Iterator[FakeIssuer]:
    server = IssuerServer()
    issuer = FakeIssuer(server, "https://idp.example.test")
    issuer.new_key()
    issuer.publish()
    try:
        yield issuer
    finally:
        server.close()


@pytest.fixture
async def ext(database_url: str, clock: FakeClock, external: FakeIssuer) -> AsyncIterator[Exchange]:
    settings = TokenExchangeSettings(issuer=external.issuer, jwks_uri=external.server.url + "/jwks")
    config = replace(make_config(database_url), token_exchange=settings)
    async with running(config, clock) as harness:
        yield await set_up_exchange(await set_up_flow(harness), exchange_external=True)


async def test_external_subject_token(ext: Exchange, external: FakeIssuer) -> None:
    token = external.token(sub="ext-user", aud=ISSUER, scope="read write")
    response = await ext.exchange(
        subject_token=token,
        subject_token_type=JWT,
        actor_token=await ext.actor_token(),
        actor_token_type=ACCESS,
        resource=BILLING,
        scope="write",
    )
    assert response.status_code == 200, response.text
    claims = claims_of(response.json()["access_token"])
    assert claims["sub"] == "ext-user"
    assert claims["scope"] == "write"
    assert claims["act"] == {"sub": ext.service.client_id}


async def test_external_act_is_nested_and_may_act_is_honoured(
    ext: Exchange, external: FakeIssuer
) -> None:
    allowed = external.token(
        sub="ext-user",
        aud=ISSUER,
        act={"sub": "gateway"},
        may_act={"sub": ext.service.client_id},
    )
    response = await ext.exchange(
        subject_token=allowed,
        subject_token_type=ACCESS,
        actor_token=await ext.actor_token(),
        actor_token_type=ACCESS,
        resource=BILLING,
    )
    assert response.status_code == 200, response.text
    claims = claims_of(response.json()["access_token"])
    assert claims["act"] == {"sub": ext.service.client_id, "act": {"sub": "gateway"}}
    other = external.token(sub="ext-user", aud=ISSUER, may_act={"sub": "someone-else"})
    refused = await ext.exchange(
        subject_token=other,
        subject_token_type=ACCESS,
        actor_token=await ext.actor_token(),
        actor_token_type=ACCESS,
        resource=BILLING,
    )
    assert refused.status_code == 400
    assert "may_act" in refused.json()["error_description"]


async def test_external_actor_token_is_named_with_its_issuer(
    ext: Exchange, external: FakeIssuer
) -> None:
    user = await ext.user_token()
    actor = external.token(sub="partner-bot", aud=ISSUER)
    response = await ext.exchange(
        subject_token=user["access_token"],
        subject_token_type=ACCESS,
        actor_token=actor,
        actor_token_type=JWT,
        resource=BILLING,
    )
    assert response.status_code == 200, response.text
    act = claims_of(response.json()["access_token"])["act"]
    assert act == {"sub": "partner-bot", "iss": external.issuer}
