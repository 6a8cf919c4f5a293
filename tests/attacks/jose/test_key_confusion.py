"""Key confusion in disguise (RFC 8725 §2.1, CVE-2015-9235): asymmetric keys in every encoding an
operator might have stored them in are refused as HMAC/AES secrets, by `JWK.from_secret` and as the
`k` of an `oct` JWK; ordinary secrets (random bytes, passphrases, hex, base64) are still accepted.

`test_attacks.py` holds the plain encodings (PEM, DER, OpenSSH, JWK JSON) and shows that a token
MACed with a public key never verifies; this module covers the disguises around them.
"""

from __future__ import annotations

import base64
import datetime
import json
import random
import uuid
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from authgate.jose import JWK, InvalidKey
from authgate.jose._key_checks import MAX_SECRET_BYTES
from tests.support.tokens import b64url_bytes

RSA = JWK.generate("RSA", kid="rsa")
EC = JWK.generate("EC", crv="P-256", kid="ec")
OKP = JWK.generate("OKP", crv="Ed25519", kid="okp")
VICTIMS = {"RSA": RSA, "EC": EC, "OKP": OKP}
BOM = b"\xef\xbb\xbf"
_DER = serialization.Encoding.DER
_PEM = serialization.Encoding.PEM
_SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
_PKCS8 = serialization.PrivateFormat.PKCS8


def refused(material: bytes) -> None:
    """`material` is refused both as raw secret bytes and as an `oct` JWK's `k`."""
    with pytest.raises(InvalidKey):
        JWK.from_secret(material)
    with pytest.raises(InvalidKey):
        JWK.from_dict({"kty": "oct", "k": b64url_bytes(material).decode()})


def accepted(material: bytes) -> None:
    assert JWK.from_secret(material).kty == "oct"
    assert JWK.from_dict({"kty": "oct", "k": b64url_bytes(material).decode()}).kty == "oct"


# -- the encodings ---------------------------------------------------------------------------------


def der(key: JWK) -> bytes:
    assert key._public is not None
    return key._public.public_bytes(_DER, _SPKI)


def private_der(key: JWK, encryption: serialization.KeySerializationEncryption) -> bytes:
    assert key._private is not None
    return key._private.private_bytes(_DER, _PKCS8, encryption)


def openssh(key: JWK) -> bytes:
    assert key._public is not None
    fmt = serialization.Encoding.OpenSSH
    return key._public.public_bytes(fmt, serialization.PublicFormat.OpenSSH)


def openssh_private(key: JWK) -> bytes:
    assert key._private is not None
    fmt = serialization.PrivateFormat.OpenSSH
    return key._private.private_bytes(_PEM, fmt, serialization.NoEncryption())


def certificate(key: JWK) -> x509.Certificate:
    private = key._private
    assert private is not None
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "victim")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())  # type: ignore[arg-type]
        .serial_number(1)
        .not_valid_before(datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC))
        .not_valid_after(datetime.datetime(2040, 1, 1, tzinfo=datetime.UTC))
    )
    digest = None if isinstance(private, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(private, digest)  # type: ignore[arg-type]


def csr(key: JWK) -> bytes:
    private = key._private
    assert private is not None
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "victim")])
    digest = None if isinstance(private, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    request = x509.CertificateSigningRequestBuilder().subject_name(name)
    return request.sign(private, digest).public_bytes(_PEM)  # type: ignore[arg-type]


def jwk_text(key: JWK) -> str:
    return json.dumps(key.public().to_dict())


def escaped(text: str) -> str:
    """The JSON object `text` with every character of every string spelled as a \\u escape."""
    members = ",".join(f'"{_escape(n)}":"{_escape(v)}"' for n, v in json.loads(text).items())
    return "{" + members + "}"


def _escape(value: str) -> str:
    return "".join(f"\\u{ord(c):04x}" for c in value)


def pem_body(key: JWK) -> bytes:
    return b"\n".join(key.to_pem().splitlines()[1:-1]) + b"\n"


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data)


