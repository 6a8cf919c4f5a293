"""The official MCP SDK's OAuth client (`OAuthClientProvider`, mcp 2.x) against a real `authgate
serve` whose issuer has a path, and two MCP servers built with the SDK: one protected by
`authgate.middleware.mcp` (the SDK's auth over authgate's verifier), one by the gate's ASGI
middleware. The client is pre-registered with the CLI; the user's sign-in and consent are played
by an HTTP client following the pages' forms.

What is shown: discovery from the 401 (RFC 9728 document, then the issuer's metadata at the
path-aware well-known URL), the code flow with PKCE and `resource` (RFC 8707), a tool call with
the token, the token's audience being the MCP server, a token for one server refused by the other
(no passthrough), and a step-up on `insufficient_scope`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from mcp.shared.auth import OAuthToken
from starlette.types import ASGIApp

from tests.support.e2e import LOOPBACK_CALLBACK, pkce_pair
from tests.support.e2e_served import Served
from tests.support.mcp_client import (
    MCP_HEADERS,
    call_whoami,
    challenge_params,
    claims_of,
    cli,
    create_apis,
    post_initialize,
    token_for,
)
from tests.support.mcp_servers import (
    SCOPES,
    McpServer,
    MemoryStorage,
    integration_app,
    middleware_app,
    running_mcp,
)

BUILDERS: dict[str, Callable[[str, str], ASGIApp]] = {
    "integration": integration_app,
    "middleware": middleware_app,
}


@pytest.fixture(scope="module")
def authgate_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("mcp-serve")
    server = Served.start(f"sqlite:///{workdir / 'authgate.db'}", workdir, issuer_path="/tenant1")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def mcp_servers(authgate_served: Served) -> Iterator[dict[str, McpServer]]:
    issuer = authgate_served.config.issuer
    with (
        running_mcp(integration_app, issuer) as integration,
        running_mcp(middleware_app, issuer) as middleware,
    ):
        yield {"integration": integration, "middleware": middleware}


@pytest.fixture(scope="module")
def client_id(authgate_served: Served, mcp_servers: dict[str, McpServer]) -> str:
    """Both MCP servers registered as APIs, and one public client for them, with the CLI."""
    resources = [server.resource for server in mcp_servers.values()]
    create_apis(authgate_served, resources, SCOPES)
    scope_args = [
        arg
        for resource in resources
        for scope in SCOPES
        for arg in ("--scope", f"{resource}#{scope}")
    ]
    created = cli(
        authgate_served,
        "client", "create", "--name", "MCP client", "--auth-method", "none",
        "--grant", "authorization_code", "--grant", "refresh_token",
        "--redirect-uri", LOOPBACK_CALLBACK, *scope_args,
    )  # fmt: skip
    client_id: str = created["client_id"]
    return client_id


@pytest.mark.parametrize("kind", list(BUILDERS))
async def test_discovery_code_flow_with_resource_and_a_tool_call(
    kind: str, authgate_served: Served, mcp_servers: dict[str, McpServer], client_id: str
) -> None:
    server = mcp_servers[kind]
    storage = MemoryStorage(client=None)
    answer, sign_ins = await call_whoami(authgate_served, server, client_id, storage)
    assert len(sign_ins) == 1
    request = parse_qs(urlsplit(sign_ins[0]).query)
    # Where the SDK went: the issuer's authorization endpoint, below its path.
    assert sign_ins[0].startswith(authgate_served.config.issuer + "/authorize?")
    assert request["resource"] == [server.resource]  # RFC 8707
    assert request["code_challenge_method"] == ["S256"]
    # The 401's `scope`, and offline_access since the issuer offers it (SEP-2207).
    assert set(request["scope"][0].split()) == {*SCOPES, "offline_access"}
    assert storage.tokens is not None
    claims = claims_of(storage.tokens.access_token)
    assert claims["aud"] == server.resource  # the token is for this MCP server only
    assert claims["iss"] == authgate_served.config.issuer
    assert claims["client_id"] == client_id
    if kind == "integration":  # the SDK's auth context, filled by authgate's verifier
        assert answer["client_id"] == client_id
        assert answer["resource"] == server.resource
        assert set(answer["scopes"]) >= set(SCOPES)
        assert answer["subject"] == claims["sub"]


async def test_a_token_for_one_mcp_server_is_refused_by_the_other(
    authgate_served: Served, mcp_servers: dict[str, McpServer], client_id: str
) -> None:
    scope = " ".join(SCOPES)
    for kind, other in (("integration", "middleware"), ("middleware", "integration")):
        own, foreign = mcp_servers[kind], mcp_servers[other]
        token = token_for(authgate_served, client_id, own.resource, scope)["access_token"]
        assert claims_of(token)["aud"] == own.resource
        headers = {**MCP_HEADERS, "Authorization": f"Bearer {token}"}
        accepted = await asyncio.to_thread(post_initialize, own.resource, headers)
        assert accepted.status_code == 200, (kind, accepted.text)
        refused = await asyncio.to_thread(post_initialize, foreign.resource, headers)
        assert refused.status_code == 401, (kind, refused.text)
        params = challenge_params(refused)
        assert params["error"] == "invalid_token"
        origin = foreign.resource.removesuffix("/mcp")
        assert params["resource_metadata"] == origin + "/.well-known/oauth-protected-resource/mcp"


def test_a_token_cannot_be_asked_for_two_mcp_servers(
    authgate_served: Served, mcp_servers: dict[str, McpServer], client_id: str
) -> None:
    """RFC 8707 §2: the /authorize and /token `resource` must agree; one audience per token."""
    a, b = mcp_servers["integration"].resource, mcp_servers["middleware"].resource
    verifier, code_challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": LOOPBACK_CALLBACK,
        "scope": "mcp:tools",
        "state": "s",
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
        "resource": a,
    }
    issuer = authgate_served.config.issuer
    location = authgate_served.sign_in_and_approve(f"{issuer}/authorize?{urlencode(query)}")
    code = parse_qs(urlsplit(location).query)["code"][0]
    switched = httpx.post(
        issuer + "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": LOOPBACK_CALLBACK,
            "code_verifier": verifier,
            "client_id": client_id,
            "resource": b,
        },
    )
    assert switched.status_code == 400
    assert switched.json()["error"] == "invalid_target"


@pytest.mark.parametrize("kind", list(BUILDERS))
async def test_a_step_up_on_insufficient_scope(
    kind: str, authgate_served: Served, mcp_servers: dict[str, McpServer], client_id: str
) -> None:
    server = mcp_servers[kind]
    narrow = token_for(authgate_served, client_id, server.resource, "mcp:tools")
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {narrow['access_token']}"}
    refused = await asyncio.to_thread(post_initialize, server.resource, headers)
    assert refused.status_code == 403
    params = challenge_params(refused)
    assert params["error"] == "insufficient_scope"
    assert set(params["scope"].split()) == set(SCOPES)
    assert params["resource_metadata"].endswith("/.well-known/oauth-protected-resource/mcp")
    # The SDK client holds the narrow token: its first call gets the 403, it asks the user for
    # the wider scope (one more sign-in), then calls again with the new token.
    storage = MemoryStorage(
        client=None,
        tokens=OAuthToken(access_token=narrow["access_token"], scope=narrow.get("scope")),
    )
    _, sign_ins = await call_whoami(authgate_served, server, client_id, storage)
    assert len(sign_ins) == 1
    asked = set(parse_qs(urlsplit(sign_ins[0]).query)["scope"][0].split())
    assert asked >= set(SCOPES)
    assert storage.tokens is not None
    assert storage.tokens.access_token != narrow["access_token"]
    assert set(str(claims_of(storage.tokens.access_token)["scope"]).split()) >= set(SCOPES)


def test_the_served_metadata_urls(authgate_served: Served) -> None:
    """What the SDK client fetched: the issuer's metadata at the path-aware URLs only."""
    root = authgate_served.url
    for path in (
        "/.well-known/oauth-authorization-server/tenant1",
        "/.well-known/openid-configuration/tenant1",
        "/tenant1/.well-known/openid-configuration",
    ):
        assert httpx.get(root + path).json()["issuer"] == root + "/tenant1"
    assert httpx.get(root + "/.well-known/oauth-authorization-server").status_code == 404
