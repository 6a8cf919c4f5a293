"""ID token claims, `at_hash` and userinfo claims (OIDC Core §2, §3.1.3.6, §5.4)."""

from __future__ import annotations

import base64
import hashlib

import jwt as pyjwt
import pytest
from authlib.oidc.core.util import create_half_hash
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import RSAKey

from authgate.jose import JWK
from authgate.jose import jwt as ag_jwt
from authgate.server.models import User
from authgate.server.tokens.id_tokens import id_token_claims, token_hash, userinfo_claims
from tests.support.flows import ISSUER, NOW

# From the oidc-token-hash package's README (panva), an independent implementation.
ACCESS_TOKEN = (
    "YmJiZTAwYmYtMzgyOC00NzhkLTkyOTItNjJjNDM3MGYzOWIy9sFhvH8K_x8UIHj1osisS57f5DduL-ar_qw5jl3lthwp"
    "Mjm283aVMQXDmoqqqydDSqJfbhptzw8rUVwkuQbolw"
)


@pytest.mark.parametrize(
    "alg",
    ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "HS256"],
)
def test_token_hash_agrees_with_authlib(alg: str) -> None:
    assert token_hash(ACCESS_TOKEN, alg) == create_half_hash(ACCESS_TOKEN, alg).decode()


def test_token_hash_rs256_known_value() -> None:
    assert token_hash(ACCESS_TOKEN, "RS256") == "x7vk7f6BvQj0jQHYFIk4ag"


@pytest.mark.parametrize(
    ("alg", "crv", "digest"),
    [
        ("EdDSA", "Ed25519", hashlib.sha512(ACCESS_TOKEN.encode()).digest()[:32]),
        ("Ed25519", None, hashlib.sha512(ACCESS_TOKEN.encode()).digest()[:32]),
        ("EdDSA", "Ed448", hashlib.shake_256(ACCESS_TOKEN.encode()).digest(114)[:57]),
        ("Ed448", None, hashlib.shake_256(ACCESS_TOKEN.encode()).digest(114)[:57]),
        ("ES256K", None, hashlib.sha256(ACCESS_TOKEN.encode()).digest()[:16]),
    ],
)
def test_token_hash_eddsa_and_others(alg: str, crv: str | None, digest: bytes) -> None:
    # OpenID Connect Token Hash Algorithms 1.0: SHA-512 for Ed25519, SHAKE256(114) for Ed448.
    assert (
        token_hash(ACCESS_TOKEN, alg, crv) == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    )


def test_token_hash_eddsa_known_value() -> None:
    assert token_hash(ACCESS_TOKEN, "EdDSA", "Ed25519") == (
        "EGEAhGYyfuwDaVTifvrWSoD5MSy_5hZPy6I7Vm-7pTQ"
    )


@pytest.mark.parametrize(("alg", "crv"), [("EdDSA", None), ("none", None), ("RS1", None)])
def test_token_hash_refuses_undefined_algorithms(alg: str, crv: str | None) -> None:
    with pytest.raises(ValueError, match="no token hash"):
        token_hash("x", alg, crv)


def claims(**changes: object) -> dict[str, object]:
    args: dict[str, object] = {
        "issuer": ISSUER,
        "subject": "user-1",
        "client_id": "web-app",
        "now": NOW,
        "lifetime": 300,
        "auth_time": NOW - 20,
        "nonce": "n-0S6_WzA2Mj",
        "access_token": ACCESS_TOKEN,
        "alg": "RS256",
        "amr": ["pwd"],
    }
    args.update(changes)
    return id_token_claims(**args)  # type: ignore[arg-type]


def test_id_token_claims() -> None:
    assert claims() == {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": "web-app",
        "azp": "web-app",
        "iat": NOW,
        "exp": NOW + 300,
        "auth_time": NOW - 20,
        "nonce": "n-0S6_WzA2Mj",
        "at_hash": "x7vk7f6BvQj0jQHYFIk4ag",
        "amr": ["pwd"],
    }


def test_id_token_without_nonce_access_token_or_amr() -> None:
    result = claims(nonce=None, access_token=None, amr=[])
    assert "nonce" not in result
    assert "at_hash" not in result
    assert "amr" not in result


def test_user_claims_never_override_protocol_claims() -> None:
    result = claims(user_claims={"sub": "evil", "iss": "x", "name": "Alice", "aud": "y"})
    assert (result["sub"], result["iss"], result["aud"]) == ("user-1", ISSUER, "web-app")
    assert result["name"] == "Alice"


def test_lifetime_must_be_positive() -> None:
    with pytest.raises(ValueError, match="lifetime"):
        claims(lifetime=0)


def test_id_token_validates_with_pyjwt_and_joserfc() -> None:
    key = JWK.generate("RSA", alg="RS256", kid="k1")
    token = ag_jwt.encode(claims(), key, "RS256")
    public_pem = key.public().to_pem()
    decoded = pyjwt.decode(
        token,
        public_pem,
        algorithms=["RS256"],
        audience="web-app",
        issuer=ISSUER,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert decoded["at_hash"] == create_half_hash(ACCESS_TOKEN, "RS256").decode()
    verified = joserfc_jwt.decode(token, RSAKey.import_key(public_pem))
    assert verified.claims["nonce"] == "n-0S6_WzA2Mj"


def user(**changes: object) -> User:
    base: dict[str, object] = {
        "user_id": "user-1",
        "username": "alice",
        "name": "Alice Liddell",
        "email": "alice@example.com",
        "email_verified": True,
    }
    base.update(changes)
    return User(**base)  # type: ignore[arg-type]


def test_userinfo_by_scope() -> None:
    assert userinfo_claims(user(), ["openid"]) == {"sub": "user-1"}
    assert userinfo_claims(user(), ["openid", "profile"]) == {
        "sub": "user-1",
        "name": "Alice Liddell",
        "preferred_username": "alice",
    }
    assert userinfo_claims(user(), ["openid", "email", "orders:read"]) == {
        "sub": "user-1",
        "email": "alice@example.com",
        "email_verified": True,
    }


def test_userinfo_omits_missing_values() -> None:
    bare = user(name=None, email=None, email_verified=False)
    assert userinfo_claims(bare, ["openid", "profile", "email"]) == {
        "sub": "user-1",
        "preferred_username": "alice",
    }
    unverified = userinfo_claims(user(email_verified=False), ["email"])
    assert unverified["email_verified"] is False
