"""Real `authgate serve` processes: two servers on one PostgreSQL database, configured only through
the CLI; Authlib's httpx client with each client-authentication method; rotation under load.

Key schedule for these tests (seconds instead of days): JWKS max-age 2, reload every 1, publish 3
ahead, rotate every 6. Every token issued during the stream must carry a key that both servers had
been publishing for at least the JWKS max-age.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import psycopg
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT

from authgate.jose import JWK
from tests.support.server_harness import PG_ADMIN, free_port, wait_ready

AUTHGATE = str(Path(sys.executable).parent / "authgate")
API = "https://orders.example.test"
OPAQUE_API = "https://ledger.example.test"
CONFIG = """
[keys]
algorithms = ["RS256", "ES256"]
jwks_max_age = "2s"
refresh_interval = "1s"
publication_lead = "3s"
rotation_period = "6s"
retirement_period = "130s"

[tokens]
default_access_token_ttl = "60s"
max_access_token_ttl = "60s"

[http]
cache_ttl = 0
"""


@dataclass
class Deployment:
    """Two servers on one database, and the secrets handed out during setup."""

    env: dict[str, str]
    config: Path
    urls: list[str]
    issuer: str
    logs: list[Path]
    client: dict[str, Any]
    rs: dict[str, Any]
    jwt_client: dict[str, Any]
    jwt_key: JWK

    def cli(self, *args: str) -> Any:
        result = subprocess.run(
            [AUTHGATE, *args, "--config", str(self.config), "--json"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    workdir = tmp_path_factory.mktemp("serve")
    name = f"authgate_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    ports = [free_port(), free_port()]
    issuer = f"http://127.0.0.1:{ports[0]}"
    config = workdir / "authgate.toml"
    config.write_text(CONFIG)
    env = {
        **os.environ,
        "AUTHGATE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{name}",
        "AUTHGATE_SECRET_KEY": secrets.token_urlsafe(32),
        "AUTHGATE_ISSUER": issuer,
    }
    env.pop("AUTHGATE_CONFIG", None)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        d = Deployment(
            env,
            config,
            [f"http://127.0.0.1:{p}" for p in ports],
            issuer,
            [workdir / f"server{i}.log" for i in range(2)],
            {},
            {},
            {},
            JWK.generate("RSA", size=2048),
        )
        # PostgreSQL is never upgraded behind the operator's back: `db upgrade` first.
        assert d.cli("db", "upgrade")["to"]
        d.cli(
            "api",
            "create",
            "--identifier",
            API,
            "--scope",
            "orders:read",
            "--scope",
            "orders:write",
        )
        d.cli(
            "api",
            "create",
            "--identifier",
            OPAQUE_API,
            "--scope",
            "ledger:read",
            "--token-format",
            "opaque",
            "--alg",
            "ES256",
        )
        d.client = d.cli(
            "client",
            "create",
            "--name",
            "svc",
            "--grant",
            "client_credentials",
            "--scope",
            "orders:read",
            "--scope",
            "ledger:read",
            "--role",
            "batch",
        )
        d.rs = d.cli(
            "client",
            "create",
            "--name",
            "orders api",
            "--introspect",
            API,
            "--introspect",
            OPAQUE_API,
        )
        jwks_file = workdir / "client-jwks.json"
        jwks_file.write_text(json.dumps({"keys": [d.jwt_key.public().to_dict()]}))
        d.jwt_client = d.cli(
            "client",
            "create",
            "--name",
            "signed",
            "--grant",
            "client_credentials",
            "--scope",
            "orders:read",
            "--auth-method",
            "private_key_jwt",
            "--jwks",
            str(jwks_file),
        )
        for port, log in zip(ports, d.logs, strict=True):
            processes.append(
                subprocess.Popen(
                    [AUTHGATE, "serve", "--port", str(port), "--config", str(config)],
                    env=env,
                    stdout=log.open("wb"),
                    stderr=subprocess.STDOUT,
                )
            )
        for url, process, log in zip(d.urls, processes, d.logs, strict=True):
            wait_ready(url, process, log)
        yield d
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _oauth(d: Deployment, url: str, method: str, who: dict[str, Any]) -> AsyncOAuth2Client:
    if method == "private_key_jwt":
        client = AsyncOAuth2Client(
            who["client_id"],
            d.jwt_key.to_pem(private=True).decode(),
            token_endpoint_auth_method=method,
        )
        # Authlib's assertions live an hour by default; this server accepts at most five
        # minutes (tokens.client_assertion_max_lifetime), so the client asks for one minute.
        short = {"exp": int(time.time()) + 60}
        client.register_client_auth_method(PrivateKeyJWT(url + "/token", claims=short))
        return client
    return AsyncOAuth2Client(
        who["client_id"], who["client_secret"], token_endpoint_auth_method=method
    )


@pytest.mark.postgres
@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post", "private_key_jwt"])
async def test_authlib_client_each_auth_method(deployment: Deployment, method: str) -> None:
    d = deployment
    if method == "client_secret_post":
        # A client registered for client_secret_post (the method is part of its registration).
        who = d.cli(
            "client",
            "create",
            "--name",
            "post",
            "--grant",
            "client_credentials",
            "--scope",
            "orders:read",
            "--auth-method",
            method,
        )
    else:
        who = d.jwt_client if method == "private_key_jwt" else d.client
    async with _oauth(d, d.urls[0], method, who) as client:
        token = await client.fetch_token(
            d.urls[0] + "/token", grant_type="client_credentials", resource=API
        )
    assert token["token_type"] == "Bearer"
    async with httpx.AsyncClient() as http:
        jwks = (await http.get(d.urls[1] + "/.well-known/jwks.json")).json()
    header = pyjwt.get_unverified_header(token["access_token"])
    key = pyjwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == header["kid"]))
    claims = pyjwt.decode(
        token["access_token"], key.key, algorithms=["RS256"], audience=API, issuer=d.issuer
    )
    assert claims["client_id"] == who["client_id"]


@pytest.mark.postgres
@pytest.mark.parametrize("resource", [API, OPAQUE_API])
async def test_token_from_one_server_introspects_and_revokes_on_the_other(
    deployment: Deployment, resource: str
) -> None:
    d = deployment
    async with _oauth(d, d.urls[0], "client_secret_basic", d.client) as client:
        token = await client.fetch_token(
            d.urls[0] + "/token", grant_type="client_credentials", resource=resource
        )
    value = token["access_token"]
    async with _oauth(d, d.urls[1], "client_secret_basic", d.rs) as rs:
        info = (await rs.introspect_token(d.urls[1] + "/introspect", token=value)).json()
        assert info["active"] is True
        assert info["aud"] == resource
        assert info["roles"] == ["batch"]
    async with _oauth(d, d.urls[1], "client_secret_basic", d.client) as client:
        revoked = await client.revoke_token(d.urls[1] + "/revoke", token=value)
        assert revoked.status_code == 200
    async with _oauth(d, d.urls[0], "client_secret_basic", d.rs) as rs:
        after = (await rs.introspect_token(d.urls[0] + "/introspect", token=value)).json()
    assert after == {"active": False}


async def _kid_of(url: str, d: Deployment, http: httpx.AsyncClient) -> str:
    response = await http.post(
        url + "/token",
        data={"grant_type": "client_credentials", "resource": API},
        auth=(d.client["client_id"], d.client["client_secret"]),
    )
    assert response.status_code == 200, response.text
    kid: str = pyjwt.get_unverified_header(response.json()["access_token"])["kid"]
    return kid


@pytest.mark.postgres
async def test_cli_rotation_served_by_both(deployment: Deployment) -> None:
    d = deployment
    (rotation,) = d.cli("keys", "rotate", "--alg", "RS256")
    async with httpx.AsyncClient(timeout=5) as http:
        deadline = time.monotonic() + 10
        seen: set[int] = set()
        while time.monotonic() < deadline and len(seen) < 2:
            for i, url in enumerate(d.urls):
                jwks = (await http.get(url + "/.well-known/jwks.json")).json()
                if rotation["kid"] in {k["kid"] for k in jwks["keys"]}:
                    seen.add(i)
            await asyncio.sleep(0.2)
        assert seen == {0, 1}, "both servers publish the new key"
        await asyncio.sleep(max(0.0, rotation["activate_at"] - time.time() + 0.3))
        kids = [await _kid_of(url, d, http) for url in d.urls]
    # Either the CLI's key or, if the schedule rotated again meanwhile, a later one: never the
    # key that was signing before the rotation, and the same on both servers.
    keys = {r["kid"]: r for r in d.cli("keys", "list")}
    assert kids[0] == kids[1]
    assert keys[kids[0]]["activate_at"] >= rotation["activate_at"]


@pytest.mark.postgres
async def test_rotation_under_steady_load(deployment: Deployment) -> None:
    d = deployment
    max_age = 2.0
    poll = 0.2
    first_seen: dict[str, float] = {}
    issued: list[tuple[float, str]] = []
    stop = time.monotonic() + 14  # more than two scheduled rotations

    async with httpx.AsyncClient(timeout=5) as http:

        async def watch_jwks() -> None:
            while time.monotonic() < stop:
                for url in d.urls:
                    # Dated when asked, not when answered: on a loaded machine the answer can come
                    # late, which would make the publication look later than it was.
                    asked = time.time()
                    jwks = (await http.get(url + "/.well-known/jwks.json")).json()
                    for key in jwks["keys"]:
                        first_seen.setdefault(key["kid"], asked)
                await asyncio.sleep(poll)

        async def request_tokens(url: str) -> None:
            while time.monotonic() < stop:
                response = await http.post(
                    url + "/token",
                    data={"grant_type": "client_credentials", "resource": API},
                    auth=(d.client["client_id"], d.client["client_secret"]),
                )
                assert response.status_code == 200, response.text
                issued.append((time.time(), response.json()["access_token"]))
                await asyncio.sleep(0.02)

        await asyncio.gather(watch_jwks(), *(request_tokens(url) for url in d.urls))
        final = (await http.get(d.urls[1] + "/.well-known/jwks.json")).json()

    kids_used = {pyjwt.get_unverified_header(token)["kid"] for _, token in issued}
    assert len(kids_used) >= 2, "the schedule rotated during the stream"
    keys = {k["kid"]: pyjwt.PyJWK(k) for k in final["keys"]}
    for at, token in issued:
        kid = pyjwt.get_unverified_header(token)["kid"]
        pyjwt.decode(token, keys[kid].key, algorithms=["RS256"], audience=API, issuer=d.issuer)
        # Published (as observed by polling both servers) at least a JWKS max-age before use,
        # up to the polling granularity: a verifier's cached JWKS always had the key.
        if kid in first_seen and first_seen[kid] > issued[0][0]:
            assert at - first_seen[kid] >= max_age - 2 * poll, (kid, at - first_seen[kid])


@pytest.mark.postgres
def test_no_secret_in_server_logs(deployment: Deployment) -> None:
    d = deployment
    text = "\n".join(log.read_text(errors="replace") for log in d.logs)
    assert "POST /token 200" in text
    for secret in (d.client["client_secret"], d.rs["client_secret"], d.env["AUTHGATE_SECRET_KEY"]):
        assert secret not in text
    assert "eyJ" not in text  # no JWT (header or assertion) was ever logged


@pytest.mark.postgres
def test_node_client_recipes(deployment: Deployment) -> None:
    # docs/clients.md's openid-client and oauth4webapi recipes, as written there.
    d = deployment
    modules = Path(__file__).resolve().parents[2] / "node" / "node_modules"
    if shutil.which("node") is None or not (modules / "oauth4webapi").is_dir():
        pytest.fail("node and tests/node/node_modules are needed: run `cd tests/node && npm ci`")
    recipe_input = {
        "issuer": d.urls[0],
        "api": API,
        "basic_id": d.client["client_id"],
        "basic_secret": d.client["client_secret"],
        "jwt_id": d.jwt_client["client_id"],
        "jwt_key": d.jwt_key.to_dict(private=True),
    }
    result = subprocess.run(
        ["node", str(Path(__file__).with_name("client_recipes.mjs"))],
        env={**os.environ, "NODE_MODULES": str(modules), "RECIPE_INPUT": json.dumps(recipe_input)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == {
        "openid_client_default": (
            "client is registered for client_secret_basic; it sent client_secret_post"
        ),
        "openid_client_basic": "string",
        "oauth4webapi_basic": "string",
        "oauth4webapi_private_key_jwt": ["string", "string"],
    }


class _ShortLivedPrivateKeyJWT(PrivateKeyJWT):  # type: ignore[misc]
    """docs/clients.md's Authlib recipe: fresh claims (so a fresh jti) for every assertion."""

    def sign(self, auth: Any, token_endpoint: str) -> Any:
        self.claims = {"exp": int(time.time()) + 60}
        return super().sign(auth, token_endpoint)


