"""`authgate dev` end to end: the printed credentials and commands work, the gateway answers as
RFC 6750 says, a second start reuses the data, and stopping leaves no process behind."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from authgate.jose import JWKSet, jwt
from tests.support.dev import AUTHGATE, DevRun, Printed, free_ports, port_free, wait_gone

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")


class First:
    """The first start in a fresh directory, shared by the tests below (in file order)."""

    def __init__(self, run: DevRun, printed: Printed, token: str) -> None:
        self.run, self.printed, self.token = run, printed, token


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dev") / "data"


@pytest.fixture(scope="module")
def first(work: Path) -> Iterator[First]:
    run = DevRun(work, free_ports(3), relative=True)
    try:
        printed = run.wait_ready()
        yield First(run, printed, run.token(printed))
    finally:
        run.stop()


def test_token_from_printed_credentials_calls_through_the_gateway(first: First) -> None:
    run, printed = first.run, first.printed
    response = httpx.get(
        f"{run.api}/orders?x=1", headers={"Authorization": f"Bearer {first.token}"}, trust_env=False
    )
    assert response.status_code == 200, response.text
    echo = response.json()
    assert echo["path"] == "/api/orders"
    assert echo["query"] == "x=1"
    identity = echo["identity"]
    assert identity["x-auth-subject"] == printed.client_id
    assert identity["x-auth-client-id"] == printed.client_id
    assert identity["x-auth-scopes"] == "demo:read"
    assert identity["x-auth-roles"] == "demo"
    assert identity["x-auth-issuer"] == run.issuer
    # The gateway-signed identity token verifies against the JWKS the gateway serves.
    jwks = httpx.get(printed.urls["X-Auth-Token JWKS"], trust_env=False).json()
    claims = jwt.decode(
        identity["x-auth-token"],
        JWKSet.from_dict(jwks),
        algorithms=["ES256"],
        issuer=run.gateway_url,
        audience=f"http://127.0.0.1:{run.upstream}",
    )
    assert claims["sub"] == printed.client_id
    assert claims["scope"] == "demo:read"


def test_spoofed_identity_headers_never_reach_the_upstream(first: First) -> None:
    response = httpx.get(
        f"{first.run.api}/x",
        headers={"Authorization": f"Bearer {first.token}", "X-Auth-Subject": "admin"},
        trust_env=False,
    )
    assert response.json()["identity"]["x-auth-subject"] == first.printed.client_id


def test_without_token_401_with_challenge(first: First) -> None:
    response = httpx.get(f"{first.run.api}/hello", trust_env=False)
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'realm="authgate-dev"' in challenge
    metadata_url = f"{first.run.gateway_url}/.well-known/oauth-protected-resource/api"
    assert f'resource_metadata="{metadata_url}"' in challenge
    metadata = httpx.get(metadata_url, trust_env=False).json()
    assert metadata["resource"] == first.run.api
    assert metadata["authorization_servers"] == [first.run.issuer]


def test_write_needs_the_write_scope(first: First) -> None:
    headers = {"Authorization": f"Bearer {first.token}"}
    response = httpx.post(f"{first.run.api}/hello", headers=headers, trust_env=False)
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert 'scope="demo:write"' in response.headers["www-authenticate"]
    writer = first.run.token(first.printed, scope="demo:read demo:write")
    response = httpx.post(
        f"{first.run.api}/hello",
        headers={"Authorization": f"Bearer {writer}"},
        content=b"{}",
        trust_env=False,
    )
    assert response.status_code == 200
    assert response.json()["method"] == "POST"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_printed_commands_work_in_a_shell(first: First) -> None:
    script = f"set -e\n{first.printed.token_command}\n{first.printed.call_command}\n"
    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    echo = json.loads(result.stdout)
    assert echo["identity"]["x-auth-client-id"] == first.printed.client_id


def test_printed_urls_answer(first: First) -> None:
    urls = first.printed.urls
    assert set(urls) == {
        "issuer metadata",
        "issuer JWKS",
        "resource metadata",
        "gateway readiness",
        "gateway metrics",
        "X-Auth-Token JWKS",
    }
    for url in urls.values():
        assert httpx.get(url, trust_env=False).status_code == 200, url
    metadata = httpx.get(urls["issuer metadata"], trust_env=False).json()
    assert metadata["issuer"] == first.run.issuer
    metrics = httpx.get(urls["gateway metrics"], trust_env=False).text
    assert "authgate_decisions_total" in metrics


def test_secrets_stay_private(first: First) -> None:
    for name in ("demo-credentials.json", "authgate.secret"):
        assert (first.run.directory / name).stat().st_mode & 0o077 == 0, name
    assert first.run.directory.stat().st_mode & 0o077 == 0
    # The directory keeps itself out of git when created inside a repository.
    assert (first.run.directory / ".gitignore").read_text().splitlines()[-1] == "*"


def test_sigterm_stops_every_child(first: First) -> None:
    run = first.run
    children = run.children()
    assert len(children) == 3  # server, upstream, gateway
    assert run.stop(signal.SIGTERM) == 0
    assert wait_gone(children) == []
    for port in (run.server, run.gateway, run.upstream):
        assert port_free(port), port


def test_second_start_on_other_ports_reuses_the_data(first: First, work: Path) -> None:
    first.run.stop()
    again = DevRun(work, free_ports(3))
    try:
        printed = again.wait_ready()
        assert printed.password == first.printed.password
        config = str(work / "server.toml")
        users = _admin_json("user", "list", "--config", config)
        assert [u["username"] for u in users] == ["demo"]
        # The gateway moved: its /api is another resource, with its own demo client.
        apis = {a["identifier"] for a in _admin_json("api", "list", "--config", config)}
        assert apis == {first.run.api, again.api}
        assert printed.client_id != first.printed.client_id
        # The server's signing keys were kept: the first run's token verifies with the JWKS of
        # the new server (whose issuer URL has changed with its port).
        jwks = httpx.get(printed.urls["issuer JWKS"], trust_env=False).json()
        claims = jwt.decode(
            first.token,
            JWKSet.from_dict(jwks),
            algorithms=["RS256"],
            issuer=first.run.issuer,
            audience=first.run.api,
        )
        assert claims["client_id"] == first.printed.client_id
        token = again.token(printed)
        response = httpx.get(
            f"{again.api}/x", headers={"Authorization": f"Bearer {token}"}, trust_env=False
        )
        assert response.status_code == 200
    finally:
        again.stop()


def test_same_ports_reuse_client_and_secret(work: Path, first: First) -> None:
    first.run.stop()
    ports = [first.run.server, first.run.gateway, first.run.upstream]
    again = DevRun(work, ports)
    try:
        printed = again.wait_ready()
        assert printed.client_id == first.printed.client_id
        assert printed.client_secret == first.printed.client_secret
        response = httpx.get(
            f"{again.api}/x",
            headers={"Authorization": f"Bearer {again.token(printed)}"},
            trust_env=False,
        )
        assert response.status_code == 200
        clients = _admin_json("client", "list", "--config", str(work / "server.toml"))
        assert sum(c["client_id"] == printed.client_id for c in clients) == 1
    finally:
        again.stop()


def test_lost_credentials_file_gives_new_secrets_not_new_clients(work: Path, first: First) -> None:
    first.run.stop()
    (work / "demo-credentials.json").write_text("{not json")
    again = DevRun(work, [first.run.server, first.run.gateway, first.run.upstream])
    try:
        printed = again.wait_ready()
        assert printed.client_id == first.printed.client_id
        assert printed.client_secret != first.printed.client_secret
        assert printed.password != first.printed.password
        again.token(printed)  # the new secret works
        config = str(work / "server.toml")
        assert len(_admin_json("user", "list", "--config", config)) == 1
        assert len(_admin_json("client", "list", "--config", config)) == 2  # one per demo API
        # A killed `authgate dev` takes its children with it (PR_SET_PDEATHSIG).
        children = again.children()
        assert len(children) == 3
        again.stop(signal.SIGKILL)
        assert wait_gone(children) == []
    finally:
        again.stop()


def test_port_in_use_is_refused_clearly(tmp_path: Path) -> None:
    server, gateway, upstream = free_ports(3)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", gateway))
        busy.listen()
        result = subprocess.run(
            [str(AUTHGATE), "dev", "--dir", str(tmp_path / "d"), "--port-server", str(server),
             "--port-gateway", str(gateway), "--port-upstream", str(upstream)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert result.returncode != 0
    assert f"port {gateway} on 127.0.0.1 is already in use" in result.stderr
    assert "--port-gateway" in result.stderr
    assert not (tmp_path / "d").exists()  # nothing was started or written


def test_a_directory_of_other_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "server.toml").write_text("mine")
    result = subprocess.run(
        [str(AUTHGATE), "dev", "--dir", str(tmp_path), *_ports_args()],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "was not made by `authgate dev`" in result.stderr
    assert (tmp_path / "server.toml").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["server.toml"]


def _ports_args() -> list[str]:
    server, gateway, upstream = free_ports(3)
    return ["--port-server", str(server), "--port-gateway", str(gateway),
            "--port-upstream", str(upstream)]  # fmt: skip


def _admin_json(*args: str) -> list[dict[str, object]]:
    out = subprocess.run(
        [str(AUTHGATE), *args, "--json"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return list(json.loads(out))
