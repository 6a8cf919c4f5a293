"""What the authorization endpoint does next for a validated request: ask the user to sign in, ask
for consent, or issue a code (OpenID Connect Core §3.1.2.1 `prompt` and `max_age`, §3.1.2.3,
§3.1.2.4, §3.1.2.6 errors; RFC 6749 §4.1.1).

`prompt=login` (and `select_account`, which this server satisfies by a fresh sign-in) and
`prompt=consent` are satisfied by a sign-in or an approval made at or after the request's
`requested_at`, so the endpoint does not loop when it resumes the same request after the page.
`prompt=none` never shows a page: it fails with `login_required` or `consent_required`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from authgate.oauth.errors import ConsentRequired, LoginRequired
from authgate.server.flows.authorization_request import AuthorizationRequest
from authgate.server.flows.consent import consent_covers
from authgate.server.models import ConsentGrant

__all__ = ["Step", "next_step"]


class Step(enum.Enum):
    """The next thing the authorization endpoint does."""

    LOGIN = "login"
    CONSENT = "consent"
    ISSUE = "issue"


def next_step(
    request: AuthorizationRequest,
    *,
    auth_time: int | None,
    consent: ConsentGrant | None,
    scopes: Iterable[str],
    audiences: Iterable[str],
    now: int,
    consent_needed: bool = True,
) -> Step:
    """Decide from the session's `auth_time` (None: not signed in) and the remembered `consent`.

    `scopes` and `audiences` are what the request resolved to, hence what an approval records:
    not the requested scopes, which may hold `offline_access` that the server drops for a client
    without the refresh-token grant (OIDC Core §11), so that an approval of the request always
    covers it and the consent page is not shown again in a loop. `consent_needed=False` lets a
    deployment skip the consent page for a client it trusts (unless `prompt=consent`). Raises
    `LoginRequired` or `ConsentRequired` (to be sent to the redirect URI) for `prompt=none`.
    """
    if _needs_login(request, auth_time, now):
        if "none" in request.prompt:
            raise LoginRequired("the user is not signed in or must sign in again")
        return Step.LOGIN
    prompted = "consent" in request.prompt and (
        consent is None or consent.granted_at < request.requested_at
    )
    covered = consent_covers(consent, scopes, audiences) or not consent_needed
    if prompted or not covered:
        if "none" in request.prompt:
            raise ConsentRequired("the user has not approved this request")
        return Step.CONSENT
    return Step.ISSUE


def _needs_login(request: AuthorizationRequest, auth_time: int | None, now: int) -> bool:
    if auth_time is None:
        return True
    if request.prompt & {"login", "select_account"} and auth_time < request.requested_at:
        return True
    # OIDC Core §3.1.2.1: re-authenticate when the sign-in is older than max_age seconds.
    return request.max_age is not None and now - auth_time > request.max_age
