"""The authorization code grant at the token endpoint (RFC 6749 §4.1.3-§4.1.4; RFC 7636 §4.5-§4.6;
RFC 8707 §2.2; RFC 9700 §2.1.1, §4.5, §4.8.2; OpenID Connect Core §3.1.3).

The code is consumed before it is checked, so a failed attempt (a wrong `code_verifier`, another
client) uses it up; a code presented a second time fails with `invalid_grant` and revokes every
token issued from it (`flows.codes.redeem_code`). Public clients may redeem codes: PKCE, which
they must use, binds the code to the app that asked for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from authgate.server.flows.codes import redeem_code
from authgate.server.grants.base import ClientGoneCheck, TokenResponse, presented_credential
from authgate.server.grants.user_tokens import UserGrant, UserTokens
from authgate.server.http.forms import Form
from authgate.server.models import Client
from authgate.server.storage.protocols import AuthorizationCodeStore, GrantRevoker
from authgate.server.tokens.dpop import check_bound

__all__ = ["AuthorizationCodeGrant"]


class AuthorizationCodeGrant:
    """`grant_type=authorization_code`."""

    grant_type: ClassVar[str] = "authorization_code"
    allows_public_clients: ClassVar[bool] = True

    def __init__(
        self,
        tokens: UserTokens,
        *,
        codes: AuthorizationCodeStore,
        revoker: GrantRevoker,
        hash_token: Callable[[str], str],
        now: Callable[[], int],
    ) -> None:
        self._tokens = tokens
        self._codes = codes
        self._revoker = revoker
        self._hash_token = hash_token
        self._now = now

    async def handle(
        self, form: Form, client: Client, client_gone: ClientGoneCheck
    ) -> TokenResponse:
        code = presented_credential(form, "code", unknown="unknown authorization code")
        record, audiences = await redeem_code(
            self._codes,
            self._revoker,
            self._hash_token(code),
            client_id=client.client_id,
            redirect_uri=form.get("redirect_uri"),
            code_verifier=form.get("code_verifier"),
            resources=form.get_all("resource"),
            now=self._now(),
        )
        check_bound(record.dpop_jkt, "the authorization code")  # RFC 9449 §10
        return await self._tokens.issue(
            UserGrant(
                grant_id=record.grant_id,
                client=client,
                user_id=record.user_id,
                scopes=record.scopes,
                audience=audiences[0],
                auth_time=record.auth_time,
                amr=record.amr,
                nonce=record.nonce,
            )
        )
