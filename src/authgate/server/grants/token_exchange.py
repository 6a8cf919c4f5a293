"""The token exchange grant (RFC 8693): a confidential client trades a subject token (and, for
delegation, an actor token) for an access token to one of its APIs.

- The tokens are verified by `tokens.exchange_tokens` (ours, or the trusted external issuer's for
  a client allowed `exchange_external`); `act` and `may_act` come from them only.
- Target: `resource` and `audience` (RFC 8693 §2.1) both name an API identifier; the client must
  be allowed to request tokens for it (its API access, as for client credentials), else
  `invalid_target` (§2.2.2). One API per token.
- Scope: at most the subject token's scopes (an ID token has none), and of those only what the
  client holds on the target API; asking for more is `invalid_scope`.
- Delegation (§1.1, §4.1): with an actor token the new token's `act` names the actor (`sub`, and
  `iss` for an external actor), with the subject token's own `act` nested inside it, so a chain
  stays visible. Impersonation (no actor token, no `act` added) only for a client with
  `exchange_impersonation`; the subject token's `act`, if any, is kept as it is.
- `may_act` (§4.4) in the subject token, when present, must name the acting party (the actor, or
  the client when impersonating), else the request is refused.
- `requested_token_type`: `access_token` (default) or `jwt` (for an API whose tokens are JWTs);
  others are `invalid_request`. A token carrying `act` is issued only as a JWT: an API with
  opaque tokens is refused, as its tokens cannot carry the actor.
- The issued token expires no later than the subject and actor tokens.
The answer (§2.2.1) has `issued_token_type` and no refresh token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from authgate.oauth.errors import InvalidRequest, InvalidScope, InvalidTarget
from authgate.server.grants.base import ClientGoneCheck
from authgate.server.http.forms import Form
from authgate.server.models import Client
from authgate.server.storage.protocols import ApiLookup
from authgate.server.targets.resources import resolve_target
from authgate.server.targets.scopes import parse_scope
from authgate.server.tokens.exchange_tokens import (
    ACCESS_TOKEN_TYPE,
    JWT_TYPE,
    ExchangeTokenReader,
    PresentedToken,
)
from authgate.server.tokens.issuer import AccessTokenRequest, IssuedAccessToken, TokenIssuer

__all__ = ["TOKEN_EXCHANGE_GRANT", "ExchangeResponse", "TokenExchangeGrant"]

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"  # RFC 8693 §2.1
_REQUESTABLE = (ACCESS_TOKEN_TYPE, JWT_TYPE)


@dataclass(frozen=True, slots=True)
class ExchangeResponse:
    """The token exchange response (RFC 8693 §2.2.1)."""

    access_token: IssuedAccessToken
    issued_token_type: str

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token.value,
            "issued_token_type": self.issued_token_type,
            # An access token either way, usable as a bearer token (§2.2.1 `N_A` is for others).
            "token_type": self.access_token.token_type,
            "expires_in": self.access_token.expires_in,
        }
        if self.access_token.scope:
            body["scope"] = self.access_token.scope
        return body


class TokenExchangeGrant:
    """`grant_type=urn:ietf:params:oauth:grant-type:token-exchange`."""

    grant_type: ClassVar[str] = TOKEN_EXCHANGE_GRANT
    # Exchanging needs a client that authenticates: its policy is what allows the exchange.
    allows_public_clients: ClassVar[bool] = False

    def __init__(self, issuer: TokenIssuer, apis: ApiLookup, tokens: ExchangeTokenReader) -> None:
        self._issuer = issuer
        self._apis = apis
        self._tokens = tokens

    async def handle(
        self, form: Form, client: Client, client_gone: ClientGoneCheck
    ) -> ExchangeResponse:
        requested_type = form.get("requested_token_type") or ACCESS_TOKEN_TYPE
        if requested_type not in _REQUESTABLE:
            raise InvalidRequest("requested_token_type must be access_token or jwt")
        subject_token = form.get("subject_token")
        if subject_token is None:
            raise InvalidRequest("subject_token is required")
        actor_token = form.get("actor_token")
        if actor_token is None and form.get("actor_token_type") is not None:
            raise InvalidRequest("actor_token_type was sent without actor_token")  # §2.1
        subject = await self._tokens.read(
            subject_token, form.get("subject_token_type"), "subject_token", client
        )
        actor = None
        if actor_token is not None:
            actor = await self._tokens.read(
                actor_token, form.get("actor_token_type"), "actor_token", client
            )
        act = _act(subject, actor, client)
        requested = parse_scope(form.get("scope"))
        wider = [scope for scope in requested if scope not in subject.scopes]
        if wider:
            raise InvalidScope(f"scope wider than the subject token's: {' '.join(wider)}")
        target = await resolve_target(
            client, [*form.get_all("resource"), *form.get_all("audience")], requested, self._apis
        )
        api = target.api
        if (act is not None or requested_type == JWT_TYPE) and api.token_format != "jwt":
            raise InvalidTarget("this API's tokens are opaque: they cannot carry act or be a JWT")
        # With no scope asked for: what the client holds on the API, within the subject's.
        scopes = requested or tuple(s for s in target.scopes if s in subject.scopes)
        token = await self._issuer.issue(
            AccessTokenRequest(
                client=client,
                api=api,
                scopes=scopes,
                subject=subject.subject,
                roles=subject.roles,
                extra_claims={"act": dict(act)} if act is not None else {},
                # Never outliving the tokens it came from: exchanging again cannot extend a
                # user's access indefinitely.
                not_after=min(t.expires_at for t in (subject, actor) if t is not None),
            )
        )
        return ExchangeResponse(token, requested_type)


def _act(
    subject: PresentedToken, actor: PresentedToken | None, client: Client
) -> Mapping[str, Any] | None:
    """The `act` of the new token, after checking the subject's `may_act` (§4.4)."""
    if actor is None:
        if not client.exchange_impersonation:
            raise InvalidRequest(
                "actor_token is required: this client may not impersonate (RFC 8693 §1.1)"
            )
        acting: dict[str, Any] = {"sub": client.client_id}
    else:
        acting = {"sub": actor.subject}
        if actor.issuer is not None:
            acting["iss"] = actor.issuer
    if subject.may_act is not None:
        named = {k: subject.may_act[k] for k in ("sub", "iss") if k in subject.may_act}
        if not named or any(acting.get(k) != v for k, v in named.items()):
            raise InvalidRequest("the subject token's may_act does not name this actor (§4.4)")
    if actor is None:
        return subject.act  # impersonation: the subject's own chain, unchanged
    if subject.act is not None:
        acting["act"] = dict(subject.act)  # §4.1: prior actors nested below the current one
    return acting
