"""Authorization codes: issuance and the redemption checks (RFC 6749 §4.1.3, RFC 7636 §4.6,
RFC 8707 §2.2, RFC 9700 §4.5 and §4.8)."""

from __future__ import annotations

import dataclasses

import pytest

from authgate.oauth.errors import InvalidGrant, InvalidRequest, InvalidTarget
from authgate.server.flows.authorization_request import (
    AuthorizationRequest,
    parse_authorization_request,
)
from authgate.server.flows.codes import MAX_CODE_LIFETIME, check_redemption, issue_code, redeem_code
from authgate.server.flows.pkce import s256_challenge
from authgate.server.models import AuthorizationCode
from authgate.server.storage.memory import MemoryCodeStore, MemoryGrantRevoker
from tests.support.flows import NOW, FakeClient, keyed_hash

VERIFIER = "verifier-" + "x" * 40
REDIRECT = "https://app.example.com/callback"
API = "https://api.example.com"


def request(*, pkce: bool = True, redirect: bool = True) -> AuthorizationRequest:
    pairs = [
        ("response_type", "code"),
        ("client_id", "web-app"),
        ("scope", "openid orders:read"),
        ("state", "s"),
        ("nonce", "n-123"),
    ]
    if redirect:
        pairs.append(("redirect_uri", REDIRECT))
    else:
        pairs[2] = ("scope", "orders:read")
    if pkce:
        pairs += [("code_challenge", s256_challenge(VERIFIER)), ("code_challenge_method", "S256")]
    return parse_authorization_request(pairs, FakeClient(), requested_at=NOW)


def issue(req: AuthorizationRequest | None = None) -> tuple[str, AuthorizationCode]:
    return issue_code(
        req or request(),
        hash_code=keyed_hash,
        user_id="user-1",
        auth_time=NOW - 30,
        amr=["pwd"],
        scopes=["openid", "orders:read"],
        audiences=[API],
        now=NOW,
    )


def redeem(code: AuthorizationCode, **changes: object) -> tuple[str, ...]:
    args: dict[str, object] = {
        "client_id": "web-app",
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
        "now": NOW + 5,
    }
    args.update(changes)
    return check_redemption(code, **args)  # type: ignore[arg-type]


def test_issued_code_is_random_256_bits_and_stored_hashed() -> None:
    code, record = issue()
    assert len(code) == 43  # 32 bytes, base64url
    assert record.code_hash == keyed_hash(code)
    assert code not in repr(record)
    assert issue()[0] != code


def test_code_binds_everything() -> None:
    _, record = issue()
    assert record.client_id == "web-app"
    assert record.redirect_uri == REDIRECT
    assert record.redirect_uri_in_request
    assert record.code_challenge == s256_challenge(VERIFIER)
    assert record.scopes == ("openid", "orders:read")
    assert record.audiences == (API,)
    assert record.nonce == "n-123"
    assert (record.user_id, record.auth_time, record.amr) == ("user-1", NOW - 30, ("pwd",))
    assert record.expires_at - record.issued_at == MAX_CODE_LIFETIME
    assert record.grant_id
    assert record.grant_id != issue()[1].grant_id


@pytest.mark.parametrize("lifetime", [0, -1, MAX_CODE_LIFETIME + 1, 600])
def test_code_lifetime_is_at_most_60_seconds(lifetime: int) -> None:
    with pytest.raises(ValueError, match="lifetime"):
        issue_code(
            request(),
            hash_code=keyed_hash,
            user_id="u",
            auth_time=NOW,
            amr=[],
            scopes=[],
            audiences=[],
            now=NOW,
            lifetime=lifetime,
        )


def test_valid_redemption_returns_audiences() -> None:
    _, record = issue()
    assert redeem(record) == (API,)


def test_other_client_is_refused() -> None:
    _, record = issue()
    with pytest.raises(InvalidGrant, match="another client"):
        redeem(record, client_id="attacker")


def test_expired_code_is_refused() -> None:
    _, record = issue()
    redeem(record, now=record.expires_at - 1)
    with pytest.raises(InvalidGrant, match="expired"):
        redeem(record, now=record.expires_at)