@pytest.mark.postgres
async def test_authlib_private_key_jwt_recipe(deployment: Deployment) -> None:
    d = deployment
    client = AsyncOAuth2Client(
        d.jwt_client["client_id"],
        d.jwt_key.to_pem(private=True).decode(),
        token_endpoint_auth_method="private_key_jwt",
    )
    client.register_client_auth_method(_ShortLivedPrivateKeyJWT(d.issuer))  # aud: the issuer
    async with client:
        for _ in range(2):  # one client object, one assertion (and jti) per request
            token = await client.fetch_token(
                d.urls[0] + "/token", grant_type="client_credentials", resource=API
            )
            assert token["token_type"] == "Bearer"


@pytest.mark.postgres
async def test_cli_key_revocation_followed_by_both(deployment: Deployment) -> None:
    # Last in this module: a revocation waives the publication lead the tests above check.
    d = deployment
    async with httpx.AsyncClient(timeout=5) as http:
        token = (
            await http.post(
                d.urls[0] + "/token",
                data={"grant_type": "client_credentials", "resource": API},
                auth=(d.client["client_id"], d.client["client_secret"]),
            )
        ).json()["access_token"]
        kid = pyjwt.get_unverified_header(token)["kid"]
        rs = (d.rs["client_id"], d.rs["client_secret"])
        for url in d.urls:
            info = await http.post(url + "/introspect", data={"token": token}, auth=rs)
            assert info.json()["active"] is True
        assert d.cli("keys", "revoke", kid)["revoked"] == kid
        followed: set[int] = set()
        deadline = time.monotonic() + 15  # the servers check every refresh interval (1 s here)
        while time.monotonic() < deadline and len(followed) < 2:
            for i, url in enumerate(d.urls):
                jwks = (await http.get(url + "/.well-known/jwks.json")).json()
                info = await http.post(url + "/introspect", data={"token": token}, auth=rs)
                if kid not in {k["kid"] for k in jwks["keys"]} and info.json() == {"active": False}:
                    followed.add(i)
            await asyncio.sleep(0.2)
        assert followed == {0, 1}, "both servers drop the revoked key"
        for url in d.urls:
            assert await _kid_of(url, d, http) != kid
