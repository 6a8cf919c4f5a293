"""Token exchange at the gateway (RFC 8693): a real `authgate serve`, a gateway whose route
exchanges the client's token for one addressed to the upstream, and an upstream that records the
`Authorization` it receives."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from authgate.server import admin
from authgate.server.secret_key import ServerSecret
from tests.support.dpop import DPoPClient
from tests.support.e2e import API
from tests.support.e2e_served import Served
from tests.support.gateway import Gateway, Upstream, free_port, live_gateway

GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
BILLING = "https://billing.example.test"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = Served.start(None, tmp_path_factory.mktemp("as"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def gateway_client(served: Served) -> tuple[str, str]:
    """The gateway's own client: may exchange tokens of the Orders API (it introspects it) into
    Billing, holding only Billing's `read`."""

    async def register(storage: Any) -> tuple[str, str]:
        now = int(time.time())
        await admin.create_api(
            storage, served.config, identifier=BILLING, scopes=("read", "write"), name="B", now=now
        )
        client, secret = await admin.create_client(
            storage,
            ServerSecret(served.config.secret_key),
            name="gateway",
            grant_types=(GRANT, "client_credentials"),
            scopes=(f"{BILLING}#read",),
            introspect=(API,),
            now=now,
        )
        assert secret is not None
        return client.client_id, secret

    result: tuple[str, str] = served.run(register)
    return result


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    yield up
    up.close()


@pytest.fixture(scope="module")
def user_token(served: Served) -> str:
    token: str = served.web_tokens(scope="openid read")["access_token"]
    return token


def _config(served: Served, upstream: Upstream, client: tuple[str, str], directory: Path,
            endpoint: str | None = None) -> str:  # fmt: skip
    (directory / "gateway.secret").write_text(client[1] + "\n")
    (directory / "gateway.secret").chmod(0o600)
    jwks = httpx.get(served.url + "/.well-known/openid-configuration").json()["jwks_uri"]
    return f"""
[token_exchange]
{endpoint or f'token_endpoint = "{served.url}/token"'}
client_id = "{client[0]}"
client_secret_file = "gateway.secret"
timeout = "2s"
retry_after = 7

[[issuers]]
issuer = "{served.url}"
jwks_uri = "{jwks}"
audiences = ["{API}"]

[[routes]]
path = "/billing"
upstream = "{upstream.url}"
scopes = ["read"]
token_exchange = {{ audience = "{BILLING}", scope = "read" }}

[[routes]]
path = "/billing-write"
upstream = "{upstream.url}"
scopes = ["read"]
token_exchange = {{ audience = "{BILLING}", scope = "write" }}

[[routes]]
path = "/elsewhere"
upstream = "{upstream.url}"
scopes = ["read"]
token_exchange = {{ audience = "https://unknown.example.test" }}
"""


@pytest.fixture
def gateway(
    served: Served, upstream: Upstream, gateway_client: tuple[str, str], tmp_path: Path
) -> Iterator[Gateway]:
    gw = Gateway(_config(served, upstream, gateway_client, tmp_path), tmp_path)
    yield gw
    gw.stop()


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return data


def _authorization(body: bytes) -> list[str]:
    record = json.loads(body)
    return [v for n, v in record["headers"] if n.lower() == "authorization"]


def _token_requests(served: Served) -> int:
    text = httpx.get(served.url + "/metrics").text
    return sum(
        int(float(m.group(1)))
        for m in re.finditer(
            r'authgate_server_requests_total\{[^}]*endpoint="token"[^}]*\} (\S+)', text
        )
    )


def _exchanges(gw: Gateway) -> dict[str, int]:
    _, _, body = gw.request("GET", "/metrics")
    found = re.findall(r'authgate_token_exchanges_total\{outcome="(\w+)"\} (\S+)', body.decode())
    return {outcome: int(float(count)) for outcome, count in found}


def test_the_upstream_receives_a_token_for_itself_with_act_and_the_narrowed_scope(
    gateway: Gateway, served: Served, user_token: str, gateway_client: tuple[str, str]
) -> None:
    status, _, body = gateway.request(
        "GET", "/billing/x", {"Authorization": f"Bearer {user_token}"}
    )
    assert status == 200, body
    [authorization] = _authorization(body)
    scheme, _, token = authorization.partition(" ")
    assert scheme == "Bearer"
    assert token != user_token
    assert user_token not in body.decode()  # the client's token never reaches the upstream
    claims, user = _claims(token), _claims(user_token)
    assert claims["aud"] in (BILLING, [BILLING])
    assert claims["sub"] == user["sub"]
    assert claims["scope"] == "read"
    assert claims["act"] == {"sub": gateway_client[0]}
    assert claims["exp"] <= user["exp"]
    logs = "\n".join(gateway.logs)
    assert user_token not in logs
    assert token not in logs


