"""What a user-facing request (authorization or device) is for: the API, hence the audience, and
the scopes (RFC 6749 §3.3; RFC 8707 §2; OpenID Connect Core §5.4 and §11).

Identity scopes (`openid`, `profile`, `email`, `offline_access`) are the server's own; every
other scope belongs to an API and is resolved exactly as for client credentials
(`resources.resolve_target`: one audience per token). A request that names no API scope and no
`resource` but does name an identity scope (a plain OpenID Connect sign-in) gets an access token
for this server's userinfo endpoint only: its audience is the userinfo URL, so no API accepts it.
`offline_access` is dropped for a client that may not use the refresh-token grant (OIDC Core §11
lets the server ignore it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from authgate.server.models import Api, Client
from authgate.server.storage.protocols import ApiLookup
from authgate.server.targets.identity_scopes import OFFLINE_ACCESS, split_scopes
from authgate.server.targets.resources import resolve_target

__all__ = ["UserTarget", "UserTargets"]


@dataclass(frozen=True, slots=True)
class UserTarget:
    """The API a user grant's access tokens are for, and every scope granted (identity first)."""

    api: Api
    scopes: tuple[str, ...]
    identity_scopes: tuple[str, ...]
    api_scopes: tuple[str, ...]
    userinfo_only: bool

    @property
    def audiences(self) -> tuple[str, ...]:
        """The audiences bound into codes, device authorizations and refresh families."""
        return (self.api.identifier,)


class UserTargets:
    """Resolves user-facing requests against the registered APIs."""

    def __init__(self, apis: ApiLookup, *, userinfo_url: str, access_token_ttl: int) -> None:
        """`userinfo_url` is the audience of tokens for the userinfo endpoint alone, which live
        `access_token_ttl` seconds (the default lifetime of access tokens)."""
        self._apis = apis
        # Not stored: the userinfo endpoint is part of this server, not a registered API.
        self.userinfo_api = Api(
            identifier=userinfo_url,
            name="your account details",
            scopes=(),
            token_format="jwt",
            access_token_ttl=access_token_ttl,
            signing_alg="RS256",
            created_at=0,
        )

    async def resolve(
        self, client: Client, resources: Sequence[str], scopes: Sequence[str]
    ) -> UserTarget:
        """The target of a request for `scopes` (and RFC 8707 `resources`) by `client`; raises
        `InvalidTarget` or `InvalidScope` as `resolve_target` does."""
        identity, api_scopes = split_scopes(scopes)
        if OFFLINE_ACCESS in identity and "refresh_token" not in client.grant_types:
            identity = tuple(scope for scope in identity if scope != OFFLINE_ACCESS)
        if identity and not api_scopes and not resources:
            return UserTarget(self.userinfo_api, identity, identity, (), userinfo_only=True)
        target = await resolve_target(client, list(resources), api_scopes, self._apis)
        return UserTarget(
            target.api,
            identity + target.scopes,
            identity,
            target.scopes,
            userinfo_only=False,
        )

    async def api_for(self, audience: str) -> Api | None:
        """The API of a stored audience (a code's, a family's), None when it was deleted."""
        if audience == self.userinfo_api.identifier:
            return self.userinfo_api
        return await self._apis.get_api(audience)
