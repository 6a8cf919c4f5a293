"""JWK against RFC 7517 Appendices A (example key sets), B (x5c) and C (an encrypted private key).

The literals are the RFC's own; the same values ship in jwcrypto's `tests.py`. RFC 7517 A.1's RSA
key is also RFC 7638 §3.1's thumbprint example (see `test_vectors_rfc7638.py`).
"""

from __future__ import annotations

import base64

import pytest

from authgate.jose import JWK, AlgorithmNotAllowed, InvalidKey, JWKSet, jwe, jws

# RFC 7517 A.1: a set of public keys.
A1_PUBLIC = {
    "keys": [
        {
            "kty": "EC",
            "crv": "P-256",
            "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
            "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM",
            "use": "enc",
            "kid": "1",
        },
        {
            "kty": "RSA",
            "n": (
                "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1"
                "L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4"
                "QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbO"
                "pbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csF"
                "Cur-kEgU8awapJzKnqDKgw"
            ),
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29",
        },
    ],
}


# RFC 7517 A.2: the same keys with their private members.
A2_PRIVATE = {
    "keys": [
        {
            "kty": "EC",
            "crv": "P-256",
            "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
            "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM",
            "d": "870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE",
            "use": "enc",
            "kid": "1",
        },
        {
            "kty": "RSA",
            "n": (
                "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1"
                "L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4"
                "QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbO"
                "pbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csF"
                "Cur-kEgU8awapJzKnqDKgw"
            ),
            "e": "AQAB",
            "d": (
                "X4cTteJY_gn4FYPsXB8rdXix5vwsg1FLN5E3EaG6RJoVH-HLLKD9M7dx5oo7GURknchnrRweUkC7hT5f"
                "JLM0WbFAKNLWY2vv7B6NqXSzUvxT0_YSfqijwp3RTzlBaCxWp4doFk5N2o8Gy_nHNKroADIkJ46pRUoh"
                "sXywbReAdYaMwFs9tv8d_cPVY3i07a3t8MN6TNwm0dSawm9v47UiCl3Sk5ZiG7xojPLu4sbg1U2jx4IB"
                "TNBznbJSzFHK66jT8bgkuqsk0GjskDJk19Z4qwjwbsnn4j2WBii3RL-Us2lGVkY8fkFzme1z0HbIkfz0"
                "Y6mqnOYtqc0X4jfcKoAC8Q"
            ),
            "p": (
                "83i-7IvMGXoMXCskv73TKr8637FiO7Z27zv8oj6pbWUQyLPQBQxtPVnwD20R-60eTDmD2ujnMt5PoqMr"
                "m8RfmNhVWDtjjMmCMjOpSXicFHj7XOuVIYQyqVWlWEh6dN36GVZYk93N8Bc9vY41xy8B9RzzOGVQzXvN"
                "Evn7O0nVbfs"
            ),
            "q": (
                "3dfOR9cuYq-0S-mkFLzgItgMEfFzB2q3hWehMuG0oCuqnb3vobLyumqjVZQO1dIrdwgTnCdpYzBcOfW5"
                "r370AFXjiWft_NGEiovonizhKpo9VVS78TzFgxkIdrecRezsZ-1kYd_s1qDbxtkDEgfAITAG9LUnADun"
                "4vIcb6yelxk"
            ),
            "dp": (
                "G4sPXkc6Ya9y8oJW9_ILj4xuppu0lzi_H7VTkS8xj5SdX3coE0oimYwxIi2emTAue0UOa5dpgFGyBJ4c"
                "8tQ2VF402XRugKDTP8akYhFo5tAA77Qe_NmtuYZc3C3m3I24G2GvR5sSDxUyAN2zq8Lfn9EUms6rY3Ob"
                "8YeiKkTiBj0"
            ),
            "dq": (
                "s9lAH9fggBsoFR8Oac2R_E2gw282rT2kGOAhvIllETE1efrA6huUUvMfBcMpn8lqeW6vzznYY5SSQF7p"
                "MdC_agI3nG8Ibp1BUb0JUiraRNqUfLhcQb_d9GF4Dh7e74WbRsobRonujTYN1xCaP6TO61jvWrX-L18t"
                "xXw494Q_cgk"
            ),
            "qi": (
                "GyM_p6JrXySiz1toFgKbWV-JdI3jQ4ypu9rbMWx3rQJBfmt0FoYzgUIZEVFEcOqwemRN81zoDAaa-Bk0"
                "KWNGDjJHZDdDmFhW3AN7lI-puxk_mHZGJ11rxyR8O55XLSe3SPmRfKwZI6yU24ZxvQKFYItdldUKGzO6"
                "Ia6zTKhAVRU"
            ),
            "alg": "RS256",
            "kid": "2011-04-29",
        },
    ],
}


