"""The official MCP SDK's OAuth client against an MCP server behind `authgate gateway`: the MCP
server (the SDK's, streamable HTTP) has no auth of its own; the gateway answers the 401 with
`scope` and `resource_metadata` (RFC 6750 §3, RFC 9728 §5.1), serves the RFC 9728 document, and
proxies what it lets through. The SDK discovers `authgate serve` from there, registers itself
(open registration), signs in (the pages' forms over HTTP), calls tools through the gateway, and
steps up on the gateway's 403. A tool's progress notification reaches the client while the tool
is still running: the gateway streams the server-sent events instead of buffering them."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from mcp.shared.auth import OAuthToken

from tests.support.e2e import LOOPBACK_CALLBACK
from tests.support.e2e_served import Served
from tests.support.gateway import Gateway
from tests.support.mcp_client import (
    MCP_HEADERS,
    call_whoami,
    challenge_params,
    claims_of,
    cli,
    create_apis,
    post_initialize,
    registration_config,
    sdk_client,
    token_for,
)
from tests.support.mcp_servers import RELEASES, SCOPES, MemoryStorage, plain_app, running_mcp
from tests.support.server_harness import free_port


@dataclass(frozen=True)
class Setup:
    served: Served
    resource: str  # the gateway's /mcp: what clients connect to, the tokens' audience
    gateway: Gateway


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    workdir = tmp_path_factory.mktemp("mcp-gateway")
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    served = Served.start(
        f"sqlite:///{workdir / 'authgate.db'}",
        workdir,
        issuer_path="/tenant1",
        extra_config=registration_config("open", [resource], SCOPES),
    )
    try:
        create_apis(served, [resource], SCOPES)
        issuer = served.config.issuer
        with running_mcp(plain_app, issuer) as upstream:
            config = f"""
realm = "mcp"
resource = "{resource}"

[[issuers]]
issuer = "{issuer}"
audiences = ["{resource}"]

[[routes]]
path = "/mcp"
upstream = "{upstream.resource.removesuffix("/mcp")}"
scopes = {list(SCOPES)!r}
""".replace("'", '"')
            gateway = Gateway(config, workdir, listen=f"127.0.0.1:{port}")
            try:
                yield Setup(served, resource, gateway)
            finally:
                gateway.stop()
    finally:
        served.stop()


def test_the_gateway_challenges_and_describes_the_mcp_server(setup: Setup) -> None:
    refused = post_initialize(setup.resource, MCP_HEADERS)
    assert refused.status_code == 401
    params = challenge_params(refused)
    assert "error" not in params  # no credentials sent (RFC 6750 §3.1)
    assert set(params["scope"].split()) == set(SCOPES)
    metadata_url = params["resource_metadata"]
    origin = setup.resource.removesuffix("/mcp")
    assert metadata_url == origin + "/.well-known/oauth-protected-resource/mcp"
    document = httpx.get(metadata_url).json()
    assert document["resource"] == setup.resource
    assert document["authorization_servers"] == [setup.served.config.issuer]


async def test_the_sdk_signs_in_through_the_gateway_and_streams(setup: Setup) -> None:
    storage = MemoryStorage(client=None)
    sign_ins: list[str] = []
    key = secrets.token_hex(8)
    RELEASES[key] = threading.Event()
    seen: list[str | None] = []

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message)
        RELEASES[key].set()  # the tool may answer now: its first event got through

    try:
        async with sdk_client(
            setup.served, setup.resource, None, storage, sign_ins=sign_ins
        ) as client:
            whoami = await client.call_tool("whoami", {})
            streamed = await client.call_tool("stream", {"key": key}, progress_callback=progress)
    finally:
        del RELEASES[key]
    assert not whoami.is_error, whoami
    assert not streamed.is_error, streamed
    assert seen == ["first"]
    assert streamed.content[0].text == "streamed"  # type: ignore[union-attr]
    # The SDK found the issuer through the gateway's challenge, registered, signed in once.
    assert storage.client is not None
    assert len(sign_ins) == 1
    request = parse_qs(urlsplit(sign_ins[0]).query)
    assert sign_ins[0].startswith(setup.served.config.issuer + "/authorize?")
    assert request["resource"] == [setup.resource]
    assert request["client_id"] == [storage.client.client_id]
    assert storage.tokens is not None
    claims = claims_of(storage.tokens.access_token)
    assert claims["aud"] == setup.resource
    assert claims["client_id"] == storage.client.client_id


async def test_the_gateway_refuses_a_token_for_another_resource_and_steps_up(
    setup: Setup,
) -> None:
    storage = MemoryStorage(client=None)
    await call_whoami(setup.served, setup.resource, None, storage)  # registers, signs in
    assert storage.client is not None
    client_id = storage.client.client_id
    assert client_id
    # A token whose audience is another API of the same issuer: 401 invalid_token.
    other = "https://other.example.test/mcp"
    create_apis(setup.served, [other], SCOPES)
    cli_client = await asyncio.to_thread(_public_client, setup.served, other)
    foreign = token_for(setup.served, cli_client, other, " ".join(SCOPES))["access_token"]
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {foreign}"}
    refused = await asyncio.to_thread(post_initialize, setup.resource, headers)
    assert refused.status_code == 401
    assert challenge_params(refused)["error"] == "invalid_token"
    # A narrow token for this resource: 403 insufficient_scope, then the SDK steps up.
    narrow = token_for(setup.served, client_id, setup.resource, "mcp:tools")
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {narrow['access_token']}"}
    forbidden = await asyncio.to_thread(post_initialize, setup.resource, headers)
    assert forbidden.status_code == 403
    params = challenge_params(forbidden)
    assert params["error"] == "insufficient_scope"
    assert set(params["scope"].split()) == set(SCOPES)
    storage.tokens = OAuthToken(access_token=narrow["access_token"], scope=narrow.get("scope"))
    _, sign_ins = await call_whoami(setup.served, setup.resource, None, storage)
    assert len(sign_ins) == 1
    assert set(parse_qs(urlsplit(sign_ins[0]).query)["scope"][0].split()) >= set(SCOPES)
    assert storage.tokens is not None
    assert set(str(claims_of(storage.tokens.access_token)["scope"]).split()) >= set(SCOPES)


def _public_client(served: Served, resource: str) -> str:
    """A public client of `resource` made with the CLI (the token for another audience)."""
    created = cli(
        served,
        "client", "create", "--name", "other", "--auth-method", "none",
        "--grant", "authorization_code", "--redirect-uri", LOOPBACK_CALLBACK,
        *(arg for scope in SCOPES for arg in ("--scope", f"{resource}#{scope}")),
    )  # fmt: skip
    client_id: str = created["client_id"]
    return client_id