def lines(text: bytes, width: int, end: bytes = b"\n") -> bytes:
    return end.join(text[i : i + width] for i in range(0, len(text), width)) + end


def ssh2(key: JWK) -> bytes:
    """RFC 4716 "SSH2 public key" file format."""
    body = openssh(key).split()[1]
    return (
        b"---- BEGIN SSH2 PUBLIC KEY ----\n"
        b'Comment: "victim@example"\n' + lines(body, 70) + b"---- END SSH2 PUBLIC KEY ----\n"
    )


DISGUISES: dict[str, Callable[[JWK], bytes]] = {
    # The six bypasses of the review (issue 8, finding 7).
    "PEM with a UTF-8 BOM": lambda k: BOM + k.to_pem(),
    "JSON array holding the JWK": lambda k: f"[{jwk_text(k)}]".encode(),
    "JWK JSON spelling kty as \\u006bty": lambda k: (
        jwk_text(k).replace('"kty"', '"\\u006bty"').encode()
    ),
    "DER after a leading newline": lambda k: b"\n" + der(k),
    "PEM body without its armour lines": pem_body,
    "JWK JSON in UTF-16": lambda k: jwk_text(k).encode("utf-16"),
    # PEM
    "PEM": lambda k: k.to_pem(),
    "PEM with CRLF line ends": lambda k: k.to_pem().replace(b"\n", b"\r\n"),
    "PEM after a label line": lambda k: b"the public key:\n" + k.to_pem(),
    "PEM with damaged armour": lambda k: k.to_pem().replace(b"-----", b"----"),
    "PEM in UTF-16": lambda k: k.to_pem().decode().encode("utf-16"),
    "PEM body on one line": lambda k: b"".join(k.to_pem().splitlines()[1:-1]),
    "PEM inside a JSON string": lambda k: json.dumps(k.to_pem().decode()).encode(),
    "base64 of the PEM (a Kubernetes secret)": lambda k: b64(k.to_pem()),
    # DER and its text forms
    "DER": der,
    "DER with a trailing newline": lambda k: der(k) + b"\n",
    "DER with trailing bytes": lambda k: der(k) + b"\x00\x00trailer",
    "DER after a UTF-8 BOM": lambda k: BOM + der(k),
    "base64 of DER": lambda k: b64(der(k)),
    "base64 of DER without padding": lambda k: b64(der(k)).rstrip(b"="),
    "base64url of DER": lambda k: b64url(der(k)),
    "base64url of DER without padding": lambda k: b64url(der(k)).rstrip(b"="),
    "base64 of DER in 64-character lines": lambda k: lines(b64(der(k)), 64),
    "base64 of DER in MIME lines (CRLF)": lambda k: lines(b64(der(k)), 76, b"\r\n"),
    "base64 of DER with spaces around": lambda k: b"  " + b64(der(k)) + b" \n",
    "hex of DER": lambda k: der(k).hex().encode(),
    "colon-separated hex of DER": lambda k: lines(der(k).hex(":").encode(), 45),
    # JWK JSON
    "JWK JSON": lambda k: jwk_text(k).encode(),
    "JWK JSON with every string escaped": lambda k: escaped(jwk_text(k)).encode(),
    "JWK JSON pretty-printed after a UTF-8 BOM": lambda k: (
        BOM + json.dumps(k.public().to_dict(), indent=2).encode()
    ),
    "JWK JSON in UTF-16-LE without BOM": lambda k: jwk_text(k).encode("utf-16-le"),
    "JWK JSON in UTF-16-BE without BOM": lambda k: jwk_text(k).encode("utf-16-be"),
    "JWK JSON in UTF-32": lambda k: jwk_text(k).encode("utf-32"),
    "JWK JSON in UTF-32-BE without BOM": lambda k: jwk_text(k).encode("utf-32-be"),
    "JWK set": lambda k: json.dumps({"keys": [k.public().to_dict()]}).encode(),
    "JWK set with escaped member names": lambda k: (
        '{"\\u006beys": [' + escaped(jwk_text(k)) + "]}"
    ).encode(),
    "JWK under another member": lambda k: json.dumps({"key": k.public().to_dict()}).encode(),
    "JWK JSON inside a JSON string": lambda k: json.dumps(jwk_text(k)).encode(),
    "JWK JSON without kty": lambda k: json.dumps(
        {m: v for m, v in k.public().to_dict().items() if m not in ("kty", "kid")}
    ).encode(),
    "base64 of JWK JSON": lambda k: b64(jwk_text(k).encode()),
    "private JWK JSON": lambda k: json.dumps(k.to_dict(private=True)).encode(),
    # OpenSSH
    "OpenSSH public key line": openssh,
    "OpenSSH line with options and a comment": lambda k: (
        b'from="10.0.0.0/8" ' + openssh(k) + b" victim@example\n"
    ),
    "OpenSSH key body without its type": lambda k: openssh(k).split()[1],
    "SSH2 public key file (RFC 4716)": ssh2,
    "OpenSSH private key": openssh_private,
    "OpenSSH private key body without armour": lambda k: b"".join(
        openssh_private(k).splitlines()[1:-1]
    ),
    # X.509
    "X.509 certificate PEM": lambda k: certificate(k).public_bytes(_PEM),
    "X.509 certificate DER": lambda k: certificate(k).public_bytes(_DER),
    "base64 of X.509 certificate DER": lambda k: b64(certificate(k).public_bytes(_DER)),
    "X.509 certificate chain PEM": lambda k: certificate(k).public_bytes(_PEM) * 2,
    "certificate signing request PEM": csr,
    # private keys
    "PKCS#8 private key PEM": lambda k: k.to_pem(private=True),
    "PKCS#8 private key DER": lambda k: private_der(k, serialization.NoEncryption()),
    "encrypted PKCS#8 private key PEM": lambda k: k.to_pem(private=True, password=b"pw"),
    "encrypted PKCS#8 private key DER": lambda k: private_der(
        k, serialization.BestAvailableEncryption(b"pw")
    ),
    "base64 of PKCS#8 private key DER": lambda k: b64(private_der(k, serialization.NoEncryption())),
}