# RFC 7517 A.3: symmetric keys.
A3_SYMMETRIC = {
    "keys": [
        {
            "kty": "oct",
            "alg": "A128KW",
            "k": "GawgguFyGrWKav7AX4VKUg",
        },
        {
            "kty": "oct",
            "k": (
                "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1"
                "Z9CAow"
            ),
            "kid": "HMAC key used in JWS A.1 example",
        },
    ],
}


# RFC 7517 B: an RSA key with its certificate chain (x5c is standard base64).
B_X5C = {
    "kty": "RSA",
    "use": "sig",
    "kid": "1b94c",
    "n": (
        "vrjOfz9Ccdgx5nQudyhdoR17V-IubWMeOZCwX_jj0hgAsz2J_pqYW08PLbK_PdiVGKPrqzmDIsLI7sA2"
        "5VEnHU1uCLNwBuUiCO11_-7dYbsr4iJmG0Qu2j8DsVyT1azpJC_NG84Ty5KKthuCaPod7iI7w0LK9orS"
        "MhBEwwZDCxTWq4aYWAchc8t-emd9qOvWtVMDC2BXksRngh6X5bUYLy6AyHKvj-nUy1wgzjYQDwHMTplC"
        "oLtU-o-8SNnZ1tmRoGE9uJkBLdh5gFENabWnU5m1ZqZPdwS-qo-meMvVfJb6jJVWRpl2SUtCnYG2C32q"
        "vbWbjZ_jBPD5eunqsIo1vQ"
    ),
    "e": "AQAB",
    "x5c": [
        (
            "MIIDQjCCAiqgAwIBAgIGATz/FuLiMA0GCSqGSIb3DQEBBQUAMGIxCzAJBgNVBAYTAlVTMQswCQYDVQQI"
            "EwJDTzEPMA0GA1UEBxMGRGVudmVyMRwwGgYDVQQKExNQaW5nIElkZW50aXR5IENvcnAuMRcwFQYDVQQD"
            "Ew5CcmlhbiBDYW1wYmVsbDAeFw0xMzAyMjEyMzI5MTVaFw0xODA4MTQyMjI5MTVaMGIxCzAJBgNVBAYT"
            "AlVTMQswCQYDVQQIEwJDTzEPMA0GA1UEBxMGRGVudmVyMRwwGgYDVQQKExNQaW5nIElkZW50aXR5IENv"
            "cnAuMRcwFQYDVQQDEw5CcmlhbiBDYW1wYmVsbDCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEB"
            "AL64zn8/QnHYMeZ0LncoXaEde1fiLm1jHjmQsF/449IYALM9if6amFtPDy2yvz3YlRij66s5gyLCyO7A"
            "NuVRJx1NbgizcAblIgjtdf/u3WG7K+IiZhtELto/A7Fck9Ws6SQvzRvOE8uSirYbgmj6He4iO8NCyvaK"
            "0jIQRMMGQwsU1quGmFgHIXPLfnpnfajr1rVTAwtgV5LEZ4Iel+W1GC8ugMhyr4/p1MtcIM42EA8BzE6Z"
            "QqC7VPqPvEjZ2dbZkaBhPbiZAS3YeYBRDWm1p1OZtWamT3cEvqqPpnjL1XyW+oyVVkaZdklLQp2Btgt9"
            "qr21m42f4wTw+Xrp6rCKNb0CAwEAATANBgkqhkiG9w0BAQUFAAOCAQEAh8zGlfSlcI0o3rYDPBB07aXN"
            "swb4ECNIKG0CETTUxmXl9KUL+9gGlqCz5iWLOgWsnrcKcY0vXPG9J1r9AqBNTqNgHq2G03X09266X5Cp"
            "Oe1zFo+Owb1zxtp3PehFdfQJ610CDLEaS9V9Rqp17hCyybEpOGVwe8fnk+fbEL2Bo3UPGrpsHzUoaGpD"
            "ftmWssZkhpBJKVMJyf/RuP2SmmaIzmnw9JiSlYhzo4tpzd5rFXhjRbg4zW9C+2qok+2+qDM1iJ684gPH"
            "MIY8aLWrdgQTxkumGmTqgawR+N5MDtdPTEQ0XfIBc2cJEUyMTY5MPvACWpkA6SdS4xSvdXK3IVfOWA=="
        ),
    ],
}