def test_a_second_request_is_served_from_the_cache(
    gateway: Gateway, served: Served, user_token: str
) -> None:
    headers = {"Authorization": f"Bearer {user_token}"}
    status, _, first = gateway.request("GET", "/billing/1", headers)
    assert status == 200
    before = _token_requests(served)
    status, _, second = gateway.request("GET", "/billing/2", headers)
    assert status == 200
    assert _token_requests(served) == before  # no new call to the authorization server
    assert _authorization(second) == _authorization(first)
    assert _exchanges(gateway).get("hit", 0) >= 1
    # A reload that leaves [token_exchange] as it is keeps the cache.
    gateway.reload()
    gateway.wait_for_log(lambda r: r.get("msg") == "configuration reloaded")
    status, _, third = gateway.request("GET", "/billing/3", headers)
    assert status == 200
    assert _token_requests(served) == before
    assert _authorization(third) == _authorization(first)


def test_a_refused_exchange_is_a_403_and_nothing_is_forwarded(
    gateway: Gateway, upstream: Upstream, user_token: str
) -> None:
    seen = len(upstream.state.requests)
    # The subject token has no `write`: no widening (invalid_scope).
    status, _, body = gateway.request(
        "GET", "/billing-write/x", {"Authorization": f"Bearer {user_token}"}
    )
    assert status == 403, body
    assert json.loads(body)["error"] == "invalid_scope"
    # An audience the gateway's client may not ask for: invalid_target.
    status, _, body = gateway.request(
        "GET", "/elsewhere/x", {"Authorization": f"Bearer {user_token}"}
    )
    assert status == 403, body
    assert json.loads(body)["error"] == "invalid_target"
    assert len(upstream.state.requests) == seen
    assert _exchanges(gateway)["refused"] == 2


def test_the_token_endpoint_may_come_from_the_issuers_metadata(
    served: Served,
    upstream: Upstream,
    gateway_client: tuple[str, str],
    user_token: str,
    tmp_path: Path,
) -> None:
    """RFC 8414: `issuer` instead of `token_endpoint`, the endpoint found at the first exchange."""
    config = _config(served, upstream, gateway_client, tmp_path, f'issuer = "{served.url}"')
    gw = Gateway(config, tmp_path)
    try:
        status, _, body = gw.request("GET", "/billing/x", {"Authorization": f"Bearer {user_token}"})
        assert status == 200, body
        [authorization] = _authorization(body)
        assert _claims(authorization.partition(" ")[2])["aud"] in (BILLING, [BILLING])
    finally:
        gw.stop()


def test_an_unreachable_authorization_server_is_a_503_with_retry_after(
    served: Served,
    upstream: Upstream,
    gateway_client: tuple[str, str],
    user_token: str,
    tmp_path: Path,
) -> None:
    down = f'token_endpoint = "http://127.0.0.1:{free_port()}/token"'
    gw = Gateway(_config(served, upstream, gateway_client, tmp_path, down), tmp_path)
    try:
        seen = len(upstream.state.requests)
        status, headers, body = gw.request(
            "GET", "/billing/x", {"Authorization": f"Bearer {user_token}"}
        )
        assert status == 503, body
        assert headers["retry-after"] == "7"
        assert json.loads(body)["error"] == "temporarily_unavailable"
        assert len(upstream.state.requests) == seen
        assert _exchanges(gw)["error"] == 1
        assert gateway_client[1] not in "\n".join(gw.logs)
    finally:
        gw.stop()


def test_a_dpop_bound_token_is_neither_exchanged_nor_forwarded(tmp_path: Path) -> None:
    """The gateway cannot prove possession of the client's key to the AS: a DPoP-bound token is
    refused (403) before any call to the AS (here unreachable: a bearer token gets a 503)."""
    (tmp_path / "secret").write_text("s3cret")
    (tmp_path / "secret").chmod(0o600)
    extra = f"""
[dpop]
algorithms = ["ES256"]
[token_exchange]
token_endpoint = "http://127.0.0.1:{free_port()}/token"
client_id = "gw"
client_secret_file = "secret"
"""

    def route(upstream: Upstream) -> str:
        return (
            f'[[routes]]\npath = "/exchanged"\nupstream = "{upstream.url}"\n'
            'token_exchange = { audience = "https://billing.example.test" }\n'
        )

    client = DPoPClient()
    with live_gateway(tmp_path, extra, route) as live:
        gw, seen = live.gateway, len(live.upstream.state.requests)
        token = live.issuer.token(cnf={"jkt": client.jkt})
        url = f"http://127.0.0.1:{gw.port}/exchanged"
        proof = client.proof("GET", url, access_token=token)
        status, _, body = gw.request(
            "GET", "/exchanged", {"Authorization": f"DPoP {token}", "DPoP": proof}
        )
        assert status == 403, body
        assert json.loads(body)["error"] == "invalid_request"
        status, _, body = gw.request(
            "GET", "/exchanged", {"Authorization": f"Bearer {live.issuer.token()}"}
        )
        assert status == 503, body
        assert len(live.upstream.state.requests) == seen
        assert _exchanges(gw) == {"miss": 1, "error": 1}
