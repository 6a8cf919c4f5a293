"""Attacks on DPoP at the gateway (RFC 9449 §11): every forged, stolen or replayed proof is a 401
and never reaches the upstream."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import pytest

from authgate.jose.jwk import JWK
from tests.support.dpop import DPoPClient, sign_raw
from tests.support.gateway import LiveGateway, live_gateway

EXTRA = '[dpop]\nalgorithms = ["ES256", "PS256"]\nmax_age = "60s"\nleeway = "5s"\n'


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    with live_gateway(tmp_path_factory.mktemp("dpop-attacks"), EXTRA) as running:
        yield running


@pytest.fixture(scope="module")
def holder() -> DPoPClient:
    return DPoPClient()


def _send(live: LiveGateway, token: str, *proofs: str, method: str = "GET") -> tuple[int, str]:
    headers = [("Authorization", f"DPoP {token}"), *(("DPoP", p) for p in proofs)]
    before = len(live.upstream.state.requests)
    status, _, body = live.gateway.request(method, "/orders/1", headers)
    if status != 200:
        assert len(live.upstream.state.requests) == before  # nothing reached the upstream
        assert json.loads(body)["error"] in ("invalid_dpop_proof", "invalid_token")
        assert status == 401 or json.loads(body)["error"] == "invalid_request"
        return status, json.loads(body)["error"]
    return status, ""


def _url(live: LiveGateway, path: str = "/orders/1") -> str:
    return f"http://127.0.0.1:{live.gateway.port}{path}"


def test_a_replayed_proof_is_refused(live: LiveGateway, holder: DPoPClient) -> None:
    token = live.issuer.token(cnf={"jkt": holder.jkt})
    proof = holder.proof("GET", _url(live), access_token=token)
    assert _send(live, token, proof)[0] == 200
    assert _send(live, token, proof) == (401, "invalid_dpop_proof")


def test_a_proof_for_another_uri_or_method_is_refused(
    live: LiveGateway, holder: DPoPClient
) -> None:
    token = live.issuer.token(cnf={"jkt": holder.jkt})
    for method, url in (
        ("GET", _url(live, "/admin/1")),
        ("GET", f"http://evil.example:{live.gateway.port}/orders/1"),
        ("GET", f"https://127.0.0.1:{live.gateway.port}/orders/1"),
        ("POST", _url(live)),
        ("get", _url(live)),
    ):
        proof = holder.proof(method, url, access_token=token)
        assert _send(live, token, proof) == (401, "invalid_dpop_proof"), (method, url)


def test_a_private_key_in_the_header_is_refused(live: LiveGateway, holder: DPoPClient) -> None:
    token = live.issuer.token(cnf={"jkt": holder.jkt})
    proof = holder.proof(
        "GET", _url(live), access_token=token, jwk=holder.key.to_dict(private=True)
    )
    assert _send(live, token, proof) == (401, "invalid_dpop_proof")


def test_alg_none_and_hmac_proofs_are_refused(live: LiveGateway, holder: DPoPClient) -> None:
    token = live.issuer.token(cnf={"jkt": holder.jkt})
    claims = {"jti": "n1", "htm": "GET", "htu": _url(live), "iat": int(time.time())}
    header = {"alg": "none", "typ": "dpop+jwt", "jwk": holder.public.to_dict()}

    def b64(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    assert _send(live, token, f"{b64(header)}.{b64(claims)}.") == (401, "invalid_dpop_proof")
    secret = JWK.from_secret(b"s" * 32)
    hs = sign_raw(claims, secret, "HS256", {"typ": "dpop+jwt", "jwk": secret.to_dict(True)})
    assert _send(live, token, hs) == (401, "invalid_dpop_proof")
    # An HMAC "key" without its secret member, and the token bound to that "thumbprint".
    hs_public = sign_raw(claims, secret, "HS256", {"typ": "dpop+jwt", "jwk": {"kty": "oct"}})
    assert _send(live, token, hs_public) == (401, "invalid_dpop_proof")


def test_ath_of_another_token_is_refused(live: LiveGateway, holder: DPoPClient) -> None:
    token = live.issuer.token(cnf={"jkt": holder.jkt})
    other = live.issuer.token(cnf={"jkt": holder.jkt}, jti="other")
    proof = holder.proof("GET", _url(live), access_token=other)
    assert _send(live, token, proof) == (401, "invalid_dpop_proof")
    assert _send(live, token, holder.proof("GET", _url(live))) == (401, "invalid_dpop_proof")


def test_iat_far_off_is_refused(live: LiveGateway, holder: DPoPClient) -> None:
    token = live.issuer.token(cnf={"jkt": holder.jkt})
    now = int(time.time())
    for iat in (now - 3600, now - 120, now + 120, now + 86400 * 365):
        proof = holder.proof("GET", _url(live), access_token=token, iat=iat)
        assert _send(live, token, proof) == (401, "invalid_dpop_proof"), iat


def test_a_bound_token_as_bearer_is_refused(live: LiveGateway, holder: DPoPClient) -> None:
    token = live.issuer.token(cnf={"jkt": holder.jkt})
    before = len(live.upstream.state.requests)
    for _ in range(2):  # also once the token is in the verified-token cache
        status, headers, _ = live.gateway.request(
            "GET", "/orders/1", {"Authorization": f"Bearer {token}"}
        )
        assert status == 401
        assert 'Bearer realm="authgate", error="invalid_token"' in headers["www-authenticate"]
    proof = holder.proof("GET", _url(live), access_token=token)
    assert _send(live, token, proof)[0] == 200  # the holder itself gets through
    status, _, _ = live.gateway.request("GET", "/orders/1", {"Authorization": f"Bearer {token}"})
    assert status == 401
    assert len(live.upstream.state.requests) == before + 1


def test_a_stolen_token_with_the_thiefs_own_key_is_refused(
    live: LiveGateway, holder: DPoPClient
) -> None:
    token = live.issuer.token(cnf={"jkt": holder.jkt})
    thief = DPoPClient()
    proof = thief.proof("GET", _url(live), access_token=token)
    assert _send(live, token, proof) == (401, "invalid_token")


def test_missing_repeated_and_oversized_proofs_are_refused(
    live: LiveGateway, holder: DPoPClient
) -> None:
    token = live.issuer.token(cnf={"jkt": holder.jkt})
    assert _send(live, token) == (401, "invalid_dpop_proof")
    one = holder.proof("GET", _url(live), access_token=token)
    two = holder.proof("GET", _url(live), access_token=token)
    assert _send(live, token, one, two) == (401, "invalid_dpop_proof")
    big = holder.proof("GET", _url(live), access_token=token, claims={"pad": "x" * 6000})
    status, _, _ = live.gateway.request(
        "GET", "/orders/1", {"Authorization": f"DPoP {token}", "DPoP": big}
    )
    assert status in (401, 431)  # refused by the proof check or by the header size limit
    for garbage in ("x", "a.b.c", "...", "é"):
        assert _send(live, token, garbage)[0] == 401