# RFC 7517 C.1: the RSA private key that Appendix C encrypts with PBES2.
C1_PRIVATE = {
    "kty": "RSA",
    "kid": "juliet@capulet.lit",
    "use": "enc",
    "n": (
        "t6Q8PWSi1dkJj9hTP8hNYFlvadM7DflW9mWepOJhJ66w7nyoK1gPNqFMSQRyO125Gp-TEkodhWr0iujj"
        "HVx7BcV0llS4w5ACGgPrcAd6ZcSR0-Iqom-QFcNP8Sjg086MwoqQU_LYywlAGZ21WSdS_PERyGFiNnj3"
        "QQlO8Yns5jCtLCRwLHL0Pb1fEv45AuRIuUfVcPySBWYnDyGxvjYGDSM-AqWS9zIQ2ZilgT-GqUmipg0X"
        "OC0Cc20rgLe2ymLHjpHciCKVAbY5-L32-lSeZO-Os6U15_aXrk9Gw8cPUaX1_I8sLGuSiVdt3C_Fn2PZ"
        "3Z8i744FPFGGcG1qs2Wz-Q"
    ),
    "e": "AQAB",
    "d": (
        "GRtbIQmhOZtyszfgKdg4u_N-R_mZGU_9k7JQ_jn1DnfTuMdSNprTeaSTyWfSNkuaAwnOEbIQVy1IQbWV"
        "V25NY3ybc_IhUJtfri7bAXYEReWaCl3hdlPKXy9UvqPYGR0kIXTQRqns-dVJ7jahlI7LyckrpTmrM8dW"
        "Bo4_PMaenNnPiQgO0xnuToxutRZJfJvG4Ox4ka3GORQd9CsCZ2vsUDmsXOfUENOyMqADC6p1M3h33tsu"
        "rY15k9qMSpG9OX_IJAXmxzAh_tWiZOwk2K4yxH9tS3Lq1yX8C1EWmeRDkK2ahecG85-oLKQt5VEpWHKm"
        "jOi_gJSdSgqcN96X52esAQ"
    ),
    "p": (
        "2rnSOV4hKSN8sS4CgcQHFbs08XboFDqKum3sc4h3GRxrTmQdl1ZK9uw-PIHfQP0FkxXVrx-WE-ZEbrqi"
        "vH_2iCLUS7wAl6XvARt1KkIaUxPPSYB9yk31s0Q8UK96E3_OrADAYtAJs-M3JxCLfNgqh56HDnETTQhH"
        "3rCT5T3yJws"
    ),
    "q": (
        "1u_RiFDP7LBYh3N4GXLT9OpSKYP0uQZyiaZwBtOCBNJgQxaj10RWjsZu0c6Iedis4S7B_coSKB0Kj9Pa"
        "PaBzg-IySRvvcQuPamQu66riMhjVtG6TlV8CLCYKrYl52ziqK0E_ym2QnkwsUX7eYTB7LbAHRK9GqocD"
        "E5B0f808I4s"
    ),
    "dp": (
        "KkMTWqBUefVwZ2_Dbj1pPQqyHSHjj90L5x_MOzqYAJMcLMZtbUtwKqvVDq3tbEo3ZIcohbDtt6SbfmWz"
        "ggabpQxNxuBpoOOf_a_HgMXK_lhqigI4y_kqS1wY52IwjUn5rgRrJ-yYo1h41KR-vz2pYhEAeYrhttWt"
        "xVqLCRViD6c"
    ),
    "dq": (
        "AvfS0-gRxvn0bwJoMSnFxYcK1WnuEjQFluMGfwGitQBWtfZ1Er7t1xDkbN9GQTB9yqpDoYaN06H7CFtr"
        "kxhJIBQaj6nkF5KKS3TQtQ5qCzkOkmxIe3KRbBymXxkb5qwUpX5ELD5xFc6FeiafWYY63TmmEAu_lRFC"
        "OJ3xDea-ots"
    ),
    "qi": (
        "lSQi-w9CpyUReMErP1RsBLk7wNtOvs5EQpPqmuMvqW57NBUczScEoPwmUqqabu9V0-Py4dQ57_bapoKR"
        "u1R90bvuFnU63SHWEFglZQvJDMeAvmj4sm-Fp0oYu_neotgQ0hzbI5gry7ajdYy9-2lNx_76aBZoOUu9"
        "HCJ-UsfSOI8"
    ),
}

# RFC 7515 A.1.1: a JWS made with A.3's HMAC key.
RFC7515_A1_TOKEN = (
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxl"
    "LmNvbS9pc19yb290Ijp0cnVlfQ"
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)