def _pkcs1(key: JWK, encoding: serialization.Encoding = _DER) -> bytes:
    assert key._public is not None
    return key._public.public_bytes(encoding, serialization.PublicFormat.PKCS1)


def _traditional(key: JWK) -> bytes:
    assert key._private is not None
    fmt = serialization.PrivateFormat.TraditionalOpenSSL
    return key._private.private_bytes(_PEM, fmt, serialization.NoEncryption())


# Encodings that exist for some key types only.
RSA_AND_EC: dict[str, Callable[[JWK], bytes]] = {
    "traditional OpenSSL private key PEM": _traditional,
}
RSA_ONLY: dict[str, Callable[[JWK], bytes]] = {
    "PKCS#1 RSAPublicKey PEM": lambda k: _pkcs1(k, _PEM),
    "PKCS#1 RSAPublicKey DER": _pkcs1,
    "base64 of PKCS#1 RSAPublicKey DER": lambda k: b64(_pkcs1(k)),
}
CASES = [(victim, name) for victim in VICTIMS for name in DISGUISES]
CASES += [(victim, name) for victim in ("RSA", "EC") for name in RSA_AND_EC]
CASES += [("RSA", name) for name in RSA_ONLY]
ALL_DISGUISES = {**DISGUISES, **RSA_AND_EC, **RSA_ONLY}


@pytest.mark.parametrize(("victim", "disguise"), CASES)
def test_asymmetric_keys_in_disguise_are_refused_as_secrets(victim: str, disguise: str) -> None:
    material = ALL_DISGUISES[disguise](VICTIMS[victim])
    assert len(material) <= MAX_SECRET_BYTES  # refused for what it holds, not for its size
    refused(material)


