"""authgate's verifier behind the MCP SDK's server auth: the `AccessToken` mapping, the refusal of
tokens for another resource (RFC 8707, no passthrough), and authgate's answers in place of the
SDK's (RFC 6750 §3 `scope`, RFC 9728 §5.1 `resource_metadata`, 503 when keys are unavailable)."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import MCPServer

from authgate.middleware.mcp import McpAuth, access_token_for
from authgate.verifier import Principal
from tests.support.gate import FakeIssuer

ORIGIN = "http://127.0.0.1:8000"  # the SDK admits loopback Host headers with a port
RESOURCE = ORIGIN + "/mcp"
METADATA = ORIGIN + "/.well-known/oauth-protected-resource/mcp"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@contextlib.asynccontextmanager
async def serving(test_issuer: FakeIssuer) -> AsyncIterator[httpx.AsyncClient]:
    """The protected MCP server in process (its lifespan in the caller's task, as anyio needs)."""
    auth = McpAuth(issuer=test_issuer.issuer, resource=RESOURCE, scopes=["mcp:tools"])
    server = MCPServer("orders", token_verifier=auth.token_verifier, auth=auth.settings)

    @server.tool()
    def whoami() -> str:
        token = get_access_token()
        return token.model_dump_json() if token else "none"

    inner = server.streamable_http_app(json_response=True, stateless_http=True)
    app = auth.protect(inner)
    async with (
        inner.router.lifespan_context(inner),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN) as http,
    ):
        yield http
    await auth.aclose()


def challenge(response: httpx.Response) -> dict[str, str]:
    value = response.headers["www-authenticate"]
    assert value.startswith("Bearer ")
    return dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', value))


def mcp_token(issuer: FakeIssuer, **claims: Any) -> dict[str, str]:
    claims.setdefault("aud", RESOURCE)
    claims.setdefault("scope", "mcp:tools")
    return {**HEADERS, "Authorization": f"Bearer {issuer.token(**claims)}"}


async def test_a_token_for_this_server_reaches_the_sdk(test_issuer: FakeIssuer) -> None:
    async with serving(test_issuer) as client:
        response = await client.post("/mcp", json=INITIALIZE, headers=mcp_token(test_issuer))
        assert response.status_code == 200, response.text
        assert response.json()["result"]["serverInfo"]["name"] == "orders"


async def test_no_token_is_a_401_naming_the_scopes_and_the_metadata(
    test_issuer: FakeIssuer,
) -> None:
    async with serving(test_issuer) as client:
        issuer = test_issuer
        response = await client.post("/mcp", json=INITIALIZE, headers=HEADERS)
        assert response.status_code == 401
        # RFC 6750 §3.1: no error code when no credential was sent.
        assert challenge(response) == {
            "realm": "mcp",
            "scope": "mcp:tools",
            "resource_metadata": METADATA,
        }
        assert response.headers["cache-control"] == "no-store"
        assert response.json()["error"] == "invalid_token"
        document = (await client.get("/.well-known/oauth-protected-resource/mcp")).json()
        assert document["resource"] == RESOURCE
        assert document["scopes_supported"] == ["mcp:tools"]
        assert [s.rstrip("/") for s in document["authorization_servers"]] == [
            issuer.issuer.rstrip("/")
        ]


async def test_a_token_for_another_resource_is_refused(test_issuer: FakeIssuer) -> None:
    async with serving(test_issuer) as client:
        for audience in (
            "http://127.0.0.1/other-mcp",
            ["http://127.0.0.1/other-mcp"],
            RESOURCE + "/",
        ):
            headers = mcp_token(test_issuer, aud=audience)
            response = await client.post("/mcp", json=INITIALIZE, headers=headers)
            assert response.status_code == 401, audience
            params = challenge(response)
            assert params["error"] == "invalid_token"
            assert params["scope"] == "mcp:tools"
            assert params["resource_metadata"] == METADATA


async def test_a_missing_scope_is_a_403_for_step_up(test_issuer: FakeIssuer) -> None:
    async with serving(test_issuer) as client:
        headers = mcp_token(test_issuer, scope="profile")
        response = await client.post("/mcp", json=INITIALIZE, headers=headers)
        assert response.status_code == 403
        params = challenge(response)
        assert params["error"] == "insufficient_scope"
        assert params["scope"] == "mcp:tools"
        assert params["resource_metadata"] == METADATA
        assert response.json()["scope"] == "mcp:tools"


async def test_expired_and_forged_tokens_are_401_invalid_token(test_issuer: FakeIssuer) -> None:
    async with serving(test_issuer) as client:
        for headers, description in (
            (mcp_token(test_issuer, exp=1), "the access token has expired"),
            ({**HEADERS, "Authorization": "Bearer not.a.jwt"}, "the access token is malformed"),
        ):
            response = await client.post("/mcp", json=INITIALIZE, headers=headers)
            assert response.status_code == 401
            assert challenge(response)["error"] == "invalid_token"
            assert challenge(response)["error_description"] == description  # authgate's words
            assert json.loads(response.content)["error_description"] == description


async def test_unavailable_keys_are_a_503_not_a_401(test_issuer: FakeIssuer) -> None:
    async with serving(test_issuer) as client:
        test_issuer.server.set_json("/jwks", {}, status=500)
        response = await client.post("/mcp", json=INITIALIZE, headers=mcp_token(test_issuer))
        assert response.status_code == 503
        assert response.headers["retry-after"]
        assert response.json()["error"] == "temporarily_unavailable"


def test_the_access_token_carries_what_the_sdk_reads() -> None:
    principal = Principal(
        subject="alice",
        client_id="client-1",
        scopes=frozenset({"b", "a"}),
        roles=frozenset(),
        issuer="https://auth.example.test",
        claims={"aud": [RESOURCE, "https://api.example.test"], "iss": "https://auth.example.test"},
        expires_at=1_900_000_000.0,
    )
    access = access_token_for(principal, "tok", RESOURCE)
    assert access is not None
    assert (access.client_id, access.scopes, access.expires_at) == (
        "client-1",
        ["a", "b"],
        1_900_000_000,
    )
    assert (access.resource, access.subject) == (RESOURCE, "alice")
    assert access.claims is not None
    assert access.claims["iss"] == "https://auth.example.test"
    assert access_token_for(principal, "tok", "http://127.0.0.1/other") is None
    nameless = Principal(None, None, frozenset(), frozenset(), None, claims={"aud": RESOURCE})
    assert access_token_for(nameless, "tok", RESOURCE) is None  # no client: nothing to bind to
