"""Authorization codes: issuing them and the checks made when one is redeemed (RFC 6749 §4.1.2,
§4.1.3, §10.5; RFC 7636 §4.6; RFC 8707 §2.2; RFC 9700 §2.1.1, §4.5, §4.8.2).

A code is 256 random bits (`secret_key.generate_token`), stored only under its keyed hash, valid
for at most 60 seconds, used once, and bound to the client, the redirect URI, the PKCE challenge,
the scopes, the API identifiers (audiences), the nonce and the user's sign-in. Every token issued
from a code carries its `grant_id`, so that when the code is presented again
(`CodeRedemption.first_use` is False) the token endpoint revokes them all (RFC 6749 §4.1.2) through
`GrantRevoker.revoke_grant`.

The token endpoint first consumes the code atomically (`AuthorizationCodeStore.consume_code`), then
calls `check_redemption`: a failed check still uses the code up, so a stolen code cannot be tried
repeatedly.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from authgate.oauth.errors import InvalidGrant, InvalidTarget
from authgate.server.flows import pkce
from authgate.server.flows.authorization_request import AuthorizationRequest
from authgate.server.models import AuthorizationCode
from authgate.server.secret_key import generate_token

if TYPE_CHECKING:
    from authgate.server.storage.protocols import AuthorizationCodeStore, GrantRevoker

__all__ = [
    "MAX_CODE_LIFETIME",
    "check_redemption",
    "issue_code",
    "redeem_code",
]

MAX_CODE_LIFETIME = 60  # seconds; RFC 6749 §4.1.2 recommends at most 10 minutes, we allow one


def issue_code(
    request: AuthorizationRequest,
    *,
    hash_code: Callable[[str], str],
    user_id: str,
    auth_time: int,
    amr: Iterable[str],
    scopes: Iterable[str],
    audiences: Iterable[str],
    now: int,
    lifetime: int = MAX_CODE_LIFETIME,
) -> tuple[str, AuthorizationCode]:
    """A new code for an approved request: `(code, record)`; store the record, send the code.

    `scopes` and `audiences` are what the request resolved to and the user approved;
    `hash_code` is the server's keyed token hash (`ServerSecret.hash_token`).
    """
    if not 0 < lifetime <= MAX_CODE_LIFETIME:
        raise ValueError(f"code lifetime must be 1-{MAX_CODE_LIFETIME} seconds")
    code = generate_token()
    record = AuthorizationCode(
        code_hash=hash_code(code),
        grant_id=secrets.token_urlsafe(16),
        client_id=request.client_id,
        redirect_uri=request.redirect_uri,
        redirect_uri_in_request=request.redirect_uri_in_request,
        code_challenge=request.code_challenge,
        scopes=tuple(scopes),
        audiences=tuple(audiences),
        nonce=request.nonce,
        user_id=user_id,
        auth_time=auth_time,
        amr=tuple(amr),
        issued_at=now,
        expires_at=now + lifetime,
        dpop_jkt=request.dpop_jkt,
    )
    return code, record


def check_redemption(
    code: AuthorizationCode,
    *,
    client_id: str,
    redirect_uri: str | None,
    code_verifier: str | None,
    resources: Iterable[str] = (),
    now: int,
) -> tuple[str, ...]:
    """Check a token request against the consumed code; return the audiences to issue for.

    `client_id` is the authenticated client; `resources` the token request's RFC 8707 values,
    which may narrow the code's audiences but never widen them (`InvalidTarget`). Everything else
    raises `InvalidGrant`, or `InvalidRequest` for a malformed verifier.
    """
    if code.client_id != client_id:
        raise InvalidGrant("the code was issued to another client")  # RFC 6749 §4.1.3
    if now >= code.expires_at:
        raise InvalidGrant("the code has expired")
    if code.redirect_uri_in_request:
        # RFC 6749 §4.1.3: present and identical when the authorization request carried it.
        if redirect_uri != code.redirect_uri:
            raise InvalidGrant("redirect_uri does not match the authorization request")
    elif redirect_uri is not None and redirect_uri != code.redirect_uri:
        raise InvalidGrant("redirect_uri does not match the authorization request")
    pkce.check_verifier(code.code_challenge, code_verifier)
    wanted = tuple(dict.fromkeys(resources))
    if not wanted:
        return code.audiences
    if not set(wanted).issubset(code.audiences):
        raise InvalidTarget("resource was not part of the authorization request")  # RFC 8707 §2.2
    return wanted


async def redeem_code(
    store: AuthorizationCodeStore,
    revoker: GrantRevoker,
    code_hash: str,
    *,
    client_id: str,
    redirect_uri: str | None,
    code_verifier: str | None,
    resources: Iterable[str] = (),
    now: int,
) -> tuple[AuthorizationCode, tuple[str, ...]]:
    """The token endpoint's use of a code: consume it, then check it (`check_redemption`).

    Returns the code and the audiences to issue for. A code used before raises `InvalidGrant`
    after revoking every token issued under its `grant_id` (RFC 6749 §4.1.2, RFC 9700 §4.5.3).
    """
    redemption = await store.consume_code(code_hash, now)
    if redemption is None:
        raise InvalidGrant("unknown authorization code")
    if not redemption.first_use:
        await revoker.revoke_grant(redemption.code.grant_id, now)
        raise InvalidGrant("the authorization code was already used")
    audiences = check_redemption(
        redemption.code,
        client_id=client_id,
        redirect_uri=redirect_uri,
        code_verifier=code_verifier,
        resources=resources,
        now=now,
    )
    return redemption.code, audiences