@pytest.mark.parametrize(
    "redirect_uri",
    [None, "https://app.example.com/callback/", "https://evil.example/callback", REDIRECT + "?x"],
)
def test_redirect_uri_must_repeat_exactly(redirect_uri: str | None) -> None:
    _, record = issue()
    with pytest.raises(InvalidGrant, match="redirect_uri"):
        redeem(record, redirect_uri=redirect_uri)


def test_redirect_uri_may_be_omitted_when_the_request_omitted_it() -> None:
    _, record = issue(request(redirect=False))
    assert not record.redirect_uri_in_request
    assert redeem(record, redirect_uri=None) == (API,)
    assert redeem(record, redirect_uri=REDIRECT) == (API,)
    with pytest.raises(InvalidGrant):
        redeem(record, redirect_uri="https://evil.example/callback")


def test_pkce_mismatch_is_refused() -> None:
    _, record = issue()
    with pytest.raises(InvalidGrant, match="does not match"):
        redeem(record, code_verifier="y" * 43)


def test_pkce_missing_verifier_is_refused() -> None:
    _, record = issue()
    with pytest.raises(InvalidGrant):
        redeem(record, code_verifier=None)


def test_pkce_downgrade_is_refused() -> None:
    # A code issued without PKCE cannot be redeemed with a verifier (RFC 9700 §4.8.2).
    _, record = issue(request(pkce=False))
    with pytest.raises(InvalidGrant, match="without code_challenge"):
        redeem(record, code_verifier=VERIFIER)
    assert redeem(record, code_verifier=None) == (API,)


def test_malformed_verifier_is_invalid_request() -> None:
    _, record = issue()
    with pytest.raises(InvalidRequest):
        redeem(record, code_verifier="short")


def test_resource_may_narrow_but_not_widen() -> None:
    _, record = issue()
    record = dataclasses.replace(record, audiences=(API, "urn:b"))
    assert redeem(record) == (API, "urn:b")
    assert redeem(record, resources=[API]) == (API,)
    assert redeem(record, resources=[API, API]) == (API,)
    with pytest.raises(InvalidTarget):
        redeem(record, resources=["https://other.example"])
    with pytest.raises(InvalidTarget):
        redeem(record, resources=[API, "https://other.example"])


def test_checks_run_in_order_client_first() -> None:
    """Another client learns nothing about the code (not even that it expired)."""
    _, record = issue()
    with pytest.raises(InvalidGrant, match="another client"):
        redeem(record, client_id="attacker", now=record.expires_at + 100, code_verifier=None)


# -- the token endpoint's use of a code, through a store --------------------------------------


async def redeem_through(
    store: MemoryCodeStore, revoker: MemoryGrantRevoker, code: str, **changes: object
) -> tuple[AuthorizationCode, tuple[str, ...]]:
    args: dict[str, object] = {
        "client_id": "web-app",
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
        "now": NOW + 5,
    }
    args.update(changes)
    return await redeem_code(store, revoker, keyed_hash(code), **args)  # type: ignore[arg-type]


async def test_redeem_once() -> None:
    store, revoker = MemoryCodeStore(), MemoryGrantRevoker()
    code, record = issue()
    await store.save_code(record)
    redeemed, audiences = await redeem_through(store, revoker, code)
    assert redeemed == record
    assert audiences == (API,)
    assert revoker.revoked == []


async def test_replay_fails_and_revokes_the_grant() -> None:
    store, revoker = MemoryCodeStore(), MemoryGrantRevoker()
    code, record = issue()
    await store.save_code(record)
    await redeem_through(store, revoker, code)
    with pytest.raises(InvalidGrant, match="already used"):
        await redeem_through(store, revoker, code)
    assert revoker.revoked == [record.grant_id]


async def test_unknown_code() -> None:
    with pytest.raises(InvalidGrant, match="unknown"):
        await redeem_through(MemoryCodeStore(), MemoryGrantRevoker(), "never-issued")


async def test_failed_check_still_uses_the_code_up() -> None:
    """A stolen code tried with a wrong verifier is dead afterwards, also for its owner."""
    store, revoker = MemoryCodeStore(), MemoryGrantRevoker()
    code, record = issue()
    await store.save_code(record)
    with pytest.raises(InvalidGrant, match="does not match"):
        await redeem_through(store, revoker, code, code_verifier="w" * 43)
    with pytest.raises(InvalidGrant, match="already used"):
        await redeem_through(store, revoker, code)