def _ec_key_whose_ssh_blob_ends_in(last: bytes) -> bytes:
    """A P-256 public key's OpenSSH line whose wire blob ends in `last` (a fixed scalar search)."""
    for scalar in range(1, 100_000):
        public = ec.derive_private_key(scalar, ec.SECP256R1()).public_key()
        line = public.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        if base64.b64decode(line.split()[1]).endswith(last):
            return line
    raise AssertionError("no such key in the search range")


@pytest.mark.parametrize("last", [b" ", b"\n", b"\t", b"\r", b"\x0b", b"\x0c"])
def test_an_ssh_key_whose_last_byte_is_whitespace_is_refused(last: bytes) -> None:
    # Trimming the decoded blob cut the point's last byte off, so about 2 % of EC keys passed.
    line = _ec_key_whose_ssh_blob_ends_in(last)
    refused(line)
    refused(base64.b64decode(line.split()[1]))  # the wire form alone


# -- ordinary secrets are still secrets ------------------------------------------------------------

WORDS = ["correct", "horse", "battery", "staple", "orange", "river", "mountain", "quiet"]
WORDS += ["lamp", "paper", "window", "seven", "blue", "garden", "thunder", "coffee", "maple"]


def _ordinary_secrets(rng: random.Random) -> list[bytes]:
    out: list[bytes] = []
    for _ in range(400):
        raw = rng.randbytes(rng.choice((32, 48, 64)))
        out += [
            raw,
            rng.randbytes(rng.randrange(40, 600)),
            base64.b64encode(raw),
            base64.urlsafe_b64encode(raw).rstrip(b"="),
            raw.hex().encode(),
            raw.hex().upper().encode() + b"\n",
            b64(rng.randbytes(300)) + b"\n",  # a long base64 secret, with the file's newline
            " ".join(rng.choice(WORDS) for _ in range(rng.randrange(4, 12))).encode(),
            "-".join(rng.choice(WORDS) for _ in range(8)).encode(),
            str(uuid.UUID(int=rng.getrandbits(128))).encode() * 2,
        ]
    return out


def test_ordinary_secrets_are_accepted() -> None:
    """No false positives: thousands of seeded random secrets of the usual shapes."""
    rng = random.Random(20240817)
    for secret in _ordinary_secrets(rng):
        JWK.from_secret(secret)  # raises InvalidKey on a false positive
    accepted(rng.randbytes(64))
    accepted(b"a passphrase an operator typed, with punctuation: yes!")
    accepted(bytes(range(256)))


def test_random_bytes_of_every_length_are_accepted() -> None:
    rng = random.Random(7)
    for size in range(1, 2049):
        JWK.from_secret(rng.randbytes(size))


def test_secret_size_is_bounded() -> None:
    """Inspection is bounded: secrets larger than MAX_SECRET_BYTES are refused unread."""
    rng = random.Random(3)
    accepted(rng.randbytes(MAX_SECRET_BYTES))
    with pytest.raises(InvalidKey, match="at most"):
        JWK.from_secret(rng.randbytes(MAX_SECRET_BYTES + 1))
    with pytest.raises(InvalidKey, match="at most"):
        JWK.from_dict({"kty": "oct", "k": b64url_bytes(b"k" * (MAX_SECRET_BYTES + 1)).decode()})


def test_a_secret_needing_too_many_decodings_is_refused() -> None:
    """More candidate decodings than the budget: refused (fail closed), not searched on."""
    strings = [b64url_bytes(random.Random(i).randbytes(60)).decode() for i in range(200)]
    with pytest.raises(InvalidKey):
        JWK.from_secret(json.dumps(strings).encode())


def test_deeply_nested_json_is_refused() -> None:
    """JSON nested beyond what the parser follows could hide a JWK: refused."""
    nested = "[" * 3000 + jwk_text(EC) + "]" * 3000
    with pytest.raises(InvalidKey):
        JWK.from_secret(nested.encode())
