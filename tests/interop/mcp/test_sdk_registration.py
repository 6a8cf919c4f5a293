"""The official MCP SDK's OAuth client registering itself: `authgate serve` with dynamic client
registration (RFC 7591), once `[registration] mode = "open"` on SQLite with the sign-in played over
HTTP, once `mode = "token"` on PostgreSQL with the sign-in in headless Chromium. The SDK finds
`registration_endpoint` in the issuer's metadata, registers a public native client with a loopback
redirect URI, then runs the code flow with PKCE and `resource`, calls a tool, and steps up on
`insufficient_scope`; its token is refused by the other MCP server.

The SDK (mcp 2.x) has no setting for an initial access token (RFC 7591 §3): `OAuthClientProvider`
sends its registration without `Authorization`. A client of a `token`-mode server adds the header
to that one request itself, here with a request hook on the HTTP client the SDK uses."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from mcp.client.auth import OAuthRegistrationError
from mcp.shared.auth import OAuthToken

from tests.support.browser import client_site, sign_in_and_approve
from tests.support.e2e_served import Served
from tests.support.mcp_client import (
    MCP_HEADERS,
    call_whoami,
    challenge_params,
    claims_of,
    cli,
    create_apis,
    post_initialize,
    registration_config,
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
from tests.support.server_harness import free_port


def registration(mode: str, ports: list[int]) -> str:
    return registration_config(mode, [f"http://127.0.0.1:{port}/mcp" for port in ports], SCOPES)


@pytest.fixture(scope="module")
def ports() -> list[int]:
    """The MCP servers' ports, known before the authorization server starts."""
    return [free_port(), free_port()]


