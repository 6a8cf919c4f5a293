"""The official MCP SDK's OAuth client identified by the URL of its client ID metadata document
(draft-ietf-oauth-client-id-metadata-document): `authgate serve` with `[client_metadata] policy =
"any"`, its outbound fetcher trusting a test CA and allowed to reach loopback, and the document
served over https on 127.0.0.1 by this test. Dynamic registration is open too, so the SDK has the
choice: it finds `client_id_metadata_document_supported: true` in the issuer's metadata and uses
its URL as `client_id` without registering. Then the code flow with PKCE and `resource`, a tool
call, the token refused by the other MCP server, a step-up on `insufficient_scope`, and the client
in `authgate client list` with origin `metadata_document`. On SQLite with the sign-in played over
HTTP, and once on PostgreSQL with the sign-in in headless Chromium."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from mcp.shared.auth import OAuthToken

from tests.support.browser import client_site, sign_in_and_approve
from tests.support.e2e import LOOPBACK_CALLBACK
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
from tests.support.tls import HttpsOrigin, TestCA, json_route

DOCUMENT_PATH = "/oauth/mcp-client.json"


@pytest.fixture(scope="module")
def ports() -> list[int]:
    """The MCP servers' ports, known before the authorization server starts."""
    return [free_port(), free_port()]


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("mcp-cimd-ca"))


@pytest.fixture(scope="module")
def origin(ca: TestCA, ports: list[int]) -> Iterator[HttpsOrigin]:
    """The client's web site: its metadata document at `DOCUMENT_PATH`, over https with a
    certificate for 127.0.0.1 from the test CA. Its `scope` names each MCP server's scopes as
    API#SCOPE (both servers define the same names)."""
    with HttpsOrigin(ca, ["127.0.0.1"]) as site:
        url = f"https://127.0.0.1:{site.port}{DOCUMENT_PATH}"
        site.routes[DOCUMENT_PATH] = json_route(
            {
                "client_id": url,
                "client_name": "mcp interop (CIMD)",
                "redirect_uris": [LOOPBACK_CALLBACK],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
                "scope": " ".join(
                    f"http://127.0.0.1:{port}/mcp#{scope}" for port in ports for scope in SCOPES
                ),
            }
        )
        yield site


@pytest.fixture(scope="module")
def client_url(origin: HttpsOrigin) -> str:
    return f"https://127.0.0.1:{origin.port}{DOCUMENT_PATH}"


