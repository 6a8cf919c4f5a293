"""What every grant handler provides, and the token response they return (RFC 6749 §5.1).

One handler per grant type, each a small module. The token endpoint authenticates the client and
checks that it may use the grant (registered for it, and public only where the grant says
`allows_public_clients`) before the handler runs; every handler issues through the one
`TokenIssuer`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from authgate.oauth.errors import InvalidGrant, InvalidRequest
from authgate.server.http.forms import Form
from authgate.server.models import Client
from authgate.server.tokens.issuer import IssuedAccessToken

__all__ = [
    "ClientGoneCheck",
    "GrantHandler",
    "StoredTokenResponse",
    "TokenAnswer",
    "TokenResponse",
    "presented_credential",
]

_MAX_CREDENTIAL = 256  # ours are 43 characters; anything much longer is not one of them

# Whether the client has closed its connection (asked of the ASGI server), so that a grant can
# leave its state unchanged when nobody will receive the answer.
ClientGoneCheck = Callable[[], Awaitable[bool]]


class TokenAnswer(Protocol):
    """What a grant answers with: the JSON body of a successful token response."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON body (RFC 6749 §5.1)."""
        ...


@dataclass(frozen=True, slots=True)
class TokenResponse:
    """A successful token response: the access token, and a refresh token (RFC 6749 §5.1) and an
    ID token (OpenID Connect Core §3.1.3.3) when the grant issues them."""

    access_token: IssuedAccessToken
    refresh_token: str | None = field(default=None, repr=False)
    id_token: str | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON body (RFC 6749 §5.1); `scope` always stated so clients need not guess."""
        body: dict[str, Any] = {
            "access_token": self.access_token.value,
            "token_type": self.access_token.token_type,
            "expires_in": self.access_token.expires_in,
        }
        if self.access_token.scope:
            body["scope"] = self.access_token.scope
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        if self.id_token is not None:
            body["id_token"] = self.id_token
        return body


@dataclass(frozen=True, slots=True)
class StoredTokenResponse:
    """A token response given before, answered again (a refresh retried in its grace window)."""

    body: dict[str, Any] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The body exactly as first sent."""
        return dict(self.body)


class GrantHandler(Protocol):
    """Handles one `grant_type` at the token endpoint for an authenticated client."""

    grant_type: ClassVar[str]
    # Whether public clients (token_endpoint_auth_method "none") may use this grant: the token
    # endpoint refuses them otherwise (unauthorized_client), and the metadata offers "none" only
    # when some grant allows them.
    allows_public_clients: ClassVar[bool]

    async def handle(self, form: Form, client: Client, client_gone: ClientGoneCheck) -> TokenAnswer:
        """Validate the grant's parameters and issue tokens, or raise an `OAuthError`."""
        ...


def presented_credential(form: Form, name: str, *, unknown: str) -> str:
    """The code or token a grant redeems, from the form's `name` parameter: `InvalidRequest` when
    it is missing, `InvalidGrant(unknown)` without a lookup when it is too long to be ours."""
    value = form.get(name)
    if value is None:
        raise InvalidRequest(f"{name} is required")
    if len(value) > _MAX_CREDENTIAL:
        raise InvalidGrant(unknown)
    return value
