"""Next step of the authorization endpoint: login, consent or issue (OIDC Core §3.1.2.1, §3.1.2.6),
remembered consent, and the identity scopes."""

from __future__ import annotations

import dataclasses

import pytest

from authgate.oauth.errors import ConsentRequired, LoginRequired
from authgate.server.flows.authorization_request import (
    AuthorizationRequest,
    parse_authorization_request,
)
from authgate.server.flows.consent import consent_covers, record_consent
from authgate.server.flows.interaction import Step, next_step
from authgate.server.models import ConsentGrant
from authgate.server.targets.identity_scopes import describe_scopes, split_scopes
from tests.support.flows import NOW, FakeClient

API = "https://api.example.com"


def request(**changes: object) -> AuthorizationRequest:
    base = parse_authorization_request(
        [
            ("response_type", "code"),
            ("client_id", "web-app"),
            ("redirect_uri", "https://app.example.com/callback"),
            ("scope", "openid orders:read"),
            ("state", "s"),
        ],
        FakeClient(),
        requested_at=NOW,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def grant(scopes: set[str] | None = None, granted_at: int = NOW - 1000) -> ConsentGrant:
    return ConsentGrant(
        "alice",
        "web-app",
        frozenset(scopes or {"openid", "orders:read"}),
        frozenset({API}),
        granted_at,
    )


def step(req: AuthorizationRequest, auth_time: int | None, consent: ConsentGrant | None) -> Step:
    return next_step(
        req,
        auth_time=auth_time,
        consent=consent,
        scopes=req.scopes,
        audiences=[API],
        now=NOW + 5,
    )


def test_not_signed_in_asks_for_login() -> None:
    assert step(request(), None, grant()) is Step.LOGIN


def test_signed_in_without_consent_asks_for_consent() -> None:
    assert step(request(), NOW - 60, None) is Step.CONSENT


def test_signed_in_with_covering_consent_issues() -> None:
    assert step(request(), NOW - 60, grant()) is Step.ISSUE


def test_consent_for_fewer_scopes_asks_again() -> None:
    assert step(request(), NOW - 60, grant({"openid"})) is Step.CONSENT


def test_consent_for_another_api_asks_again() -> None:
    other = dataclasses.replace(grant(), audiences=frozenset({"https://other.example"}))
    assert step(request(), NOW - 60, other) is Step.CONSENT


def test_prompt_login_forces_a_new_sign_in_once() -> None:
    req = request(prompt=frozenset({"login"}))
    assert step(req, NOW - 60, grant()) is Step.LOGIN
    # After the sign-in made for this request, the same request continues instead of looping.
    assert step(req, NOW + 3, grant()) is Step.ISSUE


def test_select_account_is_a_fresh_sign_in() -> None:
    assert step(request(prompt=frozenset({"select_account"})), NOW - 60, grant()) is Step.LOGIN


def test_prompt_consent_forces_consent_once() -> None:
    req = request(prompt=frozenset({"consent"}))
    assert step(req, NOW - 60, grant()) is Step.CONSENT
    assert step(req, NOW - 60, grant(granted_at=NOW + 2)) is Step.ISSUE


def test_max_age() -> None:
    # Judged at NOW + 5: a sign-in at NOW - 95 is exactly 100 s old, at NOW - 96 it is 101 s old.
    assert step(request(max_age=100), NOW - 95, grant()) is Step.ISSUE
    assert step(request(max_age=100), NOW - 96, grant()) is Step.LOGIN
    assert step(request(max_age=0), NOW + 5, grant()) is Step.ISSUE
    assert step(request(max_age=0), NOW + 4, grant()) is Step.LOGIN


def test_prompt_none_never_shows_a_page() -> None:
    req = request(prompt=frozenset({"none"}))
    with pytest.raises(LoginRequired):
        step(req, None, grant())
    with pytest.raises(ConsentRequired):
        step(req, NOW - 60, None)
    with pytest.raises(LoginRequired):
        step(dataclasses.replace(req, max_age=10), NOW - 60, grant())
    assert step(req, NOW - 60, grant()) is Step.ISSUE


def test_trusted_client_may_skip_consent_unless_prompted() -> None:
    def skip(req: AuthorizationRequest) -> Step:
        return next_step(
            req,
            auth_time=NOW,
            consent=None,
            scopes=req.scopes,
            audiences=[API],
            now=NOW,
            consent_needed=False,
        )

    assert skip(request()) is Step.ISSUE
    assert skip(request(prompt=frozenset({"consent"}))) is Step.CONSENT


def test_an_approval_covers_the_resolved_scopes_not_the_requested_ones() -> None:
    """`offline_access` requested by a client without the refresh-token grant is dropped (OIDC
    Core §11): the approval records the resolved scopes, and they are what must be covered, or
    the consent page comes back after every approval."""
    req = request(scopes=("openid", "orders:read", "offline_access"))
    approved = grant({"openid", "orders:read"}, granted_at=NOW + 1)
    resolved = ("openid", "orders:read")
    assert (
        next_step(
            req, auth_time=NOW, consent=approved, scopes=resolved, audiences=[API], now=NOW + 5
        )
        is Step.ISSUE
    )
    prompted = dataclasses.replace(req, prompt=frozenset({"consent"}))
    assert (
        next_step(
            prompted, auth_time=NOW, consent=approved, scopes=resolved, audiences=[API], now=NOW + 5
        )
        is Step.ISSUE
    )
    # What the client may really get still needs the user's approval.
    assert step(req, NOW, approved) is Step.CONSENT


def test_consent_covers() -> None:
    assert consent_covers(grant(), ["openid"], [API])
    assert consent_covers(grant(), [], [])
    assert not consent_covers(None, [], [])
    assert not consent_covers(grant(), ["openid", "orders:write"], [API])
    assert not consent_covers(grant(), ["openid"], [API, "https://other.example"])


def test_record_consent_adds_to_what_was_allowed() -> None:
    first = record_consent(
        None, user_id="alice", client_id="web-app", scopes=["a"], audiences=[API], now=NOW
    )
    second = record_consent(
        first, user_id="alice", client_id="web-app", scopes=["b"], audiences=["urn:x"], now=NOW + 9
    )
    assert second.scopes == {"a", "b"}
    assert second.audiences == {API, "urn:x"}
    assert second.granted_at == NOW + 9


def test_record_consent_refuses_to_merge_someone_else() -> None:
    with pytest.raises(ValueError, match="another user"):
        record_consent(
            grant(), user_id="mallory", client_id="web-app", scopes=[], audiences=[], now=NOW
        )


def test_split_scopes() -> None:
    identity, api = split_scopes(["orders:read", "openid", "email", "offline_access", "x"])
    assert identity == ("openid", "email", "offline_access")
    assert api == ("orders:read", "x")


def test_describe_scopes() -> None:
    described = describe_scopes(["openid", "orders:read", "orders:write"], {"orders:read": "Read"})
    assert [(d.name, d.description) for d in described] == [
        ("openid", "Confirm your identity (your user identifier)"),
        ("orders:read", "Read"),
        ("orders:write", "orders:write"),
    ]
