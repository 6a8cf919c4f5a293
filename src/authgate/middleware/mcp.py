"""Model Context Protocol servers: authgate's verifier behind the official Python SDK's auth
(`mcp` on PyPI, 2.x; RFC 6750 §3, RFC 8707, RFC 9068, RFC 9728 §5.1; MCP authorization 2025-11-25).

```python
from mcp.server.mcpserver import MCPServer
from authgate.middleware.mcp import McpAuth

auth = McpAuth(issuer="https://auth.example.com", resource="https://mcp.example.com/mcp",
               scopes=["mcp:tools"])
server = MCPServer("orders", token_verifier=auth.token_verifier, auth=auth.settings)
app = auth.protect(server.streamable_http_app())     # serve `app` with any ASGI server
```

- `McpTokenVerifier` is the SDK's `TokenVerifier`: it verifies with authgate's `Verifier` (keys
  from the issuer's metadata, `typ`, `exp`, algorithms...) and maps the principal to the SDK's
  `AccessToken` (scopes, client_id, expires_at, resource, subject, claims). A token whose `aud`
  does not name this server's resource is refused here, whatever the SDK's settings: a token for
  another MCP server is never passed through (RFC 8707; MCP "token passthrough").
- `McpAuth.settings` are the SDK's `AuthSettings` for a resource server: the SDK then serves the
  RFC 9728 document at `/.well-known/oauth-protected-resource/<path>` and requires the scopes.
- `McpAuth.protect` wraps the SDK's application so that its refusals are authgate's: a 401 names
  the scopes needed and the metadata URL, an `insufficient_scope` 403 names them too (so that a
  client steps up), both with RFC 6750 bodies; unavailable keys answer 503 with `Retry-After`
  (the SDK would answer 401). It also closes the verifier at shutdown.

This module imports the `mcp` package; authgate itself does not require it
(`pip install authgate[mcp]`).
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from typing import Any

try:
    from mcp.server.auth.provider import AccessToken
    from mcp.server.auth.routes import build_resource_metadata_url
    from mcp.server.auth.settings import AuthSettings
    from pydantic import AnyHttpUrl
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("authgate.middleware.mcp needs the MCP SDK: pip install 'mcp>=2'") from exc
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authgate.gate.challenge import error_answer
from authgate.oauth.errors import InsufficientScope, OAuthError
from authgate.oauth.scope import is_scope_token
from authgate.verifier.config import IssuerConfig, VerifierConfig
from authgate.verifier.core import BearerCredential, Verifier
from authgate.verifier.errors import Reason, TokenRejected, VerifierUnavailable
from authgate.verifier.principal import Principal

__all__ = ["McpAuth", "McpTokenVerifier", "access_token_for"]

# The refusal `McpTokenVerifier` met during the current request, for `McpAuth.protect` to answer
# with (the SDK's `TokenVerifier` can only say "no").
_REFUSAL: contextvars.ContextVar[list[OAuthError] | None] = contextvars.ContextVar(
    "authgate_mcp_refusal", default=None
)


def access_token_for(principal: Principal, token: str, resource: str) -> AccessToken | None:
    """The SDK's `AccessToken` for a verified principal, or None when the token is not for
    `resource` (its `aud` must name it exactly: RFC 8707 §2, RFC 9068 §4) or names no client."""
    audience = principal.claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if resource not in audiences or not principal.client_id:
        return None
    return AccessToken(
        token=token,
        client_id=principal.client_id,
        scopes=sorted(principal.scopes),
        expires_at=int(principal.expires_at) if principal.expires_at is not None else None,
        resource=resource,
        subject=principal.subject,
        claims=dict(principal.claims),
    )


class McpTokenVerifier:
    """The SDK's `TokenVerifier` protocol over authgate's `Verifier`, for one resource."""

    def __init__(self, verifier: Verifier, resource: str) -> None:
        self.verifier = verifier
        self.resource = resource

    async def verify_token(self, token: str) -> AccessToken | None:
        """The token's `AccessToken`, or None (the SDK answers 401)."""
        await self.verifier.start()  # idempotent: the first request fetches the keys
        try:
            principal = await self.verifier.authenticate(BearerCredential(token))
        except (TokenRejected, VerifierUnavailable) as exc:
            _remember(exc)
            return None
        access = access_token_for(principal, token, self.resource)
        if access is None:
            _remember(TokenRejected(Reason.AUDIENCE, debug="not issued for this MCP server"))
        return access


