"""Clients identified by the URL of their metadata document, end to end in process on SQLite and
PostgreSQL, with the documents served over real TLS (a test CA): the code flow with PKCE for a
public client, refresh, a `private_key_jwt` client, the consent page, discovery, the cache."""

from __future__ import annotations

import time
import uuid

import jwt as pyjwt
import pytest

from authgate.jose import JWK
from tests.support.client_metadata import CALLBACK, metadata_setup
from tests.support.e2e import API, joserfc_claims, pkce_pair, redirect_params
from tests.support.server_harness import ISSUER, FakeClock
from tests.support.tls import TestCA

WEB_CALLBACK = "https://notes.example.test/callback"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


async def test_a_public_client_by_url_through_the_code_flow(
    database_url: str, clock: FakeClock, ca: TestCA
) -> None:
    async with metadata_setup(database_url, clock, ca) as setup:
        client_id = setup.serve(setup.document(), max_age=600)
        flow = setup.flow
        metadata = (await flow.http.get("/.well-known/oauth-authorization-server")).json()
        assert metadata["client_id_metadata_document_supported"] is True

        agent = flow.agent()
        verifier, challenge = pkce_pair()
        request = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": "http://127.0.0.1:53127/callback",  # loopback: any port
            "scope": "openid offline_access read",
            "state": "s1",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        login = await agent.authorize(**request)
        assert login.status_code == 200, login.text
        assert "Notes &lt;CLI&gt;" in login.text
        consent = await agent.sign_in(login, "alice", "correct horse battery staple")
        assert consent.status_code == 200, consent.text
        # The name is the client's own claim; every redirect URI is loopback: warned.
        assert "self-asserted" in consent.text
        assert "loopback-only" in consent.text
        assert "127.0.0.1" in consent.text
        params = redirect_params(await agent.approve(consent))
        assert params["state"] == "s1"

        token = await flow.http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "client_id": client_id,
                "code": params["code"],
                "redirect_uri": request["redirect_uri"],
                "code_verifier": verifier,
            },
        )
        assert token.status_code == 200, token.text
        body = token.json()
        jwks = (await flow.http.get("/.well-known/jwks.json")).json()
        claims = joserfc_claims(
            body["access_token"], jwks, now=clock(), typ="at+jwt", iss=ISSUER, aud=API
        )
        assert claims["client_id"] == client_id
        assert claims["scope"] == "openid offline_access read"

        refreshed = await flow.http.post(
            "/token",
            data={
                "grant_type": "refresh_token",
                "client_id": client_id,
                "refresh_token": body["refresh_token"],
            },
        )
        assert refreshed.status_code == 200, refreshed.text
        # Any program on the device can name a loopback-only client: it is asked again (RFC 6749
        # §10.2), though the consent is stored; the document was fetched once (cached).
        again = await agent.authorize(**{**request, "state": "s2"})
        assert again.status_code == 200
        assert "loopback-only" in again.text
        consents = await flow.harness.server.storage.list_consents(flow.user.user_id)
        assert [c.client_id for c in consents] == [client_id]
        assert setup.origin.hits["/client.json"] == 1
        # Nothing about it is in the clients table.
        assert await flow.harness.server.storage.get_client(client_id) is None


async def test_pkce_is_required_of_a_url_client(
    database_url: str, clock: FakeClock, ca: TestCA
) -> None:
    async with metadata_setup(database_url, clock, ca) as setup:
        client_id = setup.serve(setup.document())
        response = await setup.flow.agent().authorize(
            response_type="code", client_id=client_id, redirect_uri=CALLBACK, state="s"
        )
        assert redirect_params(response)["error"] == "invalid_request"


async def test_a_private_key_jwt_client_by_url(
    database_url: str, clock: FakeClock, ca: TestCA
) -> None:
    key = JWK.generate("EC", alg="ES256")
    async with metadata_setup(database_url, clock, ca) as setup:
        client_id = setup.url()
        setup.serve(
            setup.document(
                token_endpoint_auth_method="private_key_jwt",
                jwks={"keys": [key.public().to_dict()]},
                redirect_uris=[WEB_CALLBACK],
                grant_types=["authorization_code"],
            )
        )
        flow = setup.flow
        verifier, challenge = pkce_pair()
        agent = flow.agent()
        params = await agent.code_for(
            response_type="code",
            client_id=client_id,
            redirect_uri=WEB_CALLBACK,
            scope="read",
            state="s",
            code_challenge=challenge,
            code_challenge_method="S256",
        )
        now = int(time.time())
        assertion = pyjwt.encode(
            {
                "iss": client_id,
                "sub": client_id,
                "aud": ISSUER,
                "iat": now,
                "exp": now + 60,
                "jti": str(uuid.uuid4()),
            },
            pyjwt.PyJWK(key.to_dict(private=True)).key,
            algorithm="ES256",
            headers={"kid": key.kid},
        )
        form = {
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": WEB_CALLBACK,
            "code_verifier": verifier,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        }
        token = await flow.http.post("/token", data=form)
        assert token.status_code == 200, token.text
        # With an https redirect URI the consent is remembered like a registered client's.
        again = await agent.authorize(
            response_type="code",
            client_id=client_id,
            redirect_uri=WEB_CALLBACK,
            scope="read",
            state="s2",
            code_challenge=challenge,
            code_challenge_method="S256",
        )
        assert redirect_params(again)["state"] == "s2"
        # Naming itself without the assertion is not enough: it registered private_key_jwt.
        bare = await flow.http.post("/token", data={**form, "client_assertion": ""})
        assert bare.status_code in (400, 401)
