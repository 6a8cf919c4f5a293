"""DPoP through the gateway process (RFC 9449 §7): a DPoP-bound token with a fresh proof per
request is forwarded; its proof is checked against the request as the client sent it (behind a
trusted proxy, the forwarded scheme and host), the forward-auth endpoint judges the same, the
challenges name both schemes, `require_dpop` routes refuse bearer tokens, and a proof used at one
gateway is refused at another that shares the Redis store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dpop import DPoPClient
from tests.support.gateway import Gateway, LiveGateway, live_gateway
from tests.support.limits import delete_namespace, new_namespace, shared_redis

EXTRA = """
trusted_proxies = ["127.0.0.1"]
[dpop]
algorithms = ["ES256", "PS256"]
"""


def _payments(upstream: object) -> str:
    url = upstream.url  # type: ignore[attr-defined]
    return f'[[routes]]\npath = "/payments"\nupstream = "{url}"\nrequire_dpop = true\n'


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    with live_gateway(tmp_path_factory.mktemp("dpop"), EXTRA, _payments) as running:
        yield running


@pytest.fixture(scope="module")
def client() -> DPoPClient:
    return DPoPClient()


def _url(gateway: Gateway, path: str) -> str:
    return f"http://127.0.0.1:{gateway.port}{path}"


def _dpop_headers(token: str, proof: str) -> dict[str, str]:
    return {"Authorization": f"DPoP {token}", "DPoP": proof}


def test_a_bound_token_with_a_fresh_proof_per_request_is_forwarded(
    live: LiveGateway, client: DPoPClient
) -> None:
    gateway = live.gateway
    token = live.issuer.token(cnf={"jkt": client.jkt})
    for path in ("/orders/1", "/orders/2?page=3", "/payments/9"):
        proof = client.proof("GET", _url(gateway, path.split("?")[0]), access_token=token)
        status, _, body = gateway.request("GET", path, _dpop_headers(token, proof))
        assert status == 200, body
        seen = {k.lower() for k, _ in json.loads(body)["headers"]}
        assert "authorization" not in seen
        assert "dpop" not in seen  # the proof is a credential: not passed upstream
        assert "x-auth-subject" in seen


def test_bound_token_as_bearer_is_refused_with_both_challenges(
    live: LiveGateway, client: DPoPClient
) -> None:
    token = live.issuer.token(cnf={"jkt": client.jkt})
    status, headers, body = live.gateway.request(
        "GET", "/orders/1", {"Authorization": f"Bearer {token}"}
    )
    assert status == 401
    challenge = headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="authgate", error="invalid_token"')
    # Each challenge names the route's scope (RFC 6750 §3, RFC 9449 §7.1).
    assert challenge.endswith('DPoP realm="authgate", scope="orders:read", algs="ES256 PS256"')
    assert json.loads(body)["error"] == "invalid_token"


def test_no_credential_names_both_schemes(live: LiveGateway) -> None:
    status, headers, _ = live.gateway.request("GET", "/orders/1")
    assert status == 401
    assert headers["www-authenticate"] == (
        'Bearer realm="authgate", scope="orders:read", '
        'DPoP realm="authgate", scope="orders:read", algs="ES256 PS256"'
    )


def test_a_bad_proof_is_a_401_invalid_dpop_proof_on_the_dpop_challenge(
    live: LiveGateway, client: DPoPClient
) -> None:
    gateway = live.gateway
    token = live.issuer.token(cnf={"jkt": client.jkt})
    proof = client.proof("POST", _url(gateway, "/orders/1"), access_token=token)
    status, headers, body = gateway.request("GET", "/orders/1", _dpop_headers(token, proof))
    assert status == 401
    assert json.loads(body)["error"] == "invalid_dpop_proof"
    challenge = headers["www-authenticate"]
    assert challenge.startswith(
        'Bearer realm="authgate", scope="orders:read", DPoP realm="authgate", error='
    )
    assert 'error="invalid_dpop_proof"' in challenge
    gateway.wait_for_log(lambda r: r.get("reason") == "dpop_method")  # the precise reason


def test_require_dpop_refuses_bearer_tokens_with_a_dpop_challenge(live: LiveGateway) -> None:
    status, headers, _ = live.gateway.request(
        "GET", "/payments/1", {"Authorization": f"Bearer {live.issuer.token()}"}
    )
    assert status == 401
    challenge = headers["www-authenticate"]
    assert challenge.startswith('DPoP realm="authgate", error="invalid_token"')
    assert "Bearer" not in challenge


def test_an_unbound_token_with_the_dpop_scheme_is_refused(
    live: LiveGateway, client: DPoPClient
) -> None:
    gateway = live.gateway
    token = live.issuer.token()
    proof = client.proof("GET", _url(gateway, "/orders/1"), access_token=token)
    status, headers, _ = gateway.request("GET", "/orders/1", _dpop_headers(token, proof))
    assert status == 401
    assert 'DPoP realm="authgate", error="invalid_token"' in headers["www-authenticate"]


def test_behind_a_trusted_proxy_htu_is_the_forwarded_uri(
    live: LiveGateway, client: DPoPClient
) -> None:
    gateway = live.gateway
    token = live.issuer.token(cnf={"jkt": client.jkt})
    public = "https://api.example.com/orders/5"
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.com"}
    proof = client.proof("GET", public, access_token=token)
    status, _, _ = gateway.request("GET", "/orders/5", {**_dpop_headers(token, proof), **forwarded})
    assert status == 200
    # The gateway's own address is not where the client sent this request.
    proof = client.proof("GET", _url(gateway, "/orders/5"), access_token=token)
    status, _, _ = gateway.request("GET", "/orders/5", {**_dpop_headers(token, proof), **forwarded})
    assert status == 401


def test_forward_auth_checks_the_proof_against_the_original_request(
    live: LiveGateway, client: DPoPClient
) -> None:
    gateway = live.gateway
    token = live.issuer.token(cnf={"jkt": client.jkt})
    original = {
        "X-Forwarded-Method": "GET",
        "X-Forwarded-Uri": "/orders/8?x=1",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "shop.example.com",
    }
    proof = client.proof("GET", "https://shop.example.com/orders/8", access_token=token)
    headers = {**original, **_dpop_headers(token, proof)}
    status, answer, _ = gateway.request("GET", "/_authgate/check", headers)
    assert status == 200
    assert answer["x-auth-subject"] == "alice"
    status, answer, _ = gateway.request("GET", "/_authgate/check", headers)  # the same proof
    assert status == 401
    assert 'error="invalid_dpop_proof"' in answer["www-authenticate"]


def test_a_proof_used_at_one_gateway_is_refused_at_another_sharing_redis(
    tmp_path: Path, client: DPoPClient
) -> None:
    namespace = new_namespace()
    extra = (
        'trusted_proxies = ["127.0.0.1"]\n[limits]\nredis_url = "redis://127.0.0.1:6379/0"\n'
        f'namespace = "{namespace}"\ntimeout = "2s"\n[dpop]\n'  # a loaded test machine
    )
    redis = shared_redis()
    try:
        with live_gateway(_mkdir(tmp_path / "a"), extra) as one:
            two = Gateway(one.gateway.config_path.read_text(), _mkdir(tmp_path / "b"))
            try:
                token = one.issuer.token(cnf={"jkt": client.jkt})
                # Two replicas behind one proxy and one name.
                headers = {
                    "X-Forwarded-Proto": "https",
                    "X-Forwarded-Host": "api.example.com",
                    "Authorization": f"DPoP {token}",
                }
                proof = client.proof("GET", "https://api.example.com/orders/1", access_token=token)
                status, _, _ = one.gateway.request("GET", "/orders/1", {**headers, "DPoP": proof})
                assert status == 200
                status, answer, _ = two.request("GET", "/orders/1", {**headers, "DPoP": proof})
                assert status == 401
                assert 'error="invalid_dpop_proof"' in answer["www-authenticate"]
                assert list(redis.scan_iter(match=f"{namespace}:dpop:jti:*"))
            finally:
                two.stop()
    finally:
        delete_namespace(redis, namespace)
        redis.close()


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
