"""DPoP at the authorization server, in process, on SQLite and PostgreSQL (RFC 9449 §5, §6, §8,
§10): proofs at /token for every grant, DPoP-bound JWT and opaque access tokens with `cnf.jkt` in
the token and in introspection, refresh tokens of public clients bound to the key, `dpop_jkt`
bound to the code, server nonces, clients that require DPoP, and the metadata."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx

from authgate.server.config import DPoPSettings
from authgate.server.models import Client
from tests.support.dpop import DPoPClient
from tests.support.e2e import API, WEB_REDIRECT, Flow, pkce_pair
from tests.support.server_harness import ISSUER, running
from tests.support.tokens import claims_of

TOKEN_URL = ISSUER + "/token"
NATIVE = "http://127.0.0.1:4000/callback"


async def post_token(
    flow: Flow,
    client: Client | None,
    secret: str | None,
    proofs: tuple[str, ...] = (),
    **form: str,
) -> httpx.Response:
    client = client or flow.web
    headers = [("DPoP", proof) for proof in proofs]
    if client.is_public:
        data = {**form, "client_id": client.client_id}
        return await flow.http.post("/token", data=data, headers=headers)
    auth = (client.client_id, secret or flow.web_secret)
    return await flow.http.post("/token", data=form, auth=auth, headers=headers)


async def introspect(flow: Flow, token: str, client: Client, secret: str) -> dict[str, Any]:
    response = await flow.http.post(
        "/introspect", data={"token": token}, auth=(client.client_id, secret)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def machine(flow: Flow, **kw: Any) -> tuple[Client, str]:
    client, secret = await flow.harness.create_client(name="machine", scopes=("read",), **kw)
    assert secret is not None
    return client, secret


async def test_client_credentials_with_a_proof_gets_a_dpop_bound_jwt(flow: Flow) -> None:
    client, secret = await machine(flow)
    key = DPoPClient(clock=flow.harness.clock)
    response = await post_token(
        flow, client, secret, (key.proof("POST", TOKEN_URL),), grant_type="client_credentials"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "DPoP"
    assert claims_of(body["access_token"])["cnf"] == {"jkt": key.jkt}
    info = await introspect(flow, body["access_token"], client, secret)
    assert info["token_type"] == "DPoP"
    assert info["cnf"] == {"jkt": key.jkt}
    # Without a proof: a bearer token, no cnf.
    plain = (await post_token(flow, client, secret, grant_type="client_credentials")).json()
    assert plain["token_type"] == "Bearer"
    assert "cnf" not in claims_of(plain["access_token"])
    info = await introspect(flow, plain["access_token"], client, secret)
    assert info["token_type"] == "Bearer"
    assert "cnf" not in info


async def test_opaque_tokens_keep_their_key_for_introspection(flow: Flow) -> None:
    opaque_api = "https://opaque.example.test"
    await flow.harness.create_api(opaque_api, token_format="opaque")
    client, secret = await flow.harness.create_client(
        name="opaque machine", apis=(opaque_api,), introspect=(opaque_api,)
    )
    key = DPoPClient(clock=flow.harness.clock)
    response = await post_token(
        flow,
        client,
        secret,
        (key.proof("POST", TOKEN_URL),),
        grant_type="client_credentials",
        resource=opaque_api,
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert token.count(".") != 2
    assert secret is not None
    info = await introspect(flow, token, client, secret)
    assert info["active"] is True
    assert (info["token_type"], info["cnf"]) == ("DPoP", {"jkt": key.jkt})


async def test_bad_proofs_are_400_invalid_dpop_proof(flow: Flow) -> None:
    client, secret = await machine(flow)
    key = DPoPClient(clock=flow.harness.clock)
    good = key.proof("POST", TOKEN_URL)
    cases = {
        "another uri": key.proof("POST", ISSUER + "/introspect"),
        "another method": key.proof("GET", TOKEN_URL),
        "private key": key.proof("POST", TOKEN_URL, jwk=key.key.to_dict(private=True)),
        "old iat": key.proof("POST", TOKEN_URL, iat=int(flow.harness.clock()) - 3600),
        "garbage": "not.a.proof",
    }
    for name, proof in cases.items():
        response = await post_token(flow, client, secret, (proof,), grant_type="client_credentials")
        assert response.status_code == 400, name
        assert response.json()["error"] == "invalid_dpop_proof", name
        assert proof not in response.text
    two = await post_token(flow, client, secret, (good, good), grant_type="client_credentials")
    assert two.json()["error"] == "invalid_dpop_proof"
    first = await post_token(flow, client, secret, (good,), grant_type="client_credentials")
    assert first.status_code == 200
    replay = await post_token(flow, client, secret, (good,), grant_type="client_credentials")
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_dpop_proof"


async def test_a_client_that_requires_dpop_must_send_a_proof(flow: Flow) -> None:
    client, secret = await machine(flow, require_dpop=True)
    assert client.require_dpop
    refused = await post_token(flow, client, secret, grant_type="client_credentials")
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_dpop_proof"
    proof = DPoPClient(clock=flow.harness.clock).proof("POST", TOKEN_URL)
    ok = await post_token(flow, client, secret, (proof,), grant_type="client_credentials")
    assert ok.json()["token_type"] == "DPoP"


async def _native_tokens(flow: Flow, key: DPoPClient, **params: str) -> httpx.Response:
    verifier, challenge = pkce_pair()
    code = await flow.agent().code_for(
        response_type="code",
        client_id=flow.native.client_id,
        redirect_uri=NATIVE,
        scope="offline_access read",
        code_challenge=challenge,
        code_challenge_method="S256",
        **params,
    )
    return await post_token(
        flow,
        flow.native,
        None,
        (key.proof("POST", TOKEN_URL),),
        grant_type="authorization_code",
        code=code["code"],
        redirect_uri=NATIVE,
        code_verifier=verifier,
    )


async def test_a_public_clients_refresh_token_is_bound_to_its_key(flow: Flow) -> None:
    key = DPoPClient(clock=flow.harness.clock)
    tokens = await _native_tokens(flow, key)
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["token_type"] == "DPoP"
    refresh_token = tokens.json()["refresh_token"]
    thief = DPoPClient(clock=flow.harness.clock)
    for proofs in ((), (thief.proof("POST", TOKEN_URL),)):  # none, or another key's
        refused = await post_token(
            flow, flow.native, None, proofs, grant_type="refresh_token", refresh_token=refresh_token
        )
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"] == "invalid_dpop_proof"
    rotated = await post_token(
        flow,
        flow.native,
        None,
        (key.proof("POST", TOKEN_URL),),
        grant_type="refresh_token",
        refresh_token=refresh_token,
    )
    assert rotated.status_code == 200, rotated.text
    assert claims_of(rotated.json()["access_token"])["cnf"] == {"jkt": key.jkt}
    # A retry in the grace window is held to the same key.
    retry = await post_token(
        flow, flow.native, None, grant_type="refresh_token", refresh_token=refresh_token
    )
    assert retry.json()["error"] == "invalid_dpop_proof"
    # The rotated token is bound to the key as well.
    stolen = await post_token(
        flow,
        flow.native,
        None,
        (DPoPClient(clock=flow.harness.clock).proof("POST", TOKEN_URL),),
        grant_type="refresh_token",
        refresh_token=rotated.json()["refresh_token"],
    )
    assert stolen.json()["error"] == "invalid_dpop_proof"


async def test_userinfo_takes_a_bound_token_only_with_its_proof(flow: Flow) -> None:
    key = DPoPClient(clock=flow.harness.clock)
    code = await flow.web_code(scope="openid read")
    tokens = await post_token(
        flow,
        None,
        None,
        (key.proof("POST", TOKEN_URL),),
        grant_type="authorization_code",
        code=code["code"],
        redirect_uri=WEB_REDIRECT,
    )
    assert tokens.status_code == 200, tokens.text
    token = tokens.json()["access_token"]
    userinfo = ISSUER + "/userinfo"
    as_bearer = await flow.http.get("/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert as_bearer.status_code == 401
    assert 'error="invalid_token"' in as_bearer.headers["www-authenticate"]
    proof = key.proof("GET", userinfo, access_token=token)
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
    ok = await flow.http.get("/userinfo", headers=headers)
    assert ok.status_code == 200, ok.text
    assert ok.json()["sub"]
    replay = await flow.http.get("/userinfo", headers=headers)
    assert replay.status_code == 401
    assert (
        'DPoP realm="https://auth.example.test", error="invalid_dpop_proof"'
        in (replay.headers["www-authenticate"])
    )
    thief = DPoPClient(clock=flow.harness.clock).proof("GET", userinfo, access_token=token)
    stolen = await flow.http.get(
        "/userinfo", headers={"Authorization": f"DPoP {token}", "DPoP": thief}
    )
    assert stolen.status_code == 401


async def test_a_confidential_clients_refresh_token_is_not_bound(flow: Flow) -> None:
    first = await flow.web_tokens()
    proof = DPoPClient(clock=flow.harness.clock).proof("POST", TOKEN_URL)
    refreshed = await post_token(
        flow, None, None, (proof,), grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["token_type"] == "DPoP"  # the new access token is bound all the same


async def test_dpop_jkt_binds_the_code_to_the_key(flow: Flow) -> None:
    key = DPoPClient(clock=flow.harness.clock)
    other = await _native_tokens(flow, DPoPClient(clock=flow.harness.clock), dpop_jkt=key.jkt)
    assert other.status_code == 400
    assert other.json()["error"] == "invalid_dpop_proof"
    ok = await _native_tokens(flow, key, dpop_jkt=key.jkt)
    assert ok.status_code == 200, ok.text
    assert claims_of(ok.json()["access_token"])["cnf"] == {"jkt": key.jkt}
    bad = await flow.agent().authorize(
        response_type="code",
        client_id=flow.native.client_id,
        redirect_uri=NATIVE,
        scope="read",
        code_challenge=pkce_pair()[1],
        code_challenge_method="S256",
        dpop_jkt="not a thumbprint",
    )
    assert bad.status_code == 303
    assert "error=invalid_request" in bad.headers["location"]


async def _pushed_native_tokens(
    flow: Flow, pushed_with: DPoPClient, redeemed_with: DPoPClient, **params: str
) -> httpx.Response:
    """The native client's code flow through /par with a proof by `pushed_with` (RFC 9449
    §10.1), the code redeemed with a proof by `redeemed_with`."""
    verifier, challenge = pkce_pair()
    form = {
        "client_id": flow.native.client_id,
        "response_type": "code",
        "redirect_uri": NATIVE,
        "scope": "offline_access read",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **params,
    }
    pushed = await flow.http.post(
        "/par", data=form, headers={"DPoP": pushed_with.proof("POST", ISSUER + "/par")}
    )
    assert pushed.status_code == 201, pushed.text
    code = await flow.agent().code_for(
        client_id=flow.native.client_id, request_uri=pushed.json()["request_uri"]
    )
    return await post_token(
        flow,
        flow.native,
        None,
        (redeemed_with.proof("POST", TOKEN_URL),),
        grant_type="authorization_code",
        code=code["code"],
        redirect_uri=NATIVE,
        code_verifier=verifier,
    )


async def test_a_proof_at_par_binds_the_code_to_its_key(flow: Flow) -> None:
    # RFC 9449 §10.1: the proof's key counts as `dpop_jkt`; the code is redeemed only with it.
    key = DPoPClient(clock=flow.harness.clock)
    stolen = await _pushed_native_tokens(flow, key, DPoPClient(clock=flow.harness.clock))
    assert stolen.status_code == 400, stolen.text
    assert stolen.json() == {
        "error": "invalid_dpop_proof",
        "error_description": "the authorization code is bound to another DPoP key",
    }
    ok = await _pushed_native_tokens(flow, key, key)
    assert ok.status_code == 200, ok.text
    assert ok.json()["token_type"] == "DPoP"
    assert claims_of(ok.json()["access_token"])["cnf"] == {"jkt": key.jkt}
    # The same key named both ways is fine.
    both = await _pushed_native_tokens(flow, key, key, dpop_jkt=key.jkt)
    assert both.status_code == 200, both.text


async def test_par_refuses_a_proof_and_dpop_jkt_that_disagree(flow: Flow) -> None:
    key, other = DPoPClient(clock=flow.harness.clock), DPoPClient(clock=flow.harness.clock)
    form = {
        "client_id": flow.native.client_id,
        "response_type": "code",
        "redirect_uri": NATIVE,
        "scope": "read",
        "code_challenge": pkce_pair()[1],
        "code_challenge_method": "S256",
        "dpop_jkt": other.jkt,
    }
    par = ISSUER + "/par"
    refused = await flow.http.post("/par", data=form, headers={"DPoP": key.proof("POST", par)})
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "invalid_dpop_proof",
        "error_description": "dpop_jkt does not match the key of the DPoP proof",
    }
    # A proof made for the token endpoint, or a second proof, is no proof for /par.
    for headers in (
        [("DPoP", key.proof("POST", TOKEN_URL))],
        [("DPoP", key.proof("POST", par)), ("DPoP", key.proof("POST", par))],
    ):
        bad = await flow.http.post("/par", data={**form, "dpop_jkt": key.jkt}, headers=headers)
        assert bad.status_code == 400
        assert bad.json()["error"] == "invalid_dpop_proof"


async def test_browser_clients_may_send_proofs_and_read_nonces(flow: Flow) -> None:
    preflight = await flow.http.options(
        "/token",
        headers={
            "Origin": "https://spa.example.test",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, dpop",
        },
    )
    assert preflight.status_code == 204
    assert "DPoP" in preflight.headers["access-control-allow-headers"]
    token = await flow.http.post("/token", data={}, headers={"Origin": "https://spa.example.test"})
    assert "DPoP-Nonce" in token.headers["access-control-expose-headers"]


async def test_metadata_names_the_dpop_algorithms(flow: Flow) -> None:
    metadata = (await flow.http.get("/.well-known/oauth-authorization-server")).json()
    assert metadata["dpop_signing_alg_values_supported"] == list(DPoPSettings().algorithms)


async def test_server_nonces(flow: Flow) -> None:
    harness = flow.harness
    config = dataclasses.replace(harness.config, dpop=DPoPSettings(require_nonce=True))
    async with running(config, harness.clock) as other:
        client, secret = await other.create_client(name="m", apis=(API,))
        assert secret is not None
        key = DPoPClient(clock=flow.harness.clock)
        auth = (client.client_id, secret)
        form = {"grant_type": "client_credentials"}
        first = await other.http.post(
            "/token", data=form, auth=auth, headers={"DPoP": key.proof("POST", TOKEN_URL)}
        )
        assert first.status_code == 400
        assert first.json()["error"] == "use_dpop_nonce"
        nonce = first.headers["dpop-nonce"]
        made_up = await other.http.post(
            "/token",
            data=form,
            auth=auth,
            headers={"DPoP": key.proof("POST", TOKEN_URL, nonce="made-up")},
        )
        assert made_up.json()["error"] == "use_dpop_nonce"
        ok = await other.http.post(
            "/token",
            data=form,
            auth=auth,
            headers={"DPoP": key.proof("POST", TOKEN_URL, nonce=nonce)},
        )
        assert ok.status_code == 200, ok.text
        assert ok.headers["dpop-nonce"]
        assert ok.json()["token_type"] == "DPoP"
        # RFC 9449 §8: /par asks for the nonce as well, and names the next one when it accepts.
        native, _ = await other.create_client(
            name="n", auth_method="none", redirect_uris=(NATIVE,), scopes=("read",),
            grant_types=("authorization_code",),
        )  # fmt: skip
        form = {
            "client_id": native.client_id,
            "response_type": "code",
            "redirect_uri": NATIVE,
            "scope": "read",
            "code_challenge": pkce_pair()[1],
            "code_challenge_method": "S256",
        }
        par = ISSUER + "/par"
        asked = await other.http.post("/par", data=form, headers={"DPoP": key.proof("POST", par)})
        assert asked.status_code == 400
        assert asked.json()["error"] == "use_dpop_nonce"
        nonce = asked.headers["dpop-nonce"]
        pushed = await other.http.post(
            "/par", data=form, headers={"DPoP": key.proof("POST", par, nonce=nonce)}
        )
        assert pushed.status_code == 201, pushed.text
        assert pushed.headers["dpop-nonce"]
        assert pushed.headers["cache-control"] == "no-store"


async def test_a_proof_is_single_use_across_servers_sharing_the_database(flow: Flow) -> None:
    harness = flow.harness
    client, secret = await machine(flow)
    proof = DPoPClient(clock=flow.harness.clock).proof("POST", TOKEN_URL)
    form = {"grant_type": "client_credentials"}
    auth = (client.client_id, secret)
    async with running(harness.config, harness.clock) as second:
        first = await harness.http.post("/token", data=form, auth=auth, headers={"DPoP": proof})
        assert first.status_code == 200
        again = await second.http.post("/token", data=form, auth=auth, headers={"DPoP": proof})
        assert again.status_code == 400
        assert again.json()["error"] == "invalid_dpop_proof"