def test_a1_public_key_set_imports_and_exports_unchanged() -> None:
    jwks = JWKSet.from_dict(A1_PUBLIC, strict=True)
    assert len(jwks) == 2
    assert jwks.skipped == 0
    ec, rsa = jwks.get("1"), jwks.get("2011-04-29")
    assert ec is not None
    assert rsa is not None
    assert (ec.kty, ec.crv, ec.use, ec.is_private) == ("EC", "P-256", "enc", False)
    assert (rsa.kty, rsa.alg, rsa.is_private) == ("RSA", "RS256", False)
    assert jwks.to_dict() == A1_PUBLIC


def test_a2_private_keys_match_their_public_halves() -> None:
    private = JWKSet.from_dict(A2_PRIVATE, strict=True)
    assert all(key.is_private for key in private)
    assert private.to_dict(private=True) == A2_PRIVATE
    # Exporting without private members gives exactly A.1.
    assert private.to_dict() == A1_PUBLIC
    for key in private:
        assert key.public().to_dict() == next(k for k in A1_PUBLIC["keys"] if k["kid"] == key.kid)


def test_a2_keys_are_bound_by_their_metadata() -> None:
    private = JWKSet.from_dict(A2_PRIVATE)
    ec, rsa = private.get("1"), private.get("2011-04-29")
    assert ec is not None
    assert rsa is not None
    # "use": "enc": this EC key never signs.
    with pytest.raises(InvalidKey):
        jws.sign(b"payload", ec, "ES256")
    # "alg": "RS256": this RSA key signs RS256 only.
    token = jws.sign(b"payload", rsa, "RS256")
    assert jws.verify(token, rsa.public(), ["RS256"]).payload == b"payload"
    with pytest.raises(InvalidKey):
        jws.sign(b"payload", rsa, "PS256")


def test_a3_symmetric_keys() -> None:
    keys = JWKSet.from_dict(A3_SYMMETRIC, strict=True)
    wrap_key, hmac_key = list(keys)
    assert (wrap_key.alg, len(base64.urlsafe_b64decode(A3_SYMMETRIC["keys"][0]["k"] + "=="))) == (
        "A128KW",
        16,
    )
    assert keys.to_dict(private=True) == A3_SYMMETRIC
    # The HMAC key is the one RFC 7515 A.1 signs with.
    assert jws.verify(RFC7515_A1_TOKEN, hmac_key, ["HS256"]).header["typ"] == "JWT"
    # The key-wrap key (alg A128KW) cannot be used as an HMAC key.
    with pytest.raises(InvalidKey):
        jws.verify(RFC7515_A1_TOKEN, wrap_key, ["HS256"])
    # Nor can a symmetric key be exported without its secret.
    with pytest.raises(InvalidKey):
        hmac_key.to_dict()


def test_b_x5c_certificate_is_checked_against_the_key() -> None:
    key = JWK.from_dict(B_X5C)
    assert key.x5c == tuple(B_X5C["x5c"])
    assert key.to_dict() == B_X5C
    # RFC 7517 §4.7: the first certificate MUST match the key; one that certifies another key is
    # refused.
    other = dict(B_X5C, n=A1_PUBLIC["keys"][1]["n"])
    with pytest.raises(InvalidKey):
        JWK.from_dict(other)
    # x5c values are standard base64 (not base64url) DER.
    with pytest.raises(InvalidKey):
        JWK.from_dict(dict(B_X5C, x5c=[B_X5C["x5c"][0].replace("/", "_")]))
    with pytest.raises(InvalidKey):
        JWK.from_dict(dict(B_X5C, x5c=[]))


def test_c1_private_key_imports_and_is_bound_to_encryption() -> None:
    """C.1 is the plaintext key; C.2-C.8 encrypt it with PBES2-HS256+A128KW.

    The key imports (kid, "use": "enc", CRT members all consistent). authgate does not offer
    PBES2 (see docs/jwe.md: its `p2c` lets the sender choose the recipient's CPU cost), so the
    encrypted form is not decrypted here; a JWE with C.3's protected header is refused by name.
    """
    key = JWK.from_dict(C1_PRIVATE)
    assert (key.kid, key.use, key.is_private) == ("juliet@capulet.lit", "enc", True)
    assert key.to_dict(private=True) == C1_PRIVATE
    with pytest.raises(InvalidKey):
        jws.sign(b"payload", key, "RS256")  # "use": "enc"
    protected = base64.urlsafe_b64encode(
        b'{"alg":"PBES2-HS256+A128KW","p2s":"2WCTcJZ1Rvd_CJuJripQ1w","p2c":4096,'
        b'"enc":"A128CBC-HS256","cty":"jwk+json"}'
    ).rstrip(b"=")
    token = protected.decode() + ".AAAA.AAAA.AAAA.AAAA"
    with pytest.raises(AlgorithmNotAllowed):
        jwe.decrypt(token, key, algorithms=["PBES2-HS256+A128KW"], encryptions=["A128CBC-HS256"])
