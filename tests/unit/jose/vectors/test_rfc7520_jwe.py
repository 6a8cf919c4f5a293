"""JWE against the published examples: RFC 7520 §5 and §6 (JOSE Cookbook), RFC 7516 Appendix A,
RFC 7518 Appendix B (AES_CBC_HMAC_SHA2) and Appendix C (ECDH-ES Concat KDF), RFC 8037 (X25519).

The RFC 7520 and RFC 8037 examples are read from `tests/vectors/rfc7520-cookbook/` (see
SOURCES.md). The RFC 7516 and RFC 7518 values are copied from the RFC texts; the same literals ship
in jwcrypto's `tests.py` (RFC 7516 A.1-A.3) and in many JOSE libraries' test suites.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from authgate.jose import JWK, AlgorithmNotAllowed, jwe, jwt
from authgate.jose._content_encryption import CONTENT_CIPHERS
from authgate.jose._key_management import concat_kdf, ecdh_shared_secret, unwrap, wrap
from authgate.jose.encoding import b64url_decode
from authgate.jose.jwe import _encrypt
from tests.support.tokens import b64url_bytes

# -- RFC 7520 §5: the JOSE Cookbook ----------------------------------------------------------------

# Sections with a compact serialization and a supported algorithm. 5.10-5.13 exist only in the JSON
# serializations (AAD, unprotected headers, several recipients), which this library does not offer.
SUPPORTED = {
    "5_2": "RSA-OAEP with A256GCM (RSA-OAEP is randomized: all but the encrypted key reproduce)",
    "5_4": "ECDH-ES+A128KW with A128GCM",
    "5_5": "ECDH-ES with A128CBC-HS256",
    "5_6": "dir with A128GCM",
    "5_7": "A256GCMKW with A128CBC-HS256",
    "5_8": "A128KW with A128GCM",
}
# Section -> what the refusal names.
REJECTED = {
    "5_1": "RSA1_5",  # RSAES-PKCS1-v1_5 is not offered
    "5_3": "PBES2",  # password-based key management is not offered
    "5_9": "zip",  # compressed content is not offered
}


def _cookbook(vectors_dir: Path, section: str) -> dict[str, Any]:
    (path,) = (vectors_dir / "rfc7520-cookbook" / "jwe").glob(f"{section}.*.json")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _without_encrypted_key(token: str) -> list[str]:
    header, _, iv, ciphertext, tag = token.split(".")
    return [header, iv, ciphertext, tag]


@pytest.mark.parametrize("section", sorted(SUPPORTED))
def test_cookbook_decrypts(vectors_dir: Path, section: str) -> None:
    case = _cookbook(vectors_dir, section)
    inp = case["input"]
    result = jwe.decrypt(
        case["output"]["compact"],
        JWK.from_dict(inp["key"]),
        algorithms=[inp["alg"]],
        encryptions=[inp["enc"]],
    )
    assert result.plaintext == inp["plaintext"].encode()
    assert result.header == case["encrypting_content"]["protected"]


@pytest.mark.parametrize("section", sorted(SUPPORTED))
def test_cookbook_encrypts_byte_for_byte(vectors_dir: Path, section: str) -> None:
    case = _cookbook(vectors_dir, section)
    inp, generated, encrypting = case["input"], case["generated"], case.get("encrypting_key", {})
    protected = case["encrypting_content"]["protected"]
    fixed: dict[str, Any] = {"_iv": b64url_decode(generated["iv"])}
    if "cek" in generated:
        fixed["_cek"] = b64url_decode(generated["cek"])
    if "epk" in encrypting:
        fixed["_epk"] = JWK.from_dict(encrypting["epk"])
    if "iv" in encrypting:
        fixed["_wrap_iv"] = b64url_decode(encrypting["iv"])
    key = JWK.from_dict(inp["key"])
    header = {"kid": protected["kid"]}
    token = _encrypt(inp["plaintext"].encode(), key, inp["alg"], inp["enc"], header, **fixed)
    expected = case["output"]["compact"]
    if inp["alg"].startswith("RSA-OAEP"):
        assert _without_encrypted_key(token) == _without_encrypted_key(expected)
        assert jwe.decrypt(token, key, algorithms=[inp["alg"]], encryptions=[inp["enc"]])
    else:
        assert token == expected


def test_cookbook_ecdh_es_derives_the_published_cek(vectors_dir: Path) -> None:
    case = _cookbook(vectors_dir, "5_5")
    key = JWK.from_dict(case["input"]["key"])
    header = case["encrypting_content"]["protected"]
    cek = unwrap("ECDH-ES", "A128CBC-HS256", key, header, b"")
    assert b64url_bytes(cek).decode() == case["encrypting_key"]["cek"]


@pytest.mark.parametrize("section", sorted(REJECTED))
def test_cookbook_unsupported_sections_are_rejected(vectors_dir: Path, section: str) -> None:
    case = _cookbook(vectors_dir, section)
    key = JWK.from_dict(case["input"]["key"]) if "key" in case["input"] else JWK.generate("oct")
    alg = case["input"]["alg"]
    allowed = [alg] if alg == "A128KW" else ["RSA-OAEP-256"]
    with pytest.raises(AlgorithmNotAllowed, match=REJECTED[section]):
        jwe.decrypt(
            case["output"]["compact"], key, algorithms=allowed, encryptions=[case["input"]["enc"]]
        )


def test_cookbook_unsupported_algorithms_cannot_even_be_allowed() -> None:
    key = JWK.generate("oct", size=128)
    for alg in ("RSA1_5", "PBES2-HS512+A256KW"):
        with pytest.raises(AlgorithmNotAllowed, match="not supported"):
            jwe.decrypt("a.b.c.d.e", key, algorithms=[alg], encryptions=["A128GCM"])


def test_rfc7520_section6_nested_jwt(vectors_dir: Path) -> None:
    case = json.loads(
        (vectors_dir / "rfc7520-cookbook" / "6.nesting_signatures_and_encryption.json").read_text()
    )
    claims = jwt.decode_nested(
        case["encrypt"]["output"]["compact"],
        JWK.from_dict(case["encrypt"]["input"]["key"]),
        JWK.from_dict(case["sign"]["input"]["key"]).public(),
        algorithms=["PS256"],
        key_algorithms=["RSA-OAEP"],
        encryptions=["A128GCM"],
        issuer="hobbiton.example",
        now=1300819380 - 60,
    )
    assert claims == json.loads(case["sign"]["input"]["payload"])


# -- RFC 8037: ECDH-ES with X25519 (the CFRG-curves example in the cookbook repository) ------------


def test_rfc8037_x25519_ecdh_es(vectors_dir: Path) -> None:
    case = json.loads(
        (vectors_dir / "rfc7520-cookbook" / "curve25519" / "ecdh-es.json").read_text()
    )
    result = jwe.decrypt(
        case["output"]["compact"],
        JWK.from_dict(case["input"]["key"]),
        algorithms=["ECDH-ES"],
        encryptions=["A128GCM"],
    )
    assert result.plaintext == case["input"]["plaintext"].encode()
    assert result.header["epk"]["crv"] == "X25519"


# -- RFC 7516 Appendix A ---------------------------------------------------------------------------

# RFC 7516 A.1: RSAES-OAEP and AES GCM (key, CEK, IV and the compact result from the RFC).
A1_KEY = {
    "kty": "RSA",
    "n": (
        "oahUIoWw0K0usKNuOR6H4wkf4oBUXHTxRvgb48E-BVvxkeDNjbC4he8rUWcJoZmds2h7M70imEVhRU5djINXtq"
        "llXI4DFqcI1DgjT9LewND8MW2Krf3Spsk_ZkoFnilakGygTwpZ3uesH-PFABNIUYpOiN15dsQRkgr0vEhxN92i"
        "2asbOenSZeyaxziK72UwxrrKoExv6kc5twXTq4h-QChLOln0_mtUZwfsRaMStPs6mS6XrgxnxbWhojf663tuEQ"
        "ueGC-FCMfra36C9knDFGzKsNa7LZK2djYgyD3JR_MB_4NUJW_TqOQtwHYbxevoJArm-L5StowjzGy-_bq6Gw"
    ),
    "e": "AQAB",
    "d": (
        "kLdtIj6GbDks_ApCSTYQtelcNttlKiOyPzMrXHeI-yk1F7-kpDxY4-WY5NWV5KntaEeXS1j82E375xxhWMHXyv"
        "jYecPT9fpwR_M9gV8n9Hrh2anTpTD93Dt62ypW3yDsJzBnTnrYu1iwWRgBKrEYY46qAZIrA2xAwnm2X7uGR1hg"
        "hkqDp0Vqj3kbSCz1XyfCs6_LehBwtxHIyh8Ripy40p24moOAbgxVw3rxT_vlt3UVe4WO3JkJOzlpUf-KTVI2Pt"
        "gm-dARxTEtE-id-4OJr0h-K-VFs3VSndVTIznSxfyrj8ILL6MG_Uv8YAu7VILSB3lOW085-4qE3DzgrTjgyQ"
    ),
    "p": (
        "1r52Xk46c-LsfB5P442p7atdPUrxQSy4mti_tZI3Mgf2EuFVbUoDBvaRQ-SWxkbkmoEzL7JXroSBjSrK3YIQgY"
        "dMgyAEPTPjXv_hI2_1eTSPVZfzL0lffNn03IXqWF5MDFuoUYE0hzb2vhrlN_rKrbfDIwUbTrjjgieRbwC6Cl0"
    ),
    "q": (
        "wLb35x7hmQWZsWJmB_vle87ihgZ19S8lBEROLIsZG4ayZVe9Hi9gDVCOBmUDdaDYVTSNx_8Fyw1YYa9XGrGnDe"
        "w00J28cRUoeBB_jKI1oma0Orv1T9aXIWxKwd4gvxFImOWr3QRL9KEBRzk2RatUBnmDZJTIAfwTs0g68UZHvtc"
    ),
    "dp": (
        "ZK-YwE7diUh0qR1tR7w8WHtolDx3MZ_OTowiFvgfeQ3SiresXjm9gZ5KLhMXvo-uz-KUJWDxS5pFQ_M0evdo1d"
        "KiRTjVw_x4NyqyXPM5nULPkcpU827rnpZzAJKpdhWAgqrXGKAECQH0Xt4taznjnd_zVpAmZZq60WPMBMfKcuE"
    ),
    "dq": (
        "Dq0gfgJ1DdFGXiLvQEZnuKEN0UUmsJBxkjydc3j4ZYdBiMRAy86x0vHCjywcMlYYg4yoC4YZa9hNVcsjqA3Fei"
        "L19rk8g6Qn29Tt0cj8qqyFpz9vNDBUfCAiJVeESOjJDZPYHdHY8v1b-o-Z2X5tvLx-TCekf7oxyeKDUqKWjis"
    ),
    "qi": (
        "VIMpMYbPf47dT1w_zDUXfPimsSegnMOA1zTaX7aGk_8urY6R8-ZW1FxU7AlWAyLWybqq6t16VFd7hQd0y6flUK"
        "4SlOydB61gwanOsXGOAOv82cHq0E3eL4HrtZkUuKvnPrMnsUUFlfUdybVzxyjz9JF_XyaY14ardLSjf4L_FNY"
    ),
}
A1_PLAINTEXT = b"The true sign of intelligence is not knowledge but imagination."
A1_CEK = bytes([177, 161, 244, 128, 84, 143, 225, 115, 63, 180, 3, 255, 107, 154, 212, 246, 138, 7,
                110, 91, 112, 46, 34, 105, 47, 130, 203, 46, 122, 234, 64, 252])  # fmt: skip
A1_IV = bytes([227, 197, 117, 252, 2, 219, 233, 68, 180, 225, 77, 219])
A1_TOKEN = (
    "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ."
    "OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03JGeipsEdY3mx_etLbbWSrFr05kLzcSr4qKA"
    "q7YN7e9jwQRb23nfa6c9d-StnImGyFDbSv04uVuxIp5Zms1gNxKKK2Da14B8S4rzVRltdYwam_lDp5XnZAYpQdb76FdIKLaV"
    "mqgfwX7XWRxv2322i-vDxRfqNzo_tETKzpVLzfiwQyeyPGLBIO56YJ7eObdv0je81860ppamavo35UgoRdbYaBcoh9QcfylQ"
    "r66oc6vFWXRcZ_ZT2LawVCWTIy3brGPi6UklfCpIMfIjf7iGdXKHzg."
    "48V1_ALb6US04U3b."
    "5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6jiSdiwkIr3ajwQzaBtQD_A."
    "XFBoMYUZodetZdvTiFvSkQ"
)

# RFC 7516 A.2: RSAES-PKCS1-v1_5 and AES_128_CBC_HMAC_SHA_256: we do not offer RSA1_5.
A2_TOKEN = (
    "eyJhbGciOiJSU0ExXzUiLCJlbmMiOiJBMTI4Q0JDLUhTMjU2In0."
    "UGhIOguC7IuEvf_NPVaXsGMoLOmwvc1GyqlIKOK1nN94nHPoltGRhWhw7Zx0-kFm1NJn8LE9XShH59_i8J0PH5ZZyNfGy2xG"
    "dULU7sHNF6Gp2vPLgNZ__deLKxGHZ7PcHALUzoOegEI-8E66jX2E4zyJKx-YxzZIItRzC5hlRirb6Y5Cl_p-ko3YvkkysZIF"
    "NPccxRU7qve1WYPxqbb2Yw8kZqa2rMWI5ng8OtvzlV7elprCbuPhcCdZ6XDP0_F8rkXds2vE4X-ncOIM8hAYHHi29NX0mcKi"
    "RaD0-D-ljQTP-cFPgwCp6X-nZZd9OHBv-B3oWh2TbqmScqXMR4gp_A."
    "AxY8DCtDaGlsbGljb3RoZQ."
    "KDlTtXchhZTGufMYmOYGS4HffxPSUrfmqCHXaI9wOGY."
    "9hH0vgRfYgPnAHOd8stkvw"
)

# RFC 7516 A.3: AES Key Wrap and AES_128_CBC_HMAC_SHA_256 (fully deterministic given CEK and IV).
A3_KEY = {"kty": "oct", "k": "GawgguFyGrWKav7AX4VKUg"}
A3_CEK = bytes([4, 211, 31, 197, 84, 157, 252, 254, 11, 100, 157, 250, 63, 170, 106, 206, 107, 124,
                212, 45, 111, 107, 9, 219, 200, 177, 0, 240, 143, 156, 44, 207])  # fmt: skip
A3_IV = bytes([3, 22, 60, 12, 43, 67, 104, 105, 108, 108, 105, 99, 111, 116, 104, 101])
A3_TOKEN = (
    "eyJhbGciOiJBMTI4S1ciLCJlbmMiOiJBMTI4Q0JDLUhTMjU2In0."
    "6KB707dM9YTIgHtLvtgWQ8mKwboJW3of9locizkDTHzBC2IlrT1oOQ."
    "AxY8DCtDaGlsbGljb3RoZQ."
    "KDlTtXchhZTGufMYmOYGS4HffxPSUrfmqCHXaI9wOGY."
    "U0m_YmjN04DJvceFICbCVQ"
)


def test_rfc7516_a1_rsa_oaep_a256gcm() -> None:
    key = JWK.from_dict(A1_KEY)
    result = jwe.decrypt(A1_TOKEN, key, algorithms=["RSA-OAEP"], encryptions=["A256GCM"])
    assert result.plaintext == A1_PLAINTEXT
    assert result.header == {"alg": "RSA-OAEP", "enc": "A256GCM"}
    ours = _encrypt(A1_PLAINTEXT, key.public(), "RSA-OAEP", "A256GCM", None, _cek=A1_CEK, _iv=A1_IV)
    # RSA-OAEP is randomized; everything else is fixed by the CEK and IV.
    assert _without_encrypted_key(ours) == _without_encrypted_key(A1_TOKEN)


def test_rfc7516_a2_rsa1_5_is_refused() -> None:
    key = JWK.generate("RSA")
    with pytest.raises(AlgorithmNotAllowed, match="RSA1_5"):
        jwe.decrypt(A2_TOKEN, key, algorithms=["RSA-OAEP-256"], encryptions=["A128CBC-HS256"])
    with pytest.raises(AlgorithmNotAllowed, match="RSA1_5"):
        jwe.encrypt(b"Live long and prosper.", key, "RSA1_5", "A128CBC-HS256")


def test_rfc7516_a3_aes_key_wrap_a128cbc_hs256() -> None:
    key = JWK.from_dict(A3_KEY)
    result = jwe.decrypt(A3_TOKEN, key, algorithms=["A128KW"], encryptions=["A128CBC-HS256"])
    assert result.plaintext == b"Live long and prosper."
    ours = _encrypt(
        b"Live long and prosper.", key, "A128KW", "A128CBC-HS256", None, _cek=A3_CEK, _iv=A3_IV
    )
    assert ours == A3_TOKEN


# -- RFC 7518 Appendix B: AES_CBC_HMAC_SHA2 test cases ---------------------------------------------

B_PLAINTEXT = bytes.fromhex(
    "41206369706865722073797374656d206d757374206e6f7420626520726571756972656420746f2062652073656372"
    "65742c20616e64206974206d7573742062652061626c6520746f2066616c6c20696e746f207468652068616e647320"
    "6f662074686520656e656d7920776974686f757420696e636f6e76656e69656e6365"
)
B_IV = bytes.fromhex("1af38c2dc2b96ffdd86694092341bc04")
B_AAD = b"The second principle of Auguste Kerckhoffs"
APPENDIX_B = {
    "A128CBC-HS256": (
        "c80edfa32ddf39d5ef00c0b468834279a2e46a1b8049f792f76bfe54b903a9c9a94ac9b47ad2655c5f10f9aef7142"
        "7e2fc6f9b3f399a221489f16362c703233609d45ac69864e3321cf82935ac4096c86e133314c54019e8ca7980dfa4"
        "b9cf1b384c486f3a54c51078158ee5d79de59fbd34d848b3d69550a67646344427ade54b8851ffb598f7f80074b947"
        "3c82e2db",
        "652c3fa36b0a7c5b3219fab3a30bc1c4",
    ),
    "A192CBC-HS384": (
        "ea65da6b59e61edb419be62d19712ae5d303eeb50052d0dfd6697f77224c8edb000d279bdc14c1072654bd30944230"
        "c657bed4ca0c9f4a8466f22b226d1746214bf8cfc2400add9f5126e479663fc90b3bed787a2f0ffcbf3904be2a641d"
        "5c2105bfe591bae23b1d7449e532eef60a9ac8bb6c6b01d35d49787bcd57ef484927f280adc91ac0c4e79c7b11efc6"
        "0054e3",
        "8490ac0e58949bfe51875d733f93ac2075168039ccc733d7",
    ),
    "A256CBC-HS512": (
        "4affaaadb78c31c5da4b1b590d10ffbd3dd8d5d302423526912da037ecbcc7bd822c301dd67c373bccb584ad3e9279"
        "c2e6d12a1374b77f077553df829410446b36ebd97066296ae6427ea75c2e0846a11a09ccf5370dc80bfecbad28c73f"
        "09b3a3b75e662a2594410ae496b2e2e6609e31e6e02cc837f053d21f37ff4f51950bbe2638d09dd7a4930930806d07"
        "03b1f6",
        "4dd3b4c088a7f45c216839645b2012bf2e6269a8c56a816dbc1b267761955bc5",
    ),
}


@pytest.mark.parametrize("enc", sorted(APPENDIX_B))
def test_rfc7518_appendix_b(enc: str) -> None:
    cipher = CONTENT_CIPHERS[enc]
    key = bytes(range(cipher.key_size))  # K = 00 01 02 ... in every test case
    ciphertext, tag = (bytes.fromhex(h) for h in APPENDIX_B[enc])
    assert cipher.encrypt(key, B_IV, B_PLAINTEXT, B_AAD) == (ciphertext, tag)
    assert cipher.decrypt(key, B_IV, ciphertext, tag, B_AAD) == B_PLAINTEXT


# -- RFC 7518 Appendix C: ECDH-ES key agreement computation ----------------------------------------

ALICE_EPK = {
    "kty": "EC",
    "crv": "P-256",
    "x": "gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0",
    "y": "SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps",
    "d": "0_NxaRPUMQoAJt50Gz8YiTr8gRTwyEaCumd-MToTmIo",
}
BOB = {
    "kty": "EC",
    "crv": "P-256",
    "x": "weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ",
    "y": "e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck",
    "d": "VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw",
}
# fmt: off
APPENDIX_C_Z = bytes([158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156,
                      251, 49, 110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196])
# fmt: on
APPENDIX_C_KEY = "VqqN6vgjbSBcIijNcacQGg"


def test_rfc7518_appendix_c_concat_kdf() -> None:
    derived = concat_kdf(APPENDIX_C_Z, "A128GCM", b"Alice", b"Bob", 16)
    assert b64url_bytes(derived).decode() == APPENDIX_C_KEY


def test_rfc7518_appendix_c_both_sides() -> None:
    bob = JWK.from_dict(BOB)
    epk_public = {name: ALICE_EPK[name] for name in ("kty", "crv", "x", "y")}
    assert ecdh_shared_secret(bob, epk_public) == APPENDIX_C_Z
    header = {
        "alg": "ECDH-ES",
        "enc": "A128GCM",
        "apu": "QWxpY2U",
        "apv": "Qm9i",
        "epk": epk_public,
    }
    assert b64url_bytes(unwrap("ECDH-ES", "A128GCM", bob, header, b"")).decode() == APPENDIX_C_KEY
    sent = wrap("ECDH-ES", "A128GCM", bob.public(), header, ephemeral_key=JWK.from_dict(ALICE_EPK))
    assert b64url_bytes(sent.cek).decode() == APPENDIX_C_KEY
    assert sent.encrypted_key == b""
    assert sent.header == {"epk": epk_public}
