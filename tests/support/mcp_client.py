"""The client side of the MCP interop tests: the SDK's OAuth client calling a tool (its sign-in
played by a callback), tokens fetched outside the SDK, the CLI against a served authgate, and
readers of what came back (JWT claims, `WWW-Authenticate` parameters)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import secrets
import subprocess
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import httpx2
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from tests.support.e2e import LOOPBACK_CALLBACK, pkce_pair
from tests.support.e2e_served import AUTHGATE, Served
from tests.support.mcp_servers import McpServer, MemoryStorage, oauth_provider

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "probe", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}

SignIn = Callable[[str], str]  # authorization URL -> the redirect back to the client


def cli(served: Served, *args: str) -> dict[str, Any]:
    """`authgate ARGS --json` against the served authgate's configuration and database."""
    done = subprocess.run(
        [AUTHGATE, *args, "--json"],
        env=served.env,
        cwd=served.workdir,
        capture_output=True,
        check=True,
        timeout=60,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def create_apis(served: Served, resources: list[str], scopes: tuple[str, ...]) -> None:
    """Each MCP server registered as an API (its URL the identifier), with `scopes`."""
    for resource in resources:
        cli(served, "api", "create", "--identifier", resource,
            *(arg for scope in scopes for arg in ("--scope", scope)))  # fmt: skip


def registration_config(mode: str, resources: list[str], scopes: tuple[str, ...]) -> str:
    """`[registration]` (TOML for `Served.start`) letting registered clients ask for `scopes` of
    each MCP server in `resources` (as API#SCOPE: the servers share the names), with a
    per-address limit the tests' registrations stay under."""
    allowed = [f"{resource}#{scope}" for resource in resources for scope in scopes]
    return f"""
[registration]
mode = "{mode}"
allowed_scopes = {json.dumps(allowed)}
[limits.registration]
rate = "600/minute"
burst = 50
"""


def claims_of(token: str) -> dict[str, Any]:
    """The JWT's payload, unverified: the servers under test verify it."""
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def challenge_params(response: httpx.Response) -> dict[str, str]:
    value = response.headers["www-authenticate"]
    assert value.startswith("Bearer "), value
    return dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', value))


def post_initialize(url: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(url, json=INITIALIZE, headers=headers, timeout=30)


def token_for(served: Served, client_id: str, resource: str, scope: str) -> dict[str, Any]:
    """A token through the code flow with PKCE and `resource`, outside the SDK."""
    verifier, code_challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": LOOPBACK_CALLBACK,
        "scope": scope,
        "state": secrets.token_urlsafe(8),
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
        "resource": resource,
    }
    issuer = served.config.issuer
    location = served.sign_in_and_approve(f"{issuer}/authorize?{urlencode(query)}")
    code = parse_qs(urlsplit(location).query)["code"][0]
    response = httpx.post(
        issuer + "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": LOOPBACK_CALLBACK,
            "code_verifier": verifier,
            "client_id": client_id,
            "resource": resource,
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@contextlib.asynccontextmanager
async def sdk_client(
    served: Served,
    url: str,
    client_id: str | None,
    storage: MemoryStorage,
    *,
    sign_in: SignIn | None = None,
    redirect_uri: str = LOOPBACK_CALLBACK,
    http_options: dict[str, Any] | None = None,
    sign_ins: list[str] | None = None,
    client_metadata_url: str | None = None,
) -> AsyncIterator[Client]:
    """The SDK's MCP client for the server at `url`, signing in through its OAuth client when the
    server asks. `client_id` None: the SDK registers itself (RFC 7591) unless `storage` holds a
    client. `sign_in` plays the user (default: the pages' forms over HTTP) and each authorization
    URL it is given is added to `sign_ins`; `http_options` go to the SDK's HTTP client;
    `client_metadata_url` is the SDK's URL client id (`oauth_provider`)."""
    play = sign_in or served.sign_in_and_approve
    seen = sign_ins if sign_ins is not None else []

    async def signed_in(authorization_url: str) -> str:
        seen.append(authorization_url)
        return await asyncio.to_thread(play, authorization_url)

    provider = oauth_provider(
        url, client_id, redirect_uri, storage, signed_in, client_metadata_url=client_metadata_url
    )
    async with (
        httpx2.AsyncClient(auth=provider, timeout=30, **(http_options or {})) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


async def call_whoami(
    served: Served,
    server: McpServer | str,
    client_id: str | None,
    storage: MemoryStorage,
    *,
    sign_in: SignIn | None = None,
    redirect_uri: str = LOOPBACK_CALLBACK,
    http_options: dict[str, Any] | None = None,
    client_metadata_url: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The SDK client (`sdk_client`) calls the `whoami` tool of `server` (or the MCP server at that
    URL); returns the tool's answer and the sign-ins it needed."""
    url = server if isinstance(server, str) else server.resource
    sign_ins: list[str] = []
    async with sdk_client(
        served,
        url,
        client_id,
        storage,
        sign_in=sign_in,
        redirect_uri=redirect_uri,
        http_options=http_options,
        sign_ins=sign_ins,
        client_metadata_url=client_metadata_url,
    ) as client:
        result = await client.call_tool("whoami", {})
    assert not result.is_error, result
    text = result.content[0].text  # type: ignore[union-attr]
    answer: dict[str, Any] = json.loads(text)
    return answer, sign_ins
