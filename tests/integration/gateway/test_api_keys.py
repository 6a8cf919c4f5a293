"""API keys through the gateway: the configured header authenticates, and never reaches the
upstream unless the route forwards credentials."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from authgate.verifier import hash_api_key, new_api_key
from tests.support.gateway import AUTHGATE, Gateway, Issuer, Upstream, gateway_toml

KEY = new_api_key()


@pytest.fixture(scope="module")
def keyed_gateway(
    issuer: Issuer, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    extra = f"""
[api_keys]
header = "X-Api-Key"
[[api_keys.keys]]
hash = "{hash_api_key(KEY)}"
subject = "batch-job"
scopes = ["orders:read"]
roles = ["robot"]
"""
    gw = Gateway(gateway_toml(issuer, upstream, extra), tmp_path_factory.mktemp("keys"))
    yield gw
    gw.stop()


def _seen(body: bytes) -> dict[str, str]:
    return {name.lower(): value for name, value in json.loads(body)["headers"]}


def test_api_key_authenticates_and_stays_at_the_gateway(keyed_gateway: Gateway) -> None:
    status, _, body = keyed_gateway.request("GET", "/orders/1", {"X-Api-Key": KEY})
    assert status == 200
    seen = _seen(body)
    assert seen["x-auth-subject"] == "batch-job"
    assert seen["x-auth-scopes"] == "orders:read"
    assert seen["x-auth-roles"] == "robot"
    assert "x-api-key" not in seen


def test_api_key_is_forwarded_where_credentials_are(keyed_gateway: Gateway) -> None:
    status, _, body = keyed_gateway.request("GET", "/with-auth/1", {"X-Api-Key": KEY})
    assert status == 200
    assert _seen(body)["x-api-key"] == KEY


def test_wrong_api_key_is_401(keyed_gateway: Gateway) -> None:
    status, headers, _ = keyed_gateway.request("GET", "/orders/1", {"X-Api-Key": KEY + "x"})
    assert status == 401
    assert 'error="invalid_token"' in headers["www-authenticate"]


def test_api_key_and_bearer_together_are_refused(keyed_gateway: Gateway, issuer: Issuer) -> None:
    status, _, _ = keyed_gateway.request(
        "GET", "/orders/1", {"X-Api-Key": KEY, "Authorization": f"Bearer {issuer.token()}"}
    )
    assert status == 400


def test_config_check_command(tmp_path: Path, issuer: Issuer, upstream: Upstream) -> None:
    good = tmp_path / "good.toml"
    good.write_text(gateway_toml(issuer, upstream))
    result = subprocess.run([str(AUTHGATE), "gateway", "--config", str(good), "--check"],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0
    assert "valid" in result.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(
        gateway_toml(issuer, upstream, routes='[[routes]]\npath = "/x"\nscope = ["a"]\n')
    )
    result = subprocess.run([str(AUTHGATE), "gateway", "--config", str(bad), "--check"],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode != 0
    assert "routes[12].scope" in result.stderr
