"""The tokens of the grants a user approved (authorization code, refresh token, device code): an
access token for the grant's API, an ID token when `openid` was granted, and a refresh token when
the client may refresh and asked for `offline_access` or is configured to always get one (RFC 6749
§5.1, §6; RFC 9068 §2.2; OpenID Connect Core §3.1.3.3, §11, §12.2).

Access tokens name the user as `sub`, carry the user's `roles` and `auth_time` (RFC 9068
§2.2.1, §2.2.3.1); every one is recorded under its grant, so that revoking the grant revokes it.
Before every issuance the user, the API and the client's permission on it are checked again
(through the registry cache, so within `http.cache_ttl` seconds of a change): a deleted user or
API, or a client that lost the API, gets no more tokens; API scopes the client no longer holds are
left out (the response's `scope` says what was granted, RFC 6749 §5.1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from authgate.oauth.errors import InvalidGrant
from authgate.server.flows.refresh_tokens import new_family, should_issue_refresh_token
from authgate.server.grants.base import TokenResponse
from authgate.server.models import Api, Client
from authgate.server.storage.protocols import RefreshTokenStore, UserLookup
from authgate.server.targets.identity_scopes import IDENTITY_SCOPES, OPENID
from authgate.server.targets.user_targets import UserTargets
from authgate.server.tokens.dpop import bound_key
from authgate.server.tokens.id_tokens import id_token_claims
from authgate.server.tokens.issuer import AccessTokenRequest, IssuedAccessToken, TokenIssuer

__all__ = ["UserGrant", "UserTokens"]


@dataclass(frozen=True, slots=True)
class UserGrant:
    """What a user approved for a client, as a code, a device authorization or a refresh family
    records it. `scopes` are every granted scope, identity scopes included."""

    grant_id: str
    client: Client
    user_id: str
    scopes: tuple[str, ...]
    audience: str
    auth_time: int
    amr: tuple[str, ...]
    nonce: str | None = None


class UserTokens:
    """Issues the tokens of user grants through the one `TokenIssuer`."""

    def __init__(
        self,
        issuer: TokenIssuer,
        *,
        users: UserLookup,
        targets: UserTargets,
        families: RefreshTokenStore,
        hash_token: Callable[[str], str],
        now: Callable[[], int],
        issuer_url: str,
        id_token_ttl: int,
    ) -> None:
        self._issuer = issuer
        self._users = users
        self._targets = targets
        self._families = families
        self._hash_token = hash_token
        self._now = now
        self._issuer_url = issuer_url
        self._id_token_ttl = id_token_ttl

    async def issue(self, grant: UserGrant) -> TokenResponse:
        """Access token, ID token and (when due) the first refresh token of a new grant, their
        records written together (`RefreshTokenStore.grant_transaction`)."""
        async with self._families.grant_transaction(grant.grant_id):
            access, id_token = await self.access_and_id_token(grant)
            refresh_token = None
            client = grant.client
            always = client.always_issue_refresh_token
            if should_issue_refresh_token(client.grant_types, grant.scopes, always=always):
                refresh_token, family = new_family(
                    hash_token=self._hash_token,
                    grant_id=grant.grant_id,
                    client_id=grant.client.client_id,
                    user_id=grant.user_id,
                    scopes=grant.scopes,
                    audiences=(grant.audience,),
                    auth_time=grant.auth_time,
                    amr=grant.amr,
                    now=self._now(),
                    # RFC 9449 §5: a public client's refresh tokens are bound to its DPoP key (a
                    # confidential client's are bound to its credentials already).
                    jkt=bound_key() if client.is_public else None,
                )
                await self._families.create_family(family)
        return TokenResponse(access, refresh_token, id_token)

    async def access_and_id_token(self, grant: UserGrant) -> tuple[IssuedAccessToken, str | None]:
        """The access token for `grant` and, with `openid`, an ID token bound to it by `at_hash`.

        Raises `InvalidGrant` when the user or the API is gone or the client lost the API."""
        user = await self._users.get_user(grant.user_id)
        if user is None:
            raise InvalidGrant("the user no longer exists")
        api = await self._targets.api_for(grant.audience)
        if api is None:
            raise InvalidGrant("the API of this grant no longer exists")
        scopes = self._still_allowed(grant, api)
        access = await self._issuer.issue(
            AccessTokenRequest(
                client=grant.client,
                api=api,
                scopes=scopes,
                subject=user.user_id,
                roles=user.roles,
                extra_claims={"auth_time": grant.auth_time},
                grant_id=grant.grant_id,
            )
        )
        if OPENID not in scopes:
            return access, None
        claims = id_token_claims(
            issuer=self._issuer_url,
            subject=user.user_id,
            client_id=grant.client.client_id,
            now=self._now(),
            lifetime=self._id_token_ttl,
            auth_time=grant.auth_time,
            nonce=grant.nonce,
            access_token=access.value,
            alg=grant.client.id_token_alg,
            crv="Ed25519" if grant.client.id_token_alg == "EdDSA" else None,  # keys.manager's curve
            amr=grant.amr,
        )
        # OIDC Registration §2 `id_token_signed_response_alg` (RS256 unless the client chose one).
        return access, await self._issuer.sign_id_token(claims, grant.client.id_token_alg)

    def _still_allowed(self, grant: UserGrant, api: Api) -> tuple[str, ...]:
        if api is self._targets.userinfo_api:
            return tuple(scope for scope in grant.scopes if scope in IDENTITY_SCOPES)
        access = grant.client.access_to(api.identifier)
        if access is None or not access.may_request:
            raise InvalidGrant("the client may no longer use this API")
        return tuple(
            scope
            for scope in grant.scopes
            if scope in IDENTITY_SCOPES or (scope in access.scopes and scope in api.scopes)
        )
