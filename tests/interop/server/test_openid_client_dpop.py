"""openid-client 6 and oauth4webapi (Node) with DPoP (RFC 9449) against a real `authgate serve` on
loopback, on SQLite and PostgreSQL, and with server nonces required (issue 13).

openid-client (dpop_flow_client.mjs) runs the code flow with PAR (RFC 9126) and a proof of its own
ES256 key at /par and /token, for a public and for a confidential client. The bound access token
then passes `authgate gateway` and the ASGI (FastAPI) and WSGI (Flask) middleware with a new proof
per call, and is refused as a Bearer token; a code pushed with one key cannot be redeemed with
another (§10.1). The public client's refresh token is bound to the key: a refresh with another key
or with none is refused, one with the key rotates it and binds the new access token. The
confidential client exchanges its bound token (RFC 8693) for a token to another API its exchange
policy allows. The recorded requests show which proofs went where, and the nonce retries.

oauth4webapi (dpop_oauth4webapi_client.mjs), driven call by call, runs the public client's PAR and
code flow with proofs, the gateway call and a refresh, retrying on `use_dpop_nonce` itself."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from authgate.gate import Gate, load_gate_config
from authgate.server import admin
from authgate.server.secret_key import ServerSecret
from authgate.server.storage.protocols import Storage
from tests.support.e2e import API, LOOPBACK_CALLBACK
from tests.support.e2e_served import Served
from tests.support.exchange import GRANT as EXCHANGE_GRANT
from tests.support.gateway import Gateway, Upstream
from tests.support.interop import NODE_MODULES, FastAPIShell, FlaskShell, require_node

SCRIPT = Path(__file__).with_name("dpop_flow_client.mjs")
OAUTH4WEBAPI_SCRIPT = Path(__file__).with_name("dpop_oauth4webapi_client.mjs")
BILLING = "https://billing.dpop.test"


class Peers:
    """The clients registered for the script, on one `Served`."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.public_id, self.confidential_id, self.confidential_secret = served.run(self._register)

    async def _register(self, storage: Storage) -> tuple[str, str, str]:
        config = self.served.config
        now = int(time.time())
        await admin.create_api(
            storage, config, identifier=BILLING, scopes=("read",), name="Billing", now=now
        )
        public, _ = await admin.create_client(
            storage,
            ServerSecret(config.secret_key),
            name="DPoP SPA",
            grant_types=("authorization_code", "refresh_token"),
            scopes=(f"{API}#read",),
            auth_method="none",
            redirect_uris=(LOOPBACK_CALLBACK,),
            require_dpop=True,
            now=now,
        )
        confidential, secret = await admin.create_client(
            storage,
            ServerSecret(config.secret_key),
            name="DPoP web",
            grant_types=("authorization_code", "refresh_token", EXCHANGE_GRANT),
            # The exchange policy: tokens for Billing, as the user (impersonation, no actor).
            scopes=(f"{API}#read", f"{BILLING}#read"),
            redirect_uris=(LOOPBACK_CALLBACK,),
            exchange_impersonation=True,
            now=now,
        )
        assert secret is not None
        return public.client_id, confidential.client_id, secret


@pytest.fixture(scope="module")
def peers(served: Served) -> Peers:
    return Peers(served)


@pytest.fixture(scope="module")
def nonce_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server that requires its DPoP nonce in every proof (`[dpop] require_nonce`), SQLite."""
    workdir = tmp_path_factory.mktemp("serve-nonce")
    server = Served.start(
        f"sqlite:///{workdir / 'authgate.db'}",
        workdir,
        extra_config="[dpop]\nrequire_nonce = true\n",
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def nonce_peers(nonce_served: Served) -> Peers:
    return Peers(nonce_served)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.close()


def _gate_toml(issuer: str, upstream: Upstream | None = None) -> str:
    """The gate's configuration for the API: DPoP on, `read` on /orders."""
    route = f'upstream = "{upstream.url}"\n' if upstream is not None else ""
    return f"""
[dpop]
[[issuers]]
issuer = "{issuer}"
audiences = ["{API}"]
[[routes]]
path = "/orders"
{route}scopes = ["read"]
"""


