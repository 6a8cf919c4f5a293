"""The refresh token grant (RFC 6749 §6; RFC 9700 §2.2.2 and §4.14.2 rotation and reuse detection;
OpenID Connect Core §12.2).

Every use rotates: the answer carries a new refresh token, and the one presented stops working.
Presenting a rotated token again revokes the whole family and every token of its grant, except
inside the grace window, where the same token used again gets the very same answer (a client that
lost the response, two tabs racing). That answer is kept sealed (AES-256-GCM, bound to the
presented token's hash) in the family for the window. A refresh may narrow `scope`, never widen it,
and may name as `resource` only the API the grant was for (RFC 8707 §2.2, else `invalid_target`).
Refreshes of one family are serialized by the store's lock (`flows.refresh_tokens`); a refresh
whose client has hung up changes nothing.

With `openid`, a new ID token comes with the new access token; as OIDC Core §12.2 says, it keeps
`auth_time` and carries no `nonce`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import ClassVar

from authgate.oauth.errors import InvalidGrant
from authgate.server.flows.refresh_tokens import RefreshPolicy, exchange_refresh_token
from authgate.server.grants.base import (
    ClientGoneCheck,
    StoredTokenResponse,
    TokenResponse,
    presented_credential,
)
from authgate.server.grants.user_tokens import UserGrant, UserTokens
from authgate.server.http.forms import Form
from authgate.server.models import Client, RefreshFamily
from authgate.server.observability.counters import SecurityCounters
from authgate.server.secret_key import Sealer, SealError, generate_token
from authgate.server.storage.protocols import AuditStore, GrantRevoker, RefreshTokenStore
from authgate.server.targets.resources import one_resource
from authgate.server.targets.scopes import parse_scope
from authgate.server.tokens.dpop import check_bound

__all__ = ["RefreshTokenGrant"]


class RefreshTokenGrant:
    """`grant_type=refresh_token`."""

    grant_type: ClassVar[str] = "refresh_token"
    # Public clients may refresh: rotation with reuse detection is what RFC 9700 §4.14.2 asks of
    # refresh tokens held by clients that cannot authenticate.
    allows_public_clients: ClassVar[bool] = True

    def __init__(
        self,
        tokens: UserTokens,
        *,
        families: RefreshTokenStore,
        revoker: GrantRevoker,
        replays: Sealer,
        policy: RefreshPolicy,
        hash_token: Callable[[str], str],
        now: Callable[[], int],
        audit_store: AuditStore | None = None,
        counters: SecurityCounters | None = None,
    ) -> None:
        """`replays` seals the token response kept for a retry in the grace window
        (`ServerSecret.refresh_replays`); `audit_store` records detected reuse, `counters`
        counts it."""
        self._audit_store = audit_store
        self._counters = counters
        self._tokens = tokens
        self._families = families
        self._revoker = revoker
        self._replays = replays
        self._policy = policy
        self._hash_token = hash_token
        self._now = now

    async def handle(
        self, form: Form, client: Client, client_gone: ClientGoneCheck
    ) -> StoredTokenResponse:
        presented = presented_credential(form, "refresh_token", unknown="unknown refresh token")
        requested = parse_scope(form.get("scope"))
        resource = one_resource(form.get_all("resource"))
        presented_hash = self._hash_token(presented)
        binding = b"authgate refresh response\x00" + presented_hash.encode("ascii")
        # The answer of a rotation, as sealed: returned as it is, not opened again.
        issued: list[tuple[bytes, dict[str, object]]] = []

        async def issue_pair(
            family: RefreshFamily, access_scopes: tuple[str, ...]
        ) -> tuple[str, bytes]:
            access, id_token = await self._tokens.access_and_id_token(
                UserGrant(
                    grant_id=family.grant_id,
                    client=client,
                    user_id=family.user_id,
                    scopes=access_scopes,
                    # The flow checked that a named resource is one of the family's.
                    audience=resource or family.audiences[0],
                    auth_time=family.auth_time,
                    amr=family.amr,
                )
            )
            new_token = generate_token()
            body = TokenResponse(access, new_token, id_token).to_dict()
            sealed = self._replays.seal(json.dumps(body).encode("utf-8"), binding)
            issued.append((sealed, body))
            return self._hash_token(new_token), sealed

        sealed = await exchange_refresh_token(
            self._families,
            self._revoker,
            presented_hash,
            client_id=client.client_id,
            scopes=requested or None,
            clock=self._now,
            policy=self._policy,
            issue_pair=issue_pair,
            resource=resource,
            client_gone=client_gone,
            audit_store=self._audit_store,
            counters=self._counters,
            # RFC 9449 §5: a family bound to a DPoP key (a public client's) is refreshed only
            # with a proof by that key, a retry in the grace window included.
            check_family=_check_dpop_binding,
        )
        if issued and issued[-1][0] is sealed:
            return StoredTokenResponse(issued[-1][1])
        try:
            plaintext = self._replays.open(sealed, binding)
        except SealError:  # sealed under another server key: cannot be answered again
            raise InvalidGrant("the refresh token was already used") from None
        return StoredTokenResponse(json.loads(plaintext))


def _check_dpop_binding(family: RefreshFamily) -> None:
    check_bound(family.jkt, "the refresh token")
