"""Token verification: hostile tokens get the right rejection (never an exception of another
kind), claims map to a principal, the verified-token cache skips signatures and honours exp."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator

import pytest

from authgate.jose import JWK, jws, jwt
from authgate.verifier import (
    BearerCredential,
    ClaimMapping,
    ConfigError,
    DPoPCredential,
    IssuerConfig,
    Reason,
    TokenCacheConfig,
    TokenRejected,
    Verifier,
    VerifierConfig,
)
from authgate.verifier.dpop import Proof
from authgate.verifier.errors import DESCRIPTIONS
from authgate.verifier.http_fetch import check_fetch_url
from authgate.verifier.principal import principal_from_claims
from tests.support.gate import AUDIENCE, FakeIssuer, ManualClock, forge
from tests.support.tokens import b64url


@pytest.fixture
async def verifier(test_issuer: FakeIssuer, clock: ManualClock) -> AsyncIterator[Verifier]:
    config = IssuerConfig(
        issuer=test_issuer.issuer,
        audiences=(AUDIENCE, "https://other.example.test"),
        jwks_uri=test_issuer.server.url + "/jwks",
        typ="at+jwt",
        leeway=30,
    )
    verifier = Verifier(
        VerifierConfig(issuers=(config,), token_cache=TokenCacheConfig(max_entries=3)),
        clock=clock,
    )
    await verifier.start(background=False)
    yield verifier
    await verifier.aclose()


async def reason_of(verifier: Verifier, token: str) -> Reason:
    with pytest.raises(TokenRejected) as info:
        await verifier.verify_token(token)
    assert info.value.status_code == 401
    assert info.value.error == "invalid_token"
    return info.value.reason


async def test_a_valid_token_gives_a_principal(verifier: Verifier, test_issuer: FakeIssuer) -> None:
    principal = await verifier.verify_token(
        test_issuer.token(scope="orders:read orders:write", roles=["admin"])
    )
    assert principal.subject == "user-1"
    assert principal.client_id == "client-1"
    assert principal.scopes == {"orders:read", "orders:write"}
    assert principal.roles == {"admin"}
    assert principal.issuer == test_issuer.issuer
    assert principal.method == "jwt"
    assert principal.claims["aud"] == AUDIENCE


async def test_alg_none_is_refused_without_any_fetch(
    verifier: Verifier, test_issuer: FakeIssuer
) -> None:
    token = forge({"alg": "none", "typ": "at+jwt"}, test_issuer.claims())
    assert await reason_of(verifier, token) is Reason.SIGNATURE
    token = forge({"alg": "none", "kid": "fresh-kid"}, test_issuer.claims())
    assert await reason_of(verifier, token) is Reason.SIGNATURE
    assert test_issuer.server.hits["/jwks"] == 1


async def test_hmac_signed_with_the_public_key_is_refused(
    verifier: Verifier, test_issuer: FakeIssuer
) -> None:
    public = test_issuer.keys[0].public()
    for secret in (public.to_pem(), json.dumps(public.to_dict()).encode()):
        header = {"alg": "HS256", "typ": "at+jwt", "kid": public.kid}
        unsigned = forge(header, test_issuer.claims()).rsplit(".", 1)[0]
        mac = hmac.new(secret, unsigned.encode(), hashlib.sha256).digest()
        assert await reason_of(verifier, f"{unsigned}.{b64url(mac)}") is Reason.SIGNATURE
    assert test_issuer.server.hits["/jwks"] == 1


async def test_expiry_with_leeway(
    verifier: Verifier, test_issuer: FakeIssuer, clock: ManualClock
) -> None:
    now = int(clock.now)
    assert await reason_of(verifier, test_issuer.token(exp=now - 31)) is Reason.EXPIRED
    assert (await verifier.verify_token(test_issuer.token(exp=now - 5))).subject == "user-1"
    assert await reason_of(verifier, test_issuer.token(nbf=now + 120)) is Reason.NOT_YET_VALID


async def test_wrong_audience_issuer_type_and_missing_exp(
    verifier: Verifier, test_issuer: FakeIssuer
) -> None:
    assert await reason_of(verifier, test_issuer.token(aud="https://evil.test")) is Reason.AUDIENCE
    assert await reason_of(verifier, test_issuer.token(aud=None)) is Reason.AUDIENCE
    assert await verifier.verify_token(test_issuer.token(aud=["x", "https://other.example.test"]))
    assert await reason_of(verifier, test_issuer.token(header={"typ": "JWT"})) is Reason.TYPE
    assert await reason_of(verifier, test_issuer.token(exp=None)) is Reason.CLAIM
    other = test_issuer.token(iss="https://unknown-issuer.test")
    assert await reason_of(verifier, other) is Reason.UNKNOWN_ISSUER
    assert test_issuer.server.hits["/jwks"] == 1  # an unknown issuer fetches nothing


async def test_sender_constrained_tokens_are_not_bearer_tokens(
    verifier: Verifier, test_issuer: FakeIssuer
) -> None:
    # RFC 9449 §7.2 / RFC 8705 §3: a bound token presented as a bearer token is refused, the
    # first time (verified) and every later time (from the cache).
    dpop = test_issuer.token(cnf={"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"})
    mtls = test_issuer.token(cnf={"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"})
    for token in (dpop, mtls):
        assert await reason_of(verifier, token) is Reason.BOUND
        for _ in range(2):
            with pytest.raises(TokenRejected) as info:
                await verifier.authenticate(BearerCredential(token))
            assert info.value.reason is Reason.BOUND
            with pytest.raises(TokenRejected):
                verifier.authenticate_nowait(BearerCredential(token))


def _dpop(token: str, jkt: str) -> DPoPCredential:
    return DPoPCredential(token, Proof(jkt, "jti", 0.0, "GET", "https://api.test/"))


async def test_a_dpop_presentation_needs_the_bound_key(
    verifier: Verifier, test_issuer: FakeIssuer
) -> None:
    jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
    bound = test_issuer.token(cnf={"jkt": jkt})
    for _ in range(2):  # verified, then from the cache
        assert (await verifier.authenticate(_dpop(bound, jkt))).claims["cnf"] == {"jkt": jkt}
    assert verifier.authenticate_nowait(_dpop(bound, jkt)) is not None
    cases = {
        _dpop(bound, "another-key-thumbprint"): Reason.KEY_MISMATCH,
        DPoPCredential(bound): Reason.KEY_MISMATCH,  # a proof that was never checked
        _dpop(test_issuer.token(), jkt): Reason.NOT_DPOP_BOUND,  # not bound at all
        _dpop(test_issuer.token(cnf={"x5t#S256": "x"}), jkt): Reason.NOT_DPOP_BOUND,
        _dpop(test_issuer.token(cnf={"jkt": jkt, "x5t#S256": "x"}), jkt): Reason.NOT_DPOP_BOUND,
        _dpop(test_issuer.token(cnf={"jkt": 7}), jkt): Reason.KEY_MISMATCH,
    }
    for credential, reason in cases.items():
        for _ in range(2):
            with pytest.raises(TokenRejected) as info:
                await verifier.authenticate(credential)
            assert info.value.reason is reason
    assert repr(_dpop(bound, jkt)) == "DPoPCredential(<redacted>)"


async def test_signature_failures_share_one_description(
    verifier: Verifier, test_issuer: FakeIssuer
) -> None:
    impostor = JWK.generate("EC", crv="P-256", kid=test_issuer.keys[0].kid, alg="ES256")
    bad_signature = test_issuer.token(impostor)
    unknown_kid = test_issuer.token(JWK.generate("EC", crv="P-256", kid="nope", alg="ES256"))
    wrong_alg = test_issuer.token(JWK.from_secret(b"k" * 32, kid="h", alg="HS256"))
    descriptions = set()
    for token in (bad_signature, unknown_kid, wrong_alg):
        with pytest.raises(TokenRejected) as info:
            await verifier.verify_token(token)
        descriptions.add(info.value.description)
    assert descriptions == {DESCRIPTIONS[Reason.SIGNATURE]}


@pytest.mark.parametrize(
    "token",
    [
        "abc",
        "a.b.c",
        "a.b.c.d.e",
        "....",
        "eyJhbGciOiJFUzI1NiJ9.e30",
        "eyJhbGciOiJFUzI1NiJ9." + "A" * 100 + ".sig",
        forge({"alg": "ES256"}, {"iss": 123}),
        forge({"alg": "ES256", "kid": 5}, {"iss": "x"}),
        "\u00e9t\u00e9.b.c",
    ],
)
async def test_malformed_tokens_are_invalid_tokens(verifier: Verifier, token: str) -> None:
    assert await reason_of(verifier, token) in {
        Reason.MALFORMED,
        Reason.UNKNOWN_ISSUER,
        Reason.SIGNATURE,
    }


async def test_oversized_token(verifier: Verifier, test_issuer: FakeIssuer) -> None:
    token = test_issuer.token(pad="x" * 20_000)
    assert await reason_of(verifier, token) is Reason.TOO_LARGE


async def test_duplicate_claims_are_refused(verifier: Verifier, test_issuer: FakeIssuer) -> None:
    key = test_issuer.keys[0]
    claims = json.dumps(test_issuer.claims())[:-1] + ', "sub": "admin"}'
    token = jws.sign(claims.encode(), key, "ES256", {"typ": "at+jwt"})
    assert await reason_of(verifier, token) is Reason.MALFORMED


async def test_verified_token_cache_skips_the_signature_check_until_exp(
    verifier: Verifier, test_issuer: FakeIssuer, clock: ManualClock
) -> None:
    token = test_issuer.token(exp=int(clock.now) + 100)
    await verifier.verify_token(token)
    assert verifier.metrics.token_cache_misses == 1
    # The issuer withdraws every key: a cache hit does not need them.
    test_issuer.publish(keys=[test_issuer.new_key()])
    clock.advance(60)
    assert (await verifier.verify_token(token)).subject == "user-1"
    assert verifier.metrics.token_cache_hits == 1
    clock.advance(41)  # past exp: the entry is gone; within the leeway the signature is checked
    assert (await verifier.verify_token(token)).subject == "user-1"
    assert verifier.metrics.token_cache_misses == 2
    clock.advance(30)  # past exp + leeway
    assert await reason_of(verifier, token) is Reason.EXPIRED


async def test_token_cache_is_bounded_and_capped_by_max_ttl(
    verifier: Verifier, test_issuer: FakeIssuer, clock: ManualClock
) -> None:
    tokens = [test_issuer.token(sub=f"u{i}", exp=int(clock.now) + 3600) for i in range(5)]
    for token in tokens:
        await verifier.verify_token(token)
    assert len(verifier.token_cache) == 3
    assert verifier.token_cache.get(tokens[0]) is None
    assert verifier.token_cache.get(tokens[4]) is not None
    clock.advance(301)  # max_ttl (300) passed though exp has not
    assert verifier.token_cache.get(tokens[4]) is None


async def test_authenticate_counts_outcomes(verifier: Verifier, test_issuer: FakeIssuer) -> None:
    token = test_issuer.token()
    await verifier.authenticate(BearerCredential(token))
    await verifier.authenticate(BearerCredential(token))
    with pytest.raises(TokenRejected):
        await verifier.authenticate(BearerCredential(test_issuer.token(aud="x")))
    assert verifier.metrics.outcomes == {"ok": 2, "audience": 1}
    assert verifier.metrics.token_cache_hits == 1
    assert verifier.metrics.latency.count == 3


async def test_hmac_issuer_with_a_configured_secret(clock: ManualClock) -> None:
    secret = b"0123456789abcdef0123456789abcdef"
    config = IssuerConfig(issuer="https://hs.example.test", audiences=(AUDIENCE,), secret=secret)
    verifier = Verifier(VerifierConfig(issuers=(config,)), clock=clock)
    await verifier.start()
    try:
        assert verifier.ready
        claims = {
            "iss": "https://hs.example.test",
            "aud": AUDIENCE,
            "exp": clock.now + 60,
            "sub": "svc",
        }
        token = jwt.encode(claims, JWK.from_secret(secret), "HS256")
        assert (await verifier.verify_token(token)).subject == "svc"
        with_kid = jwt.encode(claims, JWK.from_secret(secret, kid="k-1"), "HS256")
        assert (await verifier.verify_token(with_kid)).subject == "svc"
        forged = jwt.encode(claims, JWK.from_secret(b"x" * 32), "HS256")
        assert await reason_of(verifier, forged) is Reason.SIGNATURE
        es = JWK.generate("EC", crv="P-256", alg="ES256")
        assert await reason_of(verifier, jwt.encode(claims, es, "ES256")) is Reason.SIGNATURE
    finally:
        await verifier.aclose()


def test_claim_mapping_covers_common_issuers() -> None:
    entra = {"sub": "s", "scp": "User.Read Files.Read", "roles": ["Task.Write"], "appid": "app-1"}
    p = principal_from_claims(entra, ClaimMapping(), issuer="i", method="jwt")
    assert p.scopes == {"User.Read", "Files.Read"}
    assert p.roles == {"Task.Write"}
    assert p.client_id == "app-1"
    okta = {"sub": "s", "scp": ["orders:read", 5, ""], "cid": "okta-client"}
    p = principal_from_claims(okta, ClaimMapping(), issuer="i", method="jwt")
    assert p.scopes == {"orders:read"}
    assert p.client_id == "okta-client"
    keycloak = {
        "sub": "s",
        "scope": "openid email",
        "azp": "kc",
        "realm_access": {"roles": ["r"]},
        "resource_access": {"api": {"roles": ["api-admin"]}},
        "groups": ["g"],
    }
    p = principal_from_claims(keycloak, ClaimMapping(), issuer="i", method="jwt")
    assert p.roles == {"r"}
    assert p.client_id == "kc"
    custom = ClaimMapping(roles=(("resource_access", "api", "roles"), ("groups",)))
    p = principal_from_claims(keycloak, custom, issuer="i", method="jwt")
    assert p.roles == {"api-admin", "g"}
    hostile = {"sub": 1, "scope": {"x": 1}, "roles": "Order Admins", "exp": True}
    p = principal_from_claims(hostile, ClaimMapping(), issuer="i", method="jwt")
    assert p.subject is None
    assert p.scopes == frozenset()
    assert p.roles == {"Order Admins"}
    assert p.expires_at is None


# Separators that str.split() honours and RFC 6749 §3.3 does not (only U+0020 separates scopes).
HOSTILE_SEPARATORS = [
    "\u00a0",
    "\u3000",
    "\t",
    "\n",
    "\r",
    "\x0b",
    "\x0c",
    "\x1f",
    "\u2003",
    "\u2028",
]


@pytest.mark.parametrize("separator", HOSTILE_SEPARATORS)
@pytest.mark.parametrize("claim", ["scope", "scp"])
def test_scope_strings_split_on_spaces_only(separator: str, claim: str) -> None:
    claims = {"sub": "s", claim: f"profile read{separator}write"}
    p = principal_from_claims(claims, ClaimMapping(), issuer="i", method="jwt")
    assert p.scopes == {"profile"}  # "read<sep>write" is no scope token: neither read nor write


def test_scope_strings_drop_empty_items_and_arrays_only_where_documented() -> None:
    mapping = ClaimMapping()
    p = principal_from_claims({"scope": "  read   write "}, mapping, issuer="i", method="jwt")
    assert p.scopes == {"read", "write"}
    # `scope` is a string (RFC 9068 §2.2.3, RFC 7662 §2.2): an array there adds nothing.
    p = principal_from_claims({"scope": ["read", "write"]}, mapping, issuer="i", method="jwt")
    assert p.scopes == frozenset()
    # `scp` may be an array (Okta); each element is one scope token, or nothing.
    okta = {"scp": ["read", "read write", "a\tb", "caf\u00e9", 'q"'], "scope": "x"}
    p = principal_from_claims(okta, mapping, issuer="i", method="jwt")
    assert p.scopes == {"read", "x"}
    # A configured array claim (Auth0 `permissions`) is read as documented.
    auth0 = ClaimMapping(scopes=(("scope",), ("permissions",)))
    claims = {"scope": "openid", "permissions": ["read:orders", "write:orders"]}
    p = principal_from_claims(claims, auth0, issuer="i", method="jwt")
    assert p.scopes == {"openid", "read:orders", "write:orders"}


async def test_hostile_scope_separators_grant_nothing_through_the_verifier(
    verifier: Verifier, test_issuer: FakeIssuer
) -> None:
    for separator in HOSTILE_SEPARATORS:
        token = test_issuer.token(scope=f"orders:read{separator}orders:write")
        principal = await verifier.verify_token(token)
        assert principal.scopes == frozenset(), repr(separator)
    principal = await verifier.verify_token(test_issuer.token(scope=["orders:read"]))
    assert principal.scopes == frozenset()


def test_issuer_configuration_is_checked_when_built() -> None:
    assert IssuerConfig(issuer="https://x.test", audiences=["a"]).audiences == ("a",)
    with pytest.raises(ConfigError, match="HS512 needs a secret of at least 64 bytes"):
        IssuerConfig(
            issuer="https://x.test", audiences=("a",), secret=b"s" * 32, algorithms=("HS512",)
        )
    with pytest.raises(ConfigError, match="needs a configured secret"):
        IssuerConfig(issuer="https://x.test", audiences=("a",), algorithms=("RS256", "HS256"))
    with pytest.raises(ConfigError, match="audiences"):
        IssuerConfig(issuer="https://x.test", audiences=())
    with pytest.raises(ConfigError, match="https"):
        IssuerConfig(issuer="https://x.test", audiences=("a",), jwks_uri="http://10.0.0.1/k")
    with pytest.raises(ConfigError, match="unsupported algorithm"):
        IssuerConfig(issuer="https://x.test", audiences=("a",), algorithms=("none",))


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://idp.example.com/jwks", True),
        ("http://127.0.0.1:8000/jwks", True),
        ("http://127.9.9.9/jwks", True),
        ("http://[::1]:8000/jwks", True),
        ("http://localhost/jwks", True),
        ("http://idp.example.com/jwks", False),
        ("http://10.0.0.1/jwks", False),
        ("http://[::ffff:127.0.0.1]/jwks", False),
        ("https://user:pass@idp.example.com/jwks", False),
        ("https://idp.example.com/jwks#frag", False),
        ("ftp://idp.example.com/jwks", False),
        ("https:///jwks", False),
        ("https://idp.example.com:99999/jwks", False),
    ],
)
def test_only_https_or_loopback_http_is_fetched(url: str, allowed: bool) -> None:
    if allowed:
        assert check_fetch_url(url) == url
    else:
        with pytest.raises(ValueError):
            check_fetch_url(url)