def _remember(error: OAuthError) -> None:
    refusals = _REFUSAL.get()
    if refusals is not None:
        refusals.append(error)


class McpAuth:
    """authgate's verifier and answers for an MCP server built with the official SDK.

    `issuer`: the authorization server's issuer identifier (keys from its metadata). `resource`:
    this MCP server's URL, its RFC 8707 resource identifier and the tokens' required audience.
    `scopes`: what every request needs (announced in challenges and the RFC 9728 document).
    `verifier`: a `Verifier` of your own (several issuers, introspection...) instead of the one
    built from `issuer`; it must accept `resource` as an audience.
    """

    def __init__(
        self,
        *,
        issuer: str,
        resource: str,
        scopes: Sequence[str] = (),
        verifier: Verifier | None = None,
        realm: str = "mcp",
    ) -> None:
        for scope in scopes:
            if not is_scope_token(scope):
                raise ValueError(f"scope {scope!r} is not a valid scope token (RFC 6749 §3.3)")
        self.issuer = issuer
        self.resource = resource
        self.scopes = tuple(scopes)
        self.realm = realm
        self.verifier = verifier or Verifier(
            VerifierConfig(issuers=(IssuerConfig(issuer=issuer, audiences=(resource,)),))
        )
        self.token_verifier = McpTokenVerifier(self.verifier, resource)
        self.settings = AuthSettings(
            issuer_url=AnyHttpUrl(issuer),
            resource_server_url=AnyHttpUrl(resource),
            required_scopes=list(self.scopes) or None,
            validate_token_resource=True,  # and `access_token_for` checks it regardless
        )
        self.resource_metadata_url = str(build_resource_metadata_url(AnyHttpUrl(resource)))

    def protect(self, app: ASGIApp) -> ASGIApp:
        """`app` (the SDK's Starlette application) with authgate's refusals and lifecycle."""
        return _McpAnswers(app, self)

    def answer_for(
        self, status: int, refusals: Sequence[OAuthError]
    ) -> tuple[int, list[Any], bytes]:
        """authgate's answer for the SDK's 401 or 403 (status, ASGI headers, body)."""
        error: OAuthError
        if refusals:
            error = refusals[-1]
        elif status == 403:
            error = InsufficientScope(
                "the access token lacks a required scope", scope=" ".join(self.scopes) or None
            )
        else:
            error = TokenRejected(Reason.MISSING)
        answer = error_answer(
            error,
            realm=self.realm,
            resource_metadata=self.resource_metadata_url,
            scope=" ".join(self.scopes) or None,
        )
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers]
        headers.append((b"content-length", str(len(answer.body)).encode()))
        return answer.status, headers, answer.body

    async def aclose(self) -> None:
        await self.verifier.aclose()


class _McpAnswers:
    """Replaces the SDK's bearer refusals (a 401 or 403 with a `Bearer` challenge) with
    authgate's, and closes the verifier when the application shuts down."""

    def __init__(self, app: ASGIApp, auth: McpAuth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":

            async def lifespan_send(message: Message) -> None:
                if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                    await self.auth.aclose()  # before the server stops the loop
                await send(message)

            await self.app(scope, receive, lifespan_send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusals: list[OAuthError] = []
        reset = _REFUSAL.set(refusals)
        replacing = False

        async def send_wrapper(message: Message) -> None:
            nonlocal replacing
            if message["type"] == "http.response.start" and _is_bearer_refusal(message):
                replacing = True
                status, headers, body = self.auth.answer_for(message["status"], refusals)
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            if replacing:  # the SDK's own body: already answered
                return
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            _REFUSAL.reset(reset)


def _is_bearer_refusal(message: Message) -> bool:
    if message["status"] not in (401, 403):
        return False
    return any(
        name.lower() == b"www-authenticate" and value[:7].lower() == b"bearer "
        for name, value in message.get("headers", ())
    )
