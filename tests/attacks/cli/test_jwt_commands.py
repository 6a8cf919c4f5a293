"""Hostile key files and tokens: one clean `Error:` line and a documented exit status, always.

No traceback, no terminal control characters, no key material in the message, whatever the input.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authgate.cli.exit_codes import ExitCode
from tests.support.tokens import b64url

DOCUMENTED = {int(code) for code in ExitCode}
TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"

# The statuses each command may answer to input nobody signed with our keys (docs/cli.md, "Exit
# statuses"). Such a token can only fail on its form, its algorithm, the key's fitness for that
# algorithm or the signature: 0 would be a forgery accepted, and 8-10 would mean the claims were
# judged before the signature. Only `inspect` (which verifies nothing) and key printing may succeed.
VERIFY_REFUSALS = {ExitCode.INPUT, ExitCode.MALFORMED, ExitCode.ALGORITHM, ExitCode.SIGNATURE}
VERIFY_JWKS_REFUSALS = VERIFY_REFUSALS | {ExitCode.KEY_NOT_FOUND}
INSPECT_ANSWERS = {ExitCode.OK, ExitCode.MALFORMED}
THUMBPRINT_ANSWERS = {ExitCode.OK, ExitCode.INPUT}


def _clean_failure(result: Any, *, secrets: tuple[str, ...] = ()) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code in DOCUMENTED - {0}, result.output
    *warnings, error = result.stderr.splitlines()
    assert all(line.startswith("warning: ") for line in warnings), result.stderr
    assert error.startswith("Error: ")
    assert all(ch.isprintable() for ch in error)
    assert len(error) <= 320
    for secret in secrets:
        assert secret not in result.stderr


def _answered(result: Any, allowed: set[ExitCode]) -> None:
    """`result` exited with one of `allowed`: cleanly, and with a clean `Error:` line on failure."""
    assert result.exit_code in allowed, (result.exit_code, result.stderr, repr(result.exception))
    if result.exit_code == 0:
        assert result.exception is None, repr(result.exception)
    else:
        _clean_failure(result)


HOSTILE_KEYS: dict[str, bytes] = {
    "empty": b"",
    "binary": bytes(range(256)),
    "json_array": b"[1, 2, 3]",
    "json_string": b'"RSA"',
    "duplicate_members": b'{"kty": "oct", "kty": "RSA", "k": "AAAA"}',
    "deep_nesting": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "huge_number": b'{"kty": "RSA", "n": 1' + b"0" * 50_000 + b', "e": "AQAB"}',
    "kty_missing": b'{"k": "c2VjcmV0"}',
    "kty_unknown": b'{"kty": "DSA"}',
    "kty_not_string": b'{"kty": ["oct"]}',
    "oct_padded": b'{"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0=="}',
    "oct_empty": b'{"kty": "oct", "k": ""}',
    "rsa_small": json.dumps({"kty": "RSA", "n": "AQAB" * 20, "e": "AQAB"}).encode(),
    "rsa_even_e": json.dumps({"kty": "RSA", "n": "x" * 342 + "s", "e": "Ag"}).encode(),
    "rsa_partial_crt": json.dumps(
        {"kty": "RSA", "n": "x" * 342 + "s", "e": "AQAB", "d": "AQ", "p": "Aw"}
    ).encode(),
    "ec_off_curve": json.dumps(
        {"kty": "EC", "crv": "P-256", "x": "A" * 43, "y": "A" * 42 + "E"}
    ).encode(),
    "ec_short_coordinate": json.dumps({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}).encode(),
    "ec_bad_curve": json.dumps({"kty": "EC", "crv": "P-192", "x": "AA", "y": "AA"}).encode(),
    "okp_wrong_length": json.dumps({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}).encode(),
    "okp_mismatched_d": json.dumps(
        {"kty": "OKP", "crv": "Ed25519", "x": "A" * 43, "d": "B" * 42 + "A"}
    ).encode(),
    "x25519_low_order": json.dumps({"kty": "OKP", "crv": "X25519", "x": "A" * 43}).encode(),
    "bad_use": json.dumps({"kty": "oct", "k": "A" * 43, "use": "both"}).encode(),
    "bad_key_ops": json.dumps({"kty": "oct", "k": "A" * 43, "key_ops": "sign"}).encode(),
    "pem_garbage": b"-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----\n",
    "pem_private_garbage": b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    "pem_certificate_garbage": b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    "pem_encrypted_marker": b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAA\n-----END ENCRYPTED",
    "jwks_not_list": b'{"keys": {"kty": "oct"}}',
    "jwks_empty": b'{"keys": []}',
    "jwks_duplicate_kid": json.dumps(
        {
            "keys": [
                {"kty": "oct", "k": "A" * 43, "kid": "a"},
                {"kty": "oct", "k": "B" * 42 + "A", "kid": "a"},
            ]
        }
    ).encode(),
    "jwks_mixed": json.dumps(
        {"keys": [{"kty": "oct", "k": "A" * 43}, {"kty": "OKP", "crv": "Ed25519", "x": "A" * 43}]}
    ).encode(),
    "too_large": b" " * (1024 * 1024 + 1),
    "utf16": '{"kty": "oct"}'.encode("utf-16"),
}


# Inputs that are odd but well-formed for one command: an empty set has an (empty) public set,
# an all-zero X25519 x is a valid encoding (low-order points matter to ECDH, not to printing), and
# RFC 7517 §4.2 lets `use` hold other values (such a key is then unusable, but has a thumbprint).
VALID_FOR = {
    ("jwks_empty", "public"),
    ("x25519_low_order", "public"),
    ("x25519_low_order", "thumbprint"),
    ("bad_use", "thumbprint"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_KEYS))
@pytest.mark.parametrize(
    "command",
    [
        ["jwt", "verify", "--alg", "ES256", "--key", "{key}", TOKEN],
        ["jwt", "verify", "--alg", "ES256", "--jwks", "{key}", TOKEN],
        ["jwt", "sign", "--alg", "HS256", "--key", "{key}"],
        ["jwk", "public", "{key}"],
        ["jwk", "thumbprint", "{key}"],
        ["jwk", "to-pem", "--private", "{key}"],
    ],
    ids=["verify-key", "verify-jwks", "sign", "public", "thumbprint", "to-pem"],
)
def test_hostile_key_files(run: Any, tmp_path: Path, name: str, command: list[str]) -> None:
    path = tmp_path / "key"
    path.write_bytes(HOSTILE_KEYS[name])
    result = run(*[str(path) if arg == "{key}" else arg for arg in command])
    if result.exit_code == 0 and (name, command[1]) in VALID_FOR:
        return
    _clean_failure(result, secrets=("B" * 42,))


def test_unreadable_key_paths(run: Any, tmp_path: Path) -> None:
    for path in (tmp_path / "missing.jwk", tmp_path):
        result = run("jwt", "verify", "--alg", "ES256", "--key", str(path), TOKEN)
        _clean_failure(result)
        assert result.exit_code == ExitCode.INPUT


def test_secret_never_appears_in_errors(run: Any, keys: Any) -> None:
    k = keys["hs"].key.to_dict(private=True)["k"]
    d = keys["ec"].key.to_dict(private=True)["d"]
    attempts = [
        ("jwt", "verify", "--alg", "HS256", "--key", str(keys["hs"].private_jwk), TOKEN),
        ("jwt", "verify", "--alg", "ES256", "--key", str(keys["hs"].private_jwk), TOKEN),
        ("jwt", "sign", "--alg", "RS256", "--key", str(keys["hs"].private_jwk)),
        ("jwt", "sign", "--alg", "ES384", "--key", str(keys["ec"].private_jwk)),
        ("jwk", "public", str(keys["hs"].private_jwk)),
        ("jwk", "to-pem", str(keys["hs"].private_jwk)),
        ("jwk", "from-pem", str(keys["ec"].private_jwk)),
    ]
    for args in attempts:
        _clean_failure(run(*args), secrets=(k, d))


_B64URL = string.ascii_letters + string.digits + "-_"


# Well-formed segments around hostile content, so that fuzzing reaches the algorithm, key and
# signature checks instead of stopping at the base64url decoder.
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_ALGS = ["ES256", "ES384", "HS256", "RS256", "PS256", "EdDSA", "Ed25519", "none", "None", "", "dir"]
_HEADER = st.fixed_dictionaries(
    {"alg": st.sampled_from(_ALGS) | _JSON},
    optional={
        "kid": st.sampled_from(["ec", "rsa", "ed", "other"]) | _JSON,
        "typ": st.sampled_from(["JWT", "at+jwt"]) | _JSON,
        "crit": st.lists(st.sampled_from(["b64", "exp", "x"]), max_size=2) | _JSON,
        "b64": st.booleans() | _JSON,
        "jwk": _JSON,
        "enc": st.sampled_from(["A128GCM", "A256CBC-HS512"]) | _JSON,
        "zip": st.just("DEF"),
    },
)
_CLAIMS = st.fixed_dictionaries(
    {},
    optional=dict.fromkeys(("sub", "iss", "aud"), _JSON)
    | dict.fromkeys(("exp", "nbf", "iat"), st.integers() | _JSON),
)
_SIGNATURE = (
    st.binary(max_size=8)
    | st.binary(min_size=64, max_size=64)
    | st.binary(min_size=256, max_size=256)
)
_JWS = st.tuples(
    _HEADER, _CLAIMS.map(lambda c: json.dumps(c).encode()) | st.binary(max_size=64), _SIGNATURE
).map(
    lambda parts: ".".join(
        (b64url(json.dumps(parts[0]).encode()), b64url(parts[1]), b64url(parts[2]))
    )
)
_JWE = st.tuples(_HEADER, st.lists(st.binary(max_size=40), min_size=4, max_size=4)).map(
    lambda parts: ".".join((b64url(json.dumps(parts[0]).encode()), *map(b64url, parts[1])))
)
_TOKENS = st.one_of(
    st.text(max_size=300),
    st.lists(st.text(alphabet=_B64URL + "=.+/ ", max_size=60), min_size=1, max_size=6).map(
        ".".join
    ),
    _JWS,
    _JWE,
)


@pytest.fixture(scope="module")
def public_jwks(keys: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A set of public keys whose kids the fuzzed headers name (`ec`, `rsa`, `ed`)."""
    members = [{**keys[name].key.public().to_dict(), "kid": name} for name in ("ec", "rsa", "ed")]
    path = tmp_path_factory.mktemp("jwks") / "public.jwks"
    path.write_text(json.dumps({"keys": members}))
    return path


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(token=_TOKENS)
def test_arbitrary_tokens_never_verify(run: Any, keys: Any, public_jwks: Path, token: str) -> None:
    """No fuzzed token verifies, each refusal has a status `verify` documents, `inspect` stays
    inside its own two answers, and nothing ends in a traceback."""
    algs = "ES256,HS256,RS256,PS256,EdDSA,Ed25519"
    for source, allowed in (
        (["--key", str(keys["ec"].public_jwk)], VERIFY_REFUSALS),
        (["--jwks", str(public_jwks)], VERIFY_JWKS_REFUSALS),
    ):
        result = run("jwt", "verify", "--alg", algs, *source, "--", token)
        _answered(result, allowed)
        assert result.stdout == "", result.stdout  # no claims printed for a refused token
    result = run("jwt", "inspect", "--", token)
    _answered(result, INSPECT_ANSWERS)
    if result.exit_code == 0:
        shown = json.loads(result.stdout)
        assert shown["status"] == "UNVERIFIED"
        assert shown["format"] in ("JWS", "JWE")
        assert result.stderr.startswith("warning: UNVERIFIED")
        # docs/cli.md: JSON output escapes non-ASCII, so no terminal control reaches the terminal.
        assert result.stdout.isascii()
        assert all(ch >= " " or ch == "\n" for ch in result.stdout), result.stdout


_MEMBER_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(alphabet=_B64URL, max_size=120),
    st.sampled_from(["P-256", "P-384", "P-521", "secp256k1", "Ed25519", "X25519", "X448", "Ed448"]),
    st.lists(st.text(max_size=8), max_size=3),
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    jwk=st.fixed_dictionaries(
        {"kty": st.sampled_from(["RSA", "EC", "OKP", "oct", "none", ""])},
        optional=dict.fromkeys(
            (
                "crv",
                "x",
                "y",
                "d",
                "n",
                "e",
                "p",
                "q",
                "dp",
                "dq",
                "qi",
                "k",
                "kid",
                "alg",
                "use",
                "key_ops",
            ),
            _MEMBER_VALUES,
        ),
    )
)
def test_arbitrary_jwks_never_crash(run: Any, tmp_path: Path, jwk: dict[str, Any]) -> None:
    path = tmp_path / "fuzz.jwk"
    path.write_text(json.dumps(jwk))
    for args, allowed in (
        (("jwt", "verify", "--alg", "ES256", "--key", str(path), TOKEN), VERIFY_REFUSALS),
        (("jwk", "thumbprint", str(path)), THUMBPRINT_ANSWERS),
    ):
        _answered(run(*args), allowed)
