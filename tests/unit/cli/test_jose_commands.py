"""`authgate jwk …`: generation, conversion and thumbprints, through the real click commands."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from authgate.jose import JWK, jwt

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k"}


def _json(text: str) -> dict[str, Any]:
    value = json.loads(text)
    assert isinstance(value, dict)
    return value


@pytest.mark.parametrize(
    ("args", "kty", "crv", "alg"),
    [
        (["--kty", "EC"], "EC", "P-256", None),
        (["--kty", "EC", "--crv", "secp256k1"], "EC", "secp256k1", None),
        (["--alg", "ES384"], "EC", "P-384", "ES384"),
        (["--alg", "ES512"], "EC", "P-521", "ES512"),
        (["--alg", "EdDSA"], "OKP", "Ed25519", "EdDSA"),
        (["--kty", "OKP", "--crv", "X25519", "--use", "enc"], "OKP", "X25519", None),
        (["--alg", "HS512"], "oct", None, "HS512"),
        (["--alg", "A128KW"], "oct", None, "A128KW"),
        (["--alg", "RS256", "--kid", "signing-2024"], "RSA", None, "RS256"),
    ],
)
def test_generate_prints_an_importable_private_key(
    run: Any, args: list[str], kty: str, crv: str | None, alg: str | None
) -> None:
    result = run("jwk", "generate", *args)
    assert result.exit_code == 0, result.stderr
    data = _json(result.stdout)
    key = JWK.from_dict(data)
    assert (key.kty, key.crv, key.alg) == (kty, crv, alg)
    assert key.is_private
    assert PRIVATE_MEMBERS & set(data)
    if "--kid" in args:
        assert key.kid == "signing-2024"
    else:
        assert key.kid == key.thumbprint()  # RFC 7638 thumbprint as default kid
    if "--use" in args:
        assert data["use"] == "enc"


def test_generated_key_size_follows_the_algorithm(run: Any) -> None:
    data = _json(run("jwk", "generate", "--alg", "HS384").stdout)
    assert len(JWK.from_dict(data).to_dict(private=True)["k"]) == 64  # 48 bytes in base64url
    rsa_key = _json(run("jwk", "generate", "--kty", "RSA", "--size", "3072").stdout)
    pem = JWK.from_dict(rsa_key).to_pem()
    public = serialization.load_pem_public_key(pem)
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.key_size == 3072


def test_generate_public_prints_no_private_member(run: Any) -> None:
    result = run("jwk", "generate", "--alg", "ES256", "--public")
    assert result.exit_code == 0
    data = _json(result.stdout)
    assert not PRIVATE_MEMBERS & set(data)
    assert not JWK.from_dict(data).is_private


@pytest.mark.parametrize(
    ("args", "status", "fragment"),
    [
        (["--kty", "RSA", "--size", "1024"], 3, "at least 2048"),
        (["--kty", "RSA", "--crv", "P-256"], 2, "--crv does not apply"),
        (["--kty", "EC", "--size", "256"], 2, "--size does not apply"),
        (["--kty", "EC", "--crv", "P-384", "--alg", "ES256"], 3, "cannot be used with ES256"),
        (["--kty", "oct", "--size", "128", "--alg", "HS256"], 3, "at least 32 bytes"),
        (["--alg", "none"], 5, "unsupported algorithm"),
        (["--alg", "RSA1_5"], 5, "unsupported algorithm"),
        ([], 2, "--kty"),
        (["--kty", "oct", "--public"], 3, "no public part"),
        (["--kty", "EC", "--crv", "P-192"], 3, "unsupported EC curve"),
    ],
)
def test_generate_refuses_bad_requests(
    run: Any, args: list[str], status: int, fragment: str
) -> None:
    result = run("jwk", "generate", *args)
    assert result.exit_code == status
    assert fragment in result.stderr
    assert result.stdout == ""


def test_public_of_private_jwk_pem_and_set(run: Any, keys: Any, tmp_path: Path) -> None:
    ec_files = keys["ec"]
    expected = ec_files.key.public().to_dict()
    assert _json(run("jwk", "public", str(ec_files.private_jwk)).stdout) == expected
    from_pem = _json(run("jwk", "public", str(ec_files.private_pem)).stdout)
    assert {k: from_pem[k] for k in ("crv", "x", "y")} == {
        k: expected[k] for k in ("crv", "x", "y")
    }
    stdin = run("jwk", "public", "-", stdin=ec_files.private_jwk.read_text())
    assert _json(stdin.stdout) == expected

    jwks = tmp_path / "private.jwks"
    members = [keys["ec"].key.to_dict(private=True), keys["ed"].key.to_dict(private=True)]
    jwks.write_text(json.dumps({"keys": members}))
    public_set = _json(run("jwk", "public", str(jwks)).stdout)
    assert public_set == {
        "keys": [keys["ec"].key.public().to_dict(), keys["ed"].key.public().to_dict()]
    }


def test_public_of_a_secret_is_refused(run: Any, keys: Any) -> None:
    result = run("jwk", "public", str(keys["hs"].private_jwk))
    assert result.exit_code == 3
    assert keys["hs"].key.to_dict(private=True)["k"] not in result.stderr


def test_thumbprint_matches_rfc7638_example(run: Any, tmp_path: Path) -> None:
    # RFC 7638 §3.1: the example RSA key and its SHA-256 thumbprint.
    key = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6"
        "tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-6"
        "5YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyr"
        "dkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKn"
        "qDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    path = tmp_path / "rfc7638.jwk"
    path.write_text(json.dumps(key))
    expected = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    assert run("jwk", "thumbprint", str(path)).stdout.strip() == expected
    uri = run("jwk", "thumbprint", "--uri", str(path)).stdout.strip()
    assert uri == "urn:ietf:params:oauth:jwk-thumbprint:sha-256:" + expected  # RFC 9278 §3


def test_thumbprint_is_the_same_for_pem_and_jwk(run: Any, keys: Any) -> None:
    rsa_files = keys["rsa"]
    from_jwk = run("jwk", "thumbprint", str(rsa_files.public_jwk)).stdout
    from_pem = run("jwk", "thumbprint", str(rsa_files.private_pem)).stdout
    assert from_jwk == from_pem == rsa_files.key.thumbprint() + "\n"


def test_from_pem_private_public_and_certificate(run: Any, keys: Any, tmp_path: Path) -> None:
    rsa_files = keys["rsa"]
    private = _json(run("jwk", "from-pem", str(rsa_files.private_pem), "--alg", "PS256").stdout)
    assert private["d"] == rsa_files.key.to_dict(private=True)["d"]
    assert private["alg"] == "PS256"
    public = _json(run("jwk", "from-pem", str(rsa_files.public_pem)).stdout)
    assert "d" not in public
    assert public["n"] == private["n"]
    only_public = _json(run("jwk", "from-pem", "--public", str(rsa_files.private_pem)).stdout)
    assert "d" not in only_public

    signer = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "authgate test")])
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(signer.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=1))
        .sign(signer, hashes.SHA256())
    )
    cert_path = tmp_path / "cert.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    from_cert = _json(run("jwk", "from-pem", str(cert_path)).stdout)
    assert from_cert["kty"] == "EC"
    assert JWK.from_dict(from_cert).to_pem() == signer.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_from_pem_with_password(run: Any, keys: Any, tmp_path: Path) -> None:
    password = "correct horse battery staple"
    path = tmp_path / "encrypted.pem"
    path.write_bytes(keys["ec"].key.to_pem(private=True, password=password.encode()))

    ok = run("jwk", "from-pem", "--password-stdin", str(path), stdin=password + "\n")
    assert ok.exit_code == 0, ok.stderr
    assert _json(ok.stdout)["d"] == keys["ec"].key.to_dict(private=True)["d"]

    wrong = run("jwk", "from-pem", "--password-stdin", str(path), stdin="guess\n")
    assert wrong.exit_code == 3
    assert "password" in wrong.stderr
    assert "guess" not in wrong.stderr

    missing = run("jwk", "from-pem", str(path))
    assert missing.exit_code == 3
    assert "--password-stdin" in missing.stderr

    both_stdin = run("jwk", "from-pem", "--password-stdin", "-", stdin=password)
    assert both_stdin.exit_code == 2


def test_from_pem_refuses_non_pem(run: Any, keys: Any) -> None:
    result = run("jwk", "from-pem", str(keys["ec"].private_jwk))
    assert result.exit_code == 3
    assert "no PEM" in result.stderr
    assert keys["ec"].key.to_dict(private=True)["d"] not in result.stderr


def test_to_pem_public_and_private(run: Any, keys: Any) -> None:
    ed_files = keys["ed"]
    public = run("jwk", "to-pem", str(ed_files.private_jwk))
    assert public.stdout.encode() == ed_files.key.to_pem()
    private = run("jwk", "to-pem", "--private", str(ed_files.private_jwk))
    assert private.stdout.startswith("-----BEGIN PRIVATE KEY-----")
    loaded = serialization.load_pem_private_key(private.stdout.encode(), password=None)
    assert JWK.from_pem(private.stdout).thumbprint() == ed_files.key.thumbprint()
    assert (
        loaded.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == ed_files.key.to_pem()
    )
    refused = run("jwk", "to-pem", "--private", str(ed_files.public_jwk))
    assert refused.exit_code == 3
    secret = run("jwk", "to-pem", str(keys["hs"].private_jwk))
    assert secret.exit_code == 3


def test_from_secret_wraps_bytes_and_drops_one_newline(run: Any, tmp_path: Path) -> None:
    secret = b"s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t!"
    path = tmp_path / "secret"
    path.write_bytes(secret + b"\r\n")
    result = run("jwk", "from-secret", "--alg", "HS256", str(path))
    assert result.exit_code == 0, result.stderr
    key = JWK.from_dict(_json(result.stdout))
    assert key.kid is None
    token = jwt.encode({"sub": "x"}, JWK.from_secret(secret), "HS256")
    assert jwt.decode(token, key, algorithms=["HS256"]) == {"sub": "x"}

    short = run("jwk", "from-secret", "--alg", "HS256", "-", stdin="too short\n")
    assert short.exit_code == 3
    assert "too short" not in short.stderr
    assert "32 bytes" in short.stderr