@pytest.fixture(scope="module")
def open_served(tmp_path_factory: pytest.TempPathFactory, ports: list[int]) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("mcp-dcr-open")
    server = Served.start(
        f"sqlite:///{workdir / 'authgate.db'}",
        workdir,
        issuer_path="/tenant1",
        extra_config=registration("open", ports),
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def open_mcp(open_served: Served, ports: list[int]) -> Iterator[dict[str, McpServer]]:
    issuer = open_served.config.issuer
    with (
        running_mcp(integration_app, issuer, ports[0]) as integration,
        running_mcp(middleware_app, issuer, ports[1]) as middleware,
    ):
        servers = {"integration": integration, "middleware": middleware}
        create_apis(open_served, [s.resource for s in servers.values()], SCOPES)
        yield servers


def registered_client(served: Served, client_id: str) -> dict[str, Any]:
    clients: list[dict[str, Any]] = cli(served, "client", "list")  # type: ignore[assignment]
    return next(client for client in clients if client["client_id"] == client_id)


async def test_the_sdk_registers_itself_in_open_mode(
    open_served: Served, open_mcp: dict[str, McpServer]
) -> None:
    server, other = open_mcp["integration"], open_mcp["middleware"]
    storage = MemoryStorage(client=None)
    answer, sign_ins = await call_whoami(open_served, server, None, storage)
    # The SDK registered at the advertised endpoint and got a public client of its own.
    assert storage.client is not None
    client_id = storage.client.client_id
    assert client_id
    assert storage.client.token_endpoint_auth_method == "none"
    assert storage.client.client_secret is None
    record = registered_client(open_served, client_id)
    assert record["origin"] == "registration"
    # Then the code flow with PKCE and `resource`, as this client.
    assert len(sign_ins) == 1
    request = parse_qs(urlsplit(sign_ins[0]).query)
    assert request["client_id"] == [client_id]
    assert request["resource"] == [server.resource]
    assert request["code_challenge_method"] == ["S256"]
    assert storage.tokens is not None
    claims = claims_of(storage.tokens.access_token)
    assert claims["aud"] == server.resource
    assert claims["client_id"] == client_id
    assert answer["client_id"] == client_id
    assert set(answer["scopes"]) >= set(SCOPES)
    # Its token is for this MCP server only: the other refuses it (no passthrough).
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {storage.tokens.access_token}"}
    refused = await asyncio.to_thread(post_initialize, other.resource, headers)
    assert refused.status_code == 401, refused.text
    assert challenge_params(refused)["error"] == "invalid_token"


async def test_a_registered_client_steps_up_on_insufficient_scope(
    open_served: Served, open_mcp: dict[str, McpServer]
) -> None:
    server = open_mcp["middleware"]
    storage = MemoryStorage(client=None)
    await call_whoami(open_served, server, None, storage)  # registers
    assert storage.client is not None
    assert storage.client.client_id
    client_id = storage.client.client_id
    narrow = token_for(open_served, client_id, server.resource, "mcp:tools")
    refused = await asyncio.to_thread(
        post_initialize,
        server.resource,
        {**MCP_HEADERS, "Authorization": f"Bearer {narrow['access_token']}"},
    )
    assert refused.status_code == 403
    assert challenge_params(refused)["error"] == "insufficient_scope"
    # The SDK holds the registered client and the narrow token: a 403, one more sign-in for the
    # wider scope, no second registration.
    storage.tokens = OAuthToken(access_token=narrow["access_token"], scope=narrow.get("scope"))
    _, sign_ins = await call_whoami(open_served, server, None, storage)
    assert len(sign_ins) == 1
    assert parse_qs(urlsplit(sign_ins[0]).query)["client_id"] == [client_id]
    assert set(parse_qs(urlsplit(sign_ins[0]).query)["scope"][0].split()) >= set(SCOPES)
    assert storage.client.client_id == client_id
    assert storage.tokens is not None
    assert storage.tokens.access_token != narrow["access_token"]
    assert set(str(claims_of(storage.tokens.access_token)["scope"]).split()) >= set(SCOPES)


@pytest.fixture
def token_served(tmp_path: Path) -> Iterator[tuple[Served, int]]:
    """`mode = "token"` on a fresh PostgreSQL database, and the port of its one MCP server."""
    port = free_port()
    served = Served.start(
        None, tmp_path, issuer_path="/tenant1", extra_config=registration("token", [port])
    )
    try:
        yield served, port
    finally:
        served.stop()


@pytest.mark.postgres
@pytest.mark.browser
async def test_token_mode_on_postgresql_signed_in_with_chromium(
    token_served: tuple[Served, int], browser: Any
) -> None:
    served, port = token_served
    with (
        running_mcp(integration_app, served.config.issuer, port) as server,
        client_site() as site,
    ):
        create_apis(served, [server.resource], SCOPES)
        redirect_uri = site.url("/callback")
        registration_endpoint = served.config.issuer + "/register"

        # Without the initial access token the SDK's registration is refused (401).
        refused = pytest.RaisesExc(OAuthRegistrationError, match="401.*invalid_token")
        with pytest.RaisesGroup(refused, flatten_subgroups=True):
            await call_whoami(
                served, server, None, MemoryStorage(client=None), redirect_uri=redirect_uri
            )

        initial = cli(served, "registration-token", "create", "--max-uses", "1")

        async def with_initial_token(request: httpx2.Request) -> None:
            if request.method == "POST" and str(request.url) == registration_endpoint:
                request.headers["Authorization"] = f"Bearer {initial['token']}"

        def user(url: str) -> str:
            return sign_in_and_approve(browser, url, site)

        storage = MemoryStorage(client=None)
        answer, sign_ins = await call_whoami(
            served,
            server,
            None,
            storage,
            sign_in=user,
            redirect_uri=redirect_uri,
            http_options={"event_hooks": {"request": [with_initial_token]}},
        )
        assert storage.client is not None
        assert storage.client.client_id
        assert [str(uri) for uri in storage.client.redirect_uris or []] == [redirect_uri]
        assert len(sign_ins) == 1
        assert parse_qs(urlsplit(sign_ins[0]).query)["resource"] == [server.resource]
        assert answer["client_id"] == storage.client.client_id
        assert storage.tokens is not None
        assert claims_of(storage.tokens.access_token)["aud"] == server.resource
        used: list[dict[str, Any]] = cli(served, "registration-token", "list")  # type: ignore[assignment]
        assert [token["uses"] for token in used] == [1]