def metadata_config(ca: TestCA) -> str:
    """URL client ids from any host, fetched over TLS that chains to `ca`; loopback reachable."""
    return f"""
[client_metadata]
policy = "any"
[fetch]
allow_loopback = true
ca_file = "{ca.ca_file}"
"""


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, ports: list[int], ca: TestCA
) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("mcp-cimd")
    resources = [f"http://127.0.0.1:{port}/mcp" for port in ports]
    config = registration_config("open", resources, SCOPES) + metadata_config(ca)
    server = Served.start(
        f"sqlite:///{workdir / 'authgate.db'}", workdir, issuer_path="/tenant1", extra_config=config
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def mcp(served: Served, ports: list[int]) -> Iterator[dict[str, McpServer]]:
    issuer = served.config.issuer
    with (
        running_mcp(integration_app, issuer, ports[0]) as integration,
        running_mcp(middleware_app, issuer, ports[1]) as middleware,
    ):
        servers = {"integration": integration, "middleware": middleware}
        create_apis(served, [s.resource for s in servers.values()], SCOPES)
        yield servers


def recorder(requests: list[tuple[str, str]]) -> dict[str, Any]:
    """`http_options` for the SDK's HTTP client that note every request it sends."""

    async def note(request: httpx2.Request) -> None:
        requests.append((request.method, str(request.url)))

    return {"event_hooks": {"request": [note]}}


async def test_the_sdk_uses_its_metadata_document_url_as_client_id(
    served: Served, mcp: dict[str, McpServer], client_url: str, origin: HttpsOrigin
) -> None:
    server, other = mcp["integration"], mcp["middleware"]
    issuer = served.config.issuer
    storage = MemoryStorage(client=None)
    sent: list[tuple[str, str]] = []
    answer, sign_ins = await call_whoami(
        served,
        server,
        None,
        storage,
        http_options=recorder(sent),
        client_metadata_url=client_url,
    )
    # Both ways were advertised; the SDK chose the URL client id and registered nothing.
    assert storage.client is not None
    assert storage.client.client_id == client_url
    assert not [url for method, url in sent if method == "POST" and url.endswith("/register")]
    assert f"{issuer}/token" in [url for method, url in sent if method == "POST"]
    # authgate fetched the document from the client's site once, for /authorize, the sign-in and
    # /token: it is cached (no Cache-Control: `cache_min`, 5 minutes).
    assert origin.hits[DOCUMENT_PATH] == 1
    # The code flow with PKCE and `resource`, as the URL client.
    assert len(sign_ins) == 1
    request = parse_qs(urlsplit(sign_ins[0]).query)
    assert request["client_id"] == [client_url]
    assert request["redirect_uri"] == [LOOPBACK_CALLBACK]
    assert request["resource"] == [server.resource]
    assert request["code_challenge_method"] == ["S256"]
    assert storage.tokens is not None
    claims = claims_of(storage.tokens.access_token)
    assert claims["aud"] == server.resource
    assert claims["client_id"] == client_url
    assert claims["iss"] == issuer
    assert answer["client_id"] == client_url
    assert set(answer["scopes"]) >= set(SCOPES)
    # Its token is for this MCP server only: the other refuses it (no passthrough).
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {storage.tokens.access_token}"}
    refused = await asyncio.to_thread(post_initialize, other.resource, headers)
    assert refused.status_code == 401, refused.text
    assert challenge_params(refused)["error"] == "invalid_token"
    # The operator sees the client, which is stored nowhere but names the grant just made.
    listed: list[dict[str, Any]] = cli(served, "client", "list")  # type: ignore[assignment]
    record = next(client for client in listed if client["client_id"] == client_url)
    assert record["origin"] == "metadata_document"
    shown = cli(served, "client", "show", client_url)
    assert shown["origin"] == "metadata_document"
    assert shown["metadata_document"] == client_url
    # One sign-in: the consent it remembered and the refresh-token family it started.
    assert shown["records"] == {
        "consents": 1,
        "refresh_families": 1,
        "opaque_access_tokens": 0,
        "authorization_codes": 0,
    }


async def test_a_metadata_document_client_steps_up_on_insufficient_scope(
    served: Served, mcp: dict[str, McpServer], client_url: str
) -> None:
    server = mcp["middleware"]
    narrow = token_for(served, client_url, server.resource, "mcp:tools")
    assert claims_of(narrow["access_token"])["client_id"] == client_url
    refused = await asyncio.to_thread(
        post_initialize,
        server.resource,
        {**MCP_HEADERS, "Authorization": f"Bearer {narrow['access_token']}"},
    )
    assert refused.status_code == 403
    assert challenge_params(refused)["error"] == "insufficient_scope"
    # The SDK holds the URL client and the narrow token: a 403, one more sign-in for the wider
    # scope, still as the URL client and with no registration.
    storage = MemoryStorage(client=None)
    storage.tokens = OAuthToken(access_token=narrow["access_token"], scope=narrow.get("scope"))
    sent: list[tuple[str, str]] = []
    answer, sign_ins = await call_whoami(
        served,
        server,
        None,
        storage,
        http_options=recorder(sent),
        client_metadata_url=client_url,
    )
    assert len(sign_ins) == 1
    query = parse_qs(urlsplit(sign_ins[0]).query)
    assert query["client_id"] == [client_url]
    assert query["resource"] == [server.resource]
    assert set(query["scope"][0].split()) >= set(SCOPES)
    assert not [url for method, url in sent if url.endswith("/register")]
    assert storage.client is not None
    assert storage.client.client_id == client_url
    assert storage.tokens is not None
    assert storage.tokens.access_token != narrow["access_token"]
    wide = claims_of(storage.tokens.access_token)
    assert wide["client_id"] == client_url
    assert set(str(wide["scope"]).split()) >= set(SCOPES)
    assert answer == {}  # the middleware app has no SDK auth context
    # The operator ends every grant of the URL client; its consent stays.
    revoked = cli(served, "client", "revoke-tokens", client_url)
    assert revoked["grants"] >= 2
    shown = cli(served, "client", "show", client_url)
    assert shown["records"]["refresh_families"] == 0
    assert shown["records"]["consents"] == 1


@pytest.fixture
def pg_served(tmp_path: Path, ca: TestCA) -> Iterator[Served]:
    """URL client ids on a fresh PostgreSQL database, no registration."""
    served = Served.start(None, tmp_path, issuer_path="/tenant1", extra_config=metadata_config(ca))
    try:
        yield served
    finally:
        served.stop()


@pytest.mark.postgres
@pytest.mark.browser
async def test_on_postgresql_signed_in_with_chromium(
    pg_served: Served, origin: HttpsOrigin, browser: Any
) -> None:
    """A server with one MCP server, so the document's bare scopes name its API; the SDK's
    redirect URI is the client site's loopback port, the document's has none (RFC 8252 §7.3).
    The document has no refresh-token grant while the SDK asks for `offline_access` (with
    `prompt=consent`): the server drops it (OIDC Core §11) and one approval is enough."""
    port = free_port()
    path = "/oauth/pg-client.json"
    url = f"https://127.0.0.1:{origin.port}{path}"
    origin.routes[path] = json_route(
        {
            "client_id": url,
            "client_name": "mcp interop (CIMD, PostgreSQL)",
            "redirect_uris": [LOOPBACK_CALLBACK],
            "token_endpoint_auth_method": "none",
            "scope": " ".join(SCOPES),
        }
    )
    served = pg_served
    with (
        running_mcp(integration_app, served.config.issuer, port) as server,
        client_site() as site,
    ):
        create_apis(served, [server.resource], SCOPES)

        def user(authorization_url: str) -> str:
            return sign_in_and_approve(browser, authorization_url, site)

        storage = MemoryStorage(client=None)
        answer, sign_ins = await call_whoami(
            served,
            server,
            None,
            storage,
            sign_in=user,
            redirect_uri=site.url("/callback"),
            client_metadata_url=url,
        )
        assert storage.client is not None
        assert storage.client.client_id == url
        assert len(sign_ins) == 1
        query = parse_qs(urlsplit(sign_ins[0]).query)
        assert query["client_id"] == [url]
        assert query["redirect_uri"] == [site.url("/callback")]
        assert query["resource"] == [server.resource]
        assert answer["client_id"] == url
        assert storage.tokens is not None
        assert claims_of(storage.tokens.access_token)["client_id"] == url
        assert storage.tokens.refresh_token is None
        assert "offline_access" in query["scope"][0].split()
        listed: list[dict[str, Any]] = cli(served, "client", "list")  # type: ignore[assignment]
        # The served setup's two CLI clients, then the URL client.
        assert [c["origin"] for c in listed] == ["cli", "cli", "metadata_document"]
        assert listed[-1]["client_id"] == url
