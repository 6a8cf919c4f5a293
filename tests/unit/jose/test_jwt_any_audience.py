"""`audience=jwt.ANY_AUDIENCE`: any `aud` will do, but there must be a well-formed one."""

from __future__ import annotations

import inspect
from collections.abc import Collection
from typing import Any

import pytest

from authgate.jose import JWK, ExpiredToken, InvalidClaim, NotYetValid, jwt

KEY = JWK.generate("OKP", crv="Ed25519", alg="EdDSA")
NOW = 1_700_000_000
CLAIMS: dict[str, Any] = {"iss": "https://issuer.example", "sub": "alice", "exp": NOW + 60}


def _decode(claims: dict[str, Any], **options: Any) -> dict[str, Any]:
    token = jwt.encode(claims, KEY, "EdDSA")
    options.setdefault("audience", jwt.ANY_AUDIENCE)
    return jwt.decode(token, KEY.public(), algorithms=["EdDSA"], now=NOW, **options)


@pytest.mark.parametrize("aud", ["api", "https://other.example", ["a", "b"], ["x"]])
def test_any_audience_accepts_every_well_formed_aud(aud: object) -> None:
    assert _decode({**CLAIMS, "aud": aud})["aud"] == aud


def test_any_audience_still_requires_an_aud() -> None:
    with pytest.raises(InvalidClaim, match="no audience") as caught:
        _decode(CLAIMS)
    assert caught.value.claim == "aud"


@pytest.mark.parametrize("aud", [None, 7, [], [1], ["a", None], {"a": 1}, True])
def test_any_audience_refuses_a_malformed_aud(aud: object) -> None:
    with pytest.raises(InvalidClaim) as caught:
        _decode({**CLAIMS, "aud": aud})
    assert caught.value.claim == "aud"


def test_any_audience_checks_every_other_claim() -> None:
    claims = {**CLAIMS, "aud": "api"}
    with pytest.raises(ExpiredToken):
        _decode({**claims, "exp": NOW - 1})
    with pytest.raises(NotYetValid):
        _decode({**claims, "nbf": NOW + 10})
    with pytest.raises(InvalidClaim, match="issuer"):
        _decode(claims, issuer="https://elsewhere.example")
    with pytest.raises(InvalidClaim, match="jti"):
        _decode(claims, required=["jti"])
    with pytest.raises(InvalidClaim, match="typ"):
        _decode(claims, typ="at+jwt")
    with pytest.raises(InvalidClaim, match="sub"):
        _decode({**claims, "sub": 1})


def test_any_audience_in_validate_claims_and_nested_tokens() -> None:
    jwt.validate_claims({"aud": ["a"]}, audience=jwt.ANY_AUDIENCE)
    with pytest.raises(InvalidClaim):
        jwt.validate_claims({}, audience=jwt.ANY_AUDIENCE)
    recipient = JWK.generate("EC", crv="P-256")
    token = jwt.encode_nested(
        {**CLAIMS, "aud": "api"}, KEY, "EdDSA", recipient.public(), "ECDH-ES", "A128GCM"
    )
    claims = jwt.decode_nested(
        token,
        recipient,
        KEY.public(),
        algorithms=["EdDSA"],
        key_algorithms=["ECDH-ES"],
        encryptions=["A128GCM"],
        audience=jwt.ANY_AUDIENCE,
        now=NOW,
    )
    assert claims["aud"] == "api"


def test_without_an_audience_option_nothing_changed() -> None:
    # The default is still "no audience expected": a token naming one is refused.
    for function in (jwt.decode, jwt.decode_nested, jwt.validate_claims):
        assert inspect.signature(function).parameters["audience"].default is None
    assert _decode(CLAIMS, audience=None) == CLAIMS
    with pytest.raises(InvalidClaim, match="none is expected"):
        _decode({**CLAIMS, "aud": "api"}, audience=None)


def test_the_sentinel_is_no_audience_value() -> None:
    # Not a string nor a collection: it can never be mistaken for (or match) a real audience.
    assert not isinstance(jwt.ANY_AUDIENCE, str | Collection)
    assert repr(jwt.ANY_AUDIENCE) == "jwt.ANY_AUDIENCE"
    with pytest.raises(InvalidClaim):
        _decode({**CLAIMS, "aud": "jwt.ANY_AUDIENCE"}, audience="api")
