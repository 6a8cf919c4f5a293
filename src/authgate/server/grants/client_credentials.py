"""The client credentials grant (RFC 6749 §4.4) with RFC 8707 resource indicators.

Only confidential clients may use it (§4.4: `allows_public_clients` is False, which the token
endpoint enforces); the token's subject is the client itself and it carries the client's roles.
No refresh token is issued (§4.4.3).
"""

from __future__ import annotations

from typing import ClassVar

from authgate.server.grants.base import ClientGoneCheck, TokenResponse
from authgate.server.http.forms import Form
from authgate.server.models import Client
from authgate.server.storage.protocols import ApiLookup
from authgate.server.targets.resources import resolve_target
from authgate.server.targets.scopes import parse_scope
from authgate.server.tokens.issuer import AccessTokenRequest, TokenIssuer

__all__ = ["ClientCredentialsGrant"]


class ClientCredentialsGrant:
    """`grant_type=client_credentials`."""

    grant_type: ClassVar[str] = "client_credentials"
    allows_public_clients: ClassVar[bool] = False

    def __init__(self, issuer: TokenIssuer, apis: ApiLookup) -> None:
        self._issuer = issuer
        self._apis = apis

    async def handle(
        self, form: Form, client: Client, client_gone: ClientGoneCheck
    ) -> TokenResponse:
        target = await resolve_target(
            client, form.get_all("resource"), parse_scope(form.get("scope")), self._apis
        )
        token = await self._issuer.issue(
            AccessTokenRequest(
                client=client,
                api=target.api,
                scopes=target.scopes,
                subject=client.client_id,
                roles=client.roles,
            )
        )
        return TokenResponse(token)
