"""Attacks on DPoP at the token endpoint (RFC 9449 §5, §11): forged proofs never bind a token,
a replayed proof is refused, a stolen public client's refresh token or a code bound with
`dpop_jkt` is useless without the key, and no answer echoes a proof."""

from __future__ import annotations

import base64
import json

import httpx

from authgate.jose.jwk import JWK
from tests.support.dpop import DPoPClient, sign_raw
from tests.support.e2e import Flow, pkce_pair
from tests.support.log_scan import captured_server_logs  # noqa: F401 - autouse: the log scan
from tests.support.server_harness import ISSUER

TOKEN_URL = ISSUER + "/token"
NATIVE = "http://127.0.0.1:4000/callback"


async def _cc(flow: Flow, *proofs: str) -> httpx.Response:
    client, secret = await flow.harness.create_client(name="m", scopes=("read",))
    assert secret is not None
    return await flow.http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, secret),
        headers=[("DPoP", p) for p in proofs],
    )


def _b64(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_forged_proofs_never_bind_a_token(flow: Flow) -> None:
    key = DPoPClient(clock=flow.harness.clock)
    now = int(flow.harness.clock())
    claims = {"jti": "x1", "htm": "POST", "htu": TOKEN_URL, "iat": now}
    secret = JWK.from_secret(b"s" * 32)
    forged = {
        "alg none": f"{_b64({'alg': 'none', 'typ': 'dpop+jwt', 'jwk': key.public.to_dict()})}"
        f".{_b64(claims)}.",
        "HS256 with the secret in the header": sign_raw(
            claims, secret, "HS256", {"typ": "dpop+jwt", "jwk": secret.to_dict(private=True)}
        ),
        "private key in the header": key.proof(
            "POST", TOKEN_URL, jwk=key.key.to_dict(private=True)
        ),
        "signed by another key": key.proof("POST", TOKEN_URL, jwk=DPoPClient().public.to_dict()),
        "typ JWT": key.proof("POST", TOKEN_URL, typ="JWT"),
        "far future iat": key.proof("POST", TOKEN_URL, iat=now + 3600),
        "another server": key.proof("POST", "https://evil.example/token"),
    }
    for name, proof in forged.items():
        response = await _cc(flow, proof)
        assert response.status_code == 400, name
        assert response.json()["error"] == "invalid_dpop_proof", name
        assert proof not in response.text, name
        assert "x1" not in response.text, name


async def test_a_replayed_proof_is_refused(flow: Flow) -> None:
    proof = DPoPClient(clock=flow.harness.clock).proof("POST", TOKEN_URL)
    assert (await _cc(flow, proof)).status_code == 200
    replay = await _cc(flow, proof)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_dpop_proof"


async def _native_code(flow: Flow, **params: str) -> tuple[str, str]:
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
    return code["code"], verifier


async def _native_token(flow: Flow, proofs: list[str], **form: str) -> httpx.Response:
    return await flow.http.post(
        "/token",
        data={**form, "client_id": flow.native.client_id},
        headers=[("DPoP", p) for p in proofs],
    )


async def test_a_stolen_bound_refresh_token_is_useless_without_the_key(flow: Flow) -> None:
    owner = DPoPClient(clock=flow.harness.clock)
    code, verifier = await _native_code(flow)
    tokens = await _native_token(
        flow,
        [owner.proof("POST", TOKEN_URL)],
        grant_type="authorization_code",
        code=code,
        redirect_uri=NATIVE,
        code_verifier=verifier,
    )
    refresh_token = tokens.json()["refresh_token"]
    thief = DPoPClient(clock=flow.harness.clock)
    for proofs in ([], [thief.proof("POST", TOKEN_URL)]):
        stolen = await _native_token(
            flow, proofs, grant_type="refresh_token", refresh_token=refresh_token
        )
        assert stolen.json()["error"] == "invalid_dpop_proof"
    # The owner still refreshes: the thief's attempts changed nothing.
    own = await _native_token(
        flow,
        [owner.proof("POST", TOKEN_URL)],
        grant_type="refresh_token",
        refresh_token=refresh_token,
    )
    assert own.status_code == 200, own.text


async def test_a_code_bound_with_dpop_jkt_is_useless_to_another_key(flow: Flow) -> None:
    owner = DPoPClient(clock=flow.harness.clock)
    thief = DPoPClient(clock=flow.harness.clock)
    for proofs in ([], [thief.proof("POST", TOKEN_URL)]):
        code, verifier = await _native_code(flow, dpop_jkt=owner.jkt)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": NATIVE,
            "code_verifier": verifier,
        }
        refused = await _native_token(flow, proofs, **form)
        assert refused.json()["error"] == "invalid_dpop_proof"
        # The attempt used the code up: the thief cannot retry with other keys.
        again = await _native_token(flow, [owner.proof("POST", TOKEN_URL)], **form)
        assert again.json()["error"] == "invalid_grant"
