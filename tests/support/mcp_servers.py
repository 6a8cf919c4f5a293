"""MCP servers for the interop tests, built with the official SDK (`mcp` 2.x) and protected two
ways: by the SDK's auth over authgate's verifier (`authgate.middleware.mcp.McpAuth`), and by the
gate's ASGI middleware in front of an unprotected SDK app. Each runs in uvicorn on a loopback
port, in a thread of its own. The client side: the SDK's `OAuthClientProvider` with a
pre-registered client, whose sign-in a callback drives."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest
import uvicorn
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)
from starlette.types import ASGIApp

from authgate.gate import Gate, GateConfig, ResourceMetadata
from authgate.middleware import AuthGateMiddleware
from authgate.middleware.mcp import McpAuth
from authgate.policy import Route
from authgate.verifier import IssuerConfig, VerifierConfig
from tests.support.server_harness import free_port

SCOPES = ("mcp:tools", "mcp:admin")  # what the MCP servers require
STARTUP_TIMEOUT = 20.0
# The `stream` tool's gates, by the key a test passes it: set when the client has seen the tool's
# first progress notification (the servers run in this process).
RELEASES: dict[str, threading.Event] = {}
RELEASE_WAIT = 20.0  # how long `stream` waits before giving up (then it answers "buffered")


def _server(name: str, **auth: Any) -> MCPServer:
    server = MCPServer(name, **auth)

    @server.tool()
    def whoami() -> str:
        """Who called, as the SDK's auth context knows it (empty behind the middleware)."""
        token = get_access_token()
        if token is None:
            return "{}"
        return json.dumps(
            {
                "client_id": token.client_id,
                "scopes": token.scopes,
                "resource": token.resource,
                "subject": token.subject,
            }
        )

    @server.tool()
    async def stream(key: str, ctx: Context) -> str:
        """A progress notification, then the result once the client has seen it: answers
        "streamed" only if the notification reached the client before the response ended (a
        proxy that buffers the response holds it back until the wait gives up)."""
        await ctx.report_progress(1, 2, "first")
        released = await anyio.to_thread.run_sync(RELEASES[key].wait, RELEASE_WAIT)
        return "streamed" if released else "buffered"

    return server


def plain_app(issuer: str, resource: str) -> ASGIApp:
    """An SDK app with no auth of its own (for behind the gateway); `issuer` is not used."""
    return _server("plain").streamable_http_app()


def integration_app(issuer: str, resource: str) -> ASGIApp:
    """The SDK's own auth, with `McpAuth`'s verifier and answers."""
    auth = McpAuth(issuer=issuer, resource=resource, scopes=SCOPES)
    server = _server("integration", token_verifier=auth.token_verifier, auth=auth.settings)
    return auth.protect(server.streamable_http_app())


def middleware_app(issuer: str, resource: str) -> ASGIApp:
    """An unprotected SDK app behind the gate's ASGI middleware (RFC 9728 document included)."""
    verifier = VerifierConfig(issuers=(IssuerConfig(issuer=issuer, audiences=(resource,)),))
    gate = Gate(
        GateConfig.simple(
            verifier,
            routes=(Route.build(path="/mcp", scopes=list(SCOPES)),),
            realm="mcp",
            resource=ResourceMetadata(
                resource=resource, authorization_servers=(issuer,), scopes_supported=SCOPES
            ),
        )
    )
    app = _server("middleware").streamable_http_app()
    return AuthGateMiddleware(app, gate)


@dataclass
class McpServer:
    """One MCP server on loopback: `resource` is its URL (`.../mcp`), the token audience."""

    resource: str
    server: uvicorn.Server
    thread: threading.Thread


@contextmanager
def running_mcp(
    build: Callable[[str, str], ASGIApp], issuer: str, port: int | None = None
) -> Iterator[McpServer]:
    """`build(issuer, resource)` served by uvicorn on `port` (default: a free loopback port)."""
    port = port or free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    config = uvicorn.Config(
        build(issuer, resource), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the MCP server did not start")
        time.sleep(0.01)
    try:
        yield McpServer(resource, server, thread)
    finally:
        server.should_exit = True
        thread.join(15)


@dataclass
class MemoryStorage(TokenStorage):
    """The SDK client's storage: a pre-registered client, or the one the SDK registered."""

    client: OAuthClientInformationFull | None
    tokens: OAuthToken | None = None
    saved: list[OAuthToken] = field(default_factory=list)

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        self.saved.append(tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


def oauth_provider(
    server_url: str,
    client_id: str | None,
    redirect_uri: str,
    storage: MemoryStorage,
    sign_in: Callable[[str], Awaitable[str]],
    *,
    client_metadata_url: str | None = None,
) -> OAuthClientProvider:
    """The SDK's OAuth client for a public client: `sign_in(authorization_url)` plays the user and
    returns the redirect back to the client (its query holds code, state and iss). `client_id`
    None and no client in `storage`: the SDK registers itself at the discovered
    `registration_endpoint` (RFC 7591) with the metadata below, or, given `client_metadata_url`
    and a server that advertises `client_id_metadata_document_supported`, uses that URL as its
    client id (draft-ietf-oauth-client-id-metadata-document)."""
    callback: dict[str, str] = {}

    async def redirect_handler(url: str) -> None:
        location = await sign_in(url)
        query = parse_qs(urlsplit(location).query)
        callback.clear()
        callback.update({name: values[0] for name, values in query.items()})

    async def callback_handler() -> AuthorizationCodeResult:
        if "code" not in callback:
            raise AssertionError(f"the authorization failed: {callback}")
        return AuthorizationCodeResult(
            code=callback["code"], state=callback.get("state"), iss=callback.get("iss")
        )

    if storage.client is None and client_id is not None:
        storage.client = OAuthClientInformationFull(
            client_id=client_id,
            redirect_uris=[redirect_uri],  # type: ignore[list-item]
            token_endpoint_auth_method="none",
            grant_types=["authorization_code", "refresh_token"],
        )
    metadata = OAuthClientMetadata(
        redirect_uris=[redirect_uri],  # type: ignore[list-item]
        token_endpoint_auth_method="none",
        grant_types=["authorization_code", "refresh_token"],
        client_name="mcp interop",
    )
    return OAuthClientProvider(
        server_url=server_url,
        client_metadata=metadata,
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
        client_metadata_url=client_metadata_url,
    )
