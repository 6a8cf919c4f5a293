"""DPoP end to end with an independent client (npm oauth4webapi, RFC 9449): client credentials at
a running `authgate serve` with a proof of the client's own ES256 key, then the DPoP-bound token
on a resource behind the `authgate gateway` process with a new proof per call; the same token sent
as a plain Bearer token is refused. A second peer, npm oidc-provider, issues a DPoP-bound token that
the gateway accepts with a proof as well."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dpop import DPoPClient
from tests.support.gateway import Gateway, Upstream
from tests.support.interop import AuthgateServer, OidcProviderIssuer, require_node

ORDERS = "https://orders.dpop.test"
SCRIPT = Path(__file__).resolve().parents[2] / "support" / "dpop_client.mjs"


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.close()


def _gateway(directory: Path, issuer: str, audience: str, upstream: Upstream) -> Gateway:
    return Gateway(
        f"""
[dpop]
[[issuers]]
issuer = "{issuer}"
audiences = ["{audience}"]
[[routes]]
path = "/orders"
upstream = "{upstream.url}"
scopes = ["orders:read"]
""",
        directory,
    )


def test_oauth4webapi_client_credentials_with_dpop_through_the_gateway(
    authgate_server: AuthgateServer, upstream: Upstream, tmp_path: Path
) -> None:
    require_node()
    server = authgate_server
    server.start()
    server.create_api(ORDERS, "orders:read")
    client = server.create_client(
        "dpop service", "--grant", "client_credentials", "--scope", "orders:read", "--require-dpop"
    )
    gateway = _gateway(tmp_path, server.url, ORDERS, upstream)
    try:
        resource = f"http://127.0.0.1:{gateway.port}/orders/42"
        done = subprocess.run(
            ["node", str(SCRIPT), server.url, client.client_id, client.client_secret, ORDERS,
             "orders:read", resource],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["token_type"].lower() == "dpop"
        assert set(result["cnf"]) == {"jkt"}
        assert "ES256" in result["algs"]
        for call in result["calls"]:  # a new proof each time, all accepted
            assert call["status"] == 200, call
            assert json.loads(call["body"])["path"] == "/orders/42"
        assert result["bearer"]["status"] == 401
        assert result["bearer"]["challenge"].startswith(
            'Bearer realm="authgate", error="invalid_token"'
        )
        assert 'DPoP realm="authgate", scope=' in result["bearer"]["challenge"]
        assert ', algs="' in result["bearer"]["challenge"]
    finally:
        gateway.stop()


def test_an_oidc_provider_dpop_token_passes_the_gateway_with_its_proof(
    upstream: Upstream, tmp_path: Path
) -> None:
    issuer = OidcProviderIssuer(tmp_path)
    try:
        key = DPoPClient()
        token = issuer.dpop_token(issuer.ORDERS, "orders:read", key=key)
        gateway = _gateway(tmp_path, issuer.url, issuer.ORDERS, upstream)
        try:
            url = f"http://127.0.0.1:{gateway.port}/orders/1"
            proof = key.proof("GET", url, access_token=token)
            headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
            status, _, body = gateway.request("GET", "/orders/1", headers)
            assert status == 200, body
            status, _, _ = gateway.request("GET", "/orders/1", headers)  # replayed
            assert status == 401
            thief = DPoPClient().proof("GET", url, access_token=token)
            status, _, _ = gateway.request(
                "GET", "/orders/1", {"Authorization": f"DPoP {token}", "DPoP": thief}
            )
            assert status == 401
        finally:
            gateway.stop()
    finally:
        issuer.close()