def _run_script(
    script: Path, served: Served, peers: Peers, resources: dict[str, str]
) -> dict[str, Any]:
    """Run `script`, sign in and approve for it at each authorization; its result."""
    recipe = {
        "issuer": served.url,
        "api": API,
        "billing": BILLING,
        "redirect_uri": LOOPBACK_CALLBACK,
        "public_client_id": peers.public_id,
        "confidential_client_id": peers.confidential_id,
        "confidential_client_secret": peers.confidential_secret,
        "resources": resources,
    }
    process = subprocess.Popen(
        ["node", str(script)],
        env={**os.environ, "NODE_MODULES": str(NODE_MODULES), "RECIPE_INPUT": json.dumps(recipe)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdin is not None
        for line in process.stdout:
            if line.startswith("AUTHORIZE "):
                url = line.removeprefix("AUTHORIZE ").strip()
                assert url.startswith(served.url + "/authorize?"), url
                process.stdin.write(served.sign_in_and_approve(url) + "\n")
                process.stdin.flush()
            elif line.startswith("RESULT "):
                _, err = process.communicate(timeout=60)
                assert process.wait() == 0, err
                result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
                return result
        _, err = process.communicate(timeout=60)
        raise AssertionError(f"the script stopped without a result: {err}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@contextmanager
def _gateway(served: Served, upstream: Upstream, directory: Path) -> Iterator[Gateway]:
    gateway = Gateway(_gate_toml(served.url, upstream), directory)
    try:
        yield gateway
    finally:
        gateway.stop()


def _flow(served: Served, peers: Peers, upstream: Upstream, directory: Path) -> dict[str, Any]:
    """The script's run with the gateway and both middleware shells in front of the API."""
    with ExitStack() as stack:
        gateway = stack.enter_context(_gateway(served, upstream, directory))
        gate_file = directory / "gate.toml"
        gate_file.write_text(_gate_toml(served.url))
        resources = {"gateway": f"http://127.0.0.1:{gateway.port}"}
        for name, shell in (("asgi", FastAPIShell), ("wsgi", FlaskShell)):
            app = shell(Gate(load_gate_config(str(gate_file))))
            stack.callback(app.close)
            resources[name] = app.url
        return _run_script(SCRIPT, served, peers, resources)


def _check_flow(result: dict[str, Any], served: Served) -> None:
    """What both runs (with and without nonces) must show."""
    public, confidential = result["public"], result["confidential"]

    # The code flow with PAR: the browser carries only the reference; the token is bound.
    assert public["front_channel"] == ["client_id", "request_uri"]
    assert public["token_type"].lower() == "dpop"
    assert public["claims"]["cnf"] == {"jkt": public["jkt"]}
    assert public["claims"]["aud"] == API
    assert public["claims"]["scope"] == "openid offline_access read"
    assert public["claims"]["sub"] == public["id_token_sub"]

    # The resource, through the gateway and both middleware shells: each proof passes once.
    for name, calls in public["resources"].items():
        assert [call["status"] for call in calls["calls"]] == [200, 200], (name, calls)
        assert calls["bearer"] == 401, name  # RFC 9449 §7.2: a bound token is no bearer token
    for call in public["resources"]["gateway"]["calls"]:
        assert call["body"]["path"] == "/orders"
    for name in ("asgi", "wsgi"):
        for call in public["resources"][name]["calls"]:
            assert call["body"]["subject"] == public["claims"]["sub"], call
            assert call["body"]["client_id"] == public["claims"]["client_id"]
            assert call["body"]["aud"] == API

    # RFC 9449 §10.1: the proof at /par bound the code; redeemed with another key, it is refused.
    assert public["code_with_another_key"] == {
        "status": 400,
        "error": "invalid_dpop_proof",
        "error_description": "the authorization code is bound to another DPoP key",
    }

    # RFC 9449 §5: the public client's refresh token is bound to its key.
    bound = "the refresh token is bound to another DPoP key"
    assert public["refresh_with_another_key"] == {
        "status": 400,
        "error": "invalid_dpop_proof",
        "error_description": bound,
    }
    assert public["refresh_without_proof"] == {
        "status": 400,
        "error": "invalid_dpop_proof",
        "error_description": "this client must send a DPoP proof",  # registered --require-dpop
    }
    refreshed = public["refreshed"]
    assert refreshed["token_type"].lower() == "dpop"
    assert refreshed["claims"]["cnf"] == {"jkt": public["jkt"]}
    assert refreshed["rotated"] is True
    assert refreshed["gateway"] == 200

    # The confidential client: bound tokens, a bound refresh, then token exchange into Billing.
    jkt = {"jkt": confidential["jkt"]}
    assert confidential["token_type"].lower() == "dpop"
    assert confidential["claims"]["cnf"] == jkt
    assert confidential["refreshed"]["claims"]["cnf"] == jkt
    exchanged = confidential["exchanged"]
    assert exchanged["token_type"].lower() == "dpop"  # the exchange carried a proof too
    assert exchanged["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert exchanged["refresh_token"] is False  # RFC 8693 §2.2.1: none for an exchange here
    assert exchanged["scope"] == "read"
    assert exchanged["claims"]["aud"] == BILLING
    assert exchanged["claims"]["sub"] == confidential["claims"]["sub"]
    assert exchanged["claims"]["cnf"] == jkt
    assert "act" not in exchanged["claims"]  # impersonation: no actor

    # Where the proofs went: /par and /token name their endpoint; resource proofs carry `ath`.
    requests = result["requests"]
    server = [r for r in requests if r["path"] in ("/par", "/token")]
    proved = [r for r in server if "proof" in r]
    assert {r["path"] for r in proved} == {"/par", "/token"}
    assert len(server) - len(proved) == 1  # the refresh sent without a proof
    for request in proved:
        assert request["proof"]["htm"] == "POST"
        assert request["proof"]["htu"] == served.url + request["path"]
        assert request["proof"]["ath"] is False
    for request in requests:
        if request["path"] == "/orders":
            assert request["proof"]["ath"] is True
            assert request["proof"]["htm"] == "GET"


def test_openid_client_pushes_with_dpop_and_uses_the_bound_tokens(
    served: Served, peers: Peers, upstream: Upstream, tmp_path: Path
) -> None:
    require_node()
    result = _flow(served, peers, upstream, tmp_path)
    _check_flow(result, served)
    refusals = [r for r in result["requests"] if r["status"] >= 400]
    # Without server nonces the only refusals are the redemption and refreshes meant to fail.
    assert [(r["path"], r["error"]) for r in refusals] == [("/token", "invalid_dpop_proof")] * 3
    assert not any(r.get("proof", {}).get("nonce") for r in result["requests"])


def test_openid_client_retries_with_the_server_nonce(
    nonce_served: Served, nonce_peers: Peers, upstream: Upstream, tmp_path: Path
) -> None:
    require_node()
    result = _flow(nonce_served, nonce_peers, upstream, tmp_path)
    _check_flow(result, nonce_served)
    requests = result["requests"]
    # RFC 9449 §8: the first proof of each key (the public client's, the other key it tries to
    # refresh with, the confidential client's) got 400 use_dpop_nonce with `DPoP-Nonce`, and
    # openid-client retried at once with the nonce; every accepted proof carried one.
    asked = [i for i, r in enumerate(requests) if r.get("error") == "use_dpop_nonce"]
    assert [requests[i]["path"] for i in asked] == ["/par", "/token", "/par"]
    for i in asked:
        first, retry = requests[i], requests[i + 1]
        assert first["status"] == 400
        assert first["dpop_nonce"] is True
        assert first["proof"]["nonce"] is False
        assert retry["path"] == first["path"]
        assert retry["proof"]["jkt"] == first["proof"]["jkt"]
        assert retry["proof"]["nonce"] is True
    accepted = [r for r in requests if r["path"] in ("/par", "/token") and r["status"] < 400]
    assert all(r["proof"]["nonce"] for r in accepted)
    # The resource servers issue no nonces (RFC 9449 §9 makes them optional) and asked for none.
    assert all(r["status"] == 200 for r in requests if r["path"] == "/orders")


def _oauth4webapi(
    served: Served, peers: Peers, upstream: Upstream, directory: Path
) -> dict[str, Any]:
    with _gateway(served, upstream, directory) as gateway:
        resources = {"gateway": f"http://127.0.0.1:{gateway.port}"}
        result = _run_script(OAUTH4WEBAPI_SCRIPT, served, peers, resources)
    jkt = {"jkt": result["jkt"]}
    assert result["expires_in"] == "number"
    assert result["token_type"].lower() == "dpop"
    assert result["cnf"] == jkt
    assert result["calls"] == [200, 200]
    assert result["refreshed"] == {"token_type": "dpop", "cnf": jkt, "gateway": 200}
    return result


def test_oauth4webapi_pushes_with_dpop_and_refreshes(
    served: Served, peers: Peers, upstream: Upstream, tmp_path: Path
) -> None:
    require_node()
    assert _oauth4webapi(served, peers, upstream, tmp_path)["nonce_retries"] == 0


def test_oauth4webapi_retries_with_the_server_nonce(
    nonce_served: Served, nonce_peers: Peers, upstream: Upstream, tmp_path: Path
) -> None:
    require_node()
    # One retry: only the first request (/par) had no nonce to send; the handle kept it after.
    assert _oauth4webapi(nonce_served, nonce_peers, upstream, tmp_path)["nonce_retries"] == 1
