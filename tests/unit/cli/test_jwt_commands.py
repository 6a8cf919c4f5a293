"""`authgate jwt sign|verify|inspect`: behaviour, exit codes, and the installed entry point.

Tokens are checked with `authgate.jose` and with PyJWT (an independent implementation), so a sign
command that produced something only authgate accepts would fail here.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization

from authgate.jose import JWK, JWKSet, jws, jwt
from tests.support.tokens import b64url

NOW = 1_700_000_000
ISSUER = "https://issuer.example"
AUDIENCE = "api://orders"
CLAIMS = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "scope": "orders:read"}


def _sign(run: Any, *args: str, stdin: str | None = None) -> str:
    result = run("jwt", "sign", "--now", str(NOW), *args, stdin=stdin)
    assert result.exit_code == 0, result.stderr
    token: str = result.stdout.strip()
    assert result.stdout == token + "\n"
    return token


def _verify(run: Any, token: str, *args: str, stdin: str | None = None) -> Any:
    return run("jwt", "verify", "--now", str(NOW + 60), *args, token, stdin=stdin)


# -- sign ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "alg", "key_form"),
    [
        ("ec", "ES256", "jwk"),
        ("ec", "ES256", "pem"),
        ("rsa", "RS256", "pem"),
        ("rsa", "PS384", "jwk"),
        ("ed", "EdDSA", "jwk"),
        ("hs", "HS256", "jwk"),
    ],
)
def test_sign_produces_a_token_peers_accept(
    run: Any, keys: Any, name: str, alg: str, key_form: str
) -> None:
    files = keys[name]
    key_file = files.private_jwk if key_form == "jwk" else files.private_pem
    token = _sign(
        run, "--key", str(key_file), "--alg", alg, "--claims", json.dumps(CLAIMS), "--exp", "10m"
    )
    expected = {**CLAIMS, "iat": NOW, "exp": NOW + 600}
    verifying = files.key if name == "hs" else files.key.public()
    claims = jwt.decode(
        token, verifying, algorithms=[alg], issuer=ISSUER, audience=AUDIENCE, now=NOW + 1
    )
    assert claims == expected
    # PyJWT, an independent implementation, agrees.
    if name == "hs":
        peer_key: Any = base64.urlsafe_b64decode(files.key.to_dict(private=True)["k"] + "==")
    else:
        peer_key = serialization.load_pem_public_key(files.key.to_pem())
    decoded = pyjwt.decode(
        token,
        peer_key,
        algorithms=[alg],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert decoded == expected
    header = pyjwt.get_unverified_header(token)
    assert header == {"alg": alg, "kid": files.key.kid, "typ": "JWT"}


def test_sign_reads_claims_from_file_and_stdin(run: Any, keys: Any, tmp_path: Path) -> None:
    key = str(keys["ec"].private_jwk)
    path = tmp_path / "claims.json"
    path.write_text(json.dumps({"sub": "from-file"}))
    from_file = _sign(run, "--key", key, "--claims", f"@{path}", "--no-iat")
    assert jwt.decode(from_file, keys["ec"].key, algorithms=["ES256"]) == {"sub": "from-file"}
    from_stdin = _sign(run, "--key", key, "--claims", "-", "--no-iat", stdin='{"sub": "stdin"}\n')
    assert jwt.decode(from_stdin, keys["ec"].key, algorithms=["ES256"]) == {"sub": "stdin"}


def test_sign_defaults_alg_from_the_key_and_sets_iat(run: Any, keys: Any) -> None:
    # The EC key was generated with alg ES256, so --alg may be left out.
    token = _sign(run, "--key", str(keys["ec"].private_jwk))
    assert jws.verify(token, keys["ec"].key, ["ES256"]).header["alg"] == "ES256"
    assert jwt.decode(token, keys["ec"].key, algorithms=["ES256"], now=NOW) == {"iat": NOW}
    # The Ed25519 key has no alg: the caller must name one.
    result = run("jwt", "sign", "--key", str(keys["ed"].private_jwk))
    assert result.exit_code == 2
    assert "--alg" in result.stderr


def test_sign_header_and_typ(run: Any, keys: Any) -> None:
    key = str(keys["ed"].private_jwk)
    token = _sign(
        run,
        "--key",
        key,
        "--alg",
        "EdDSA",
        "--typ",
        "at+jwt",
        "--header",
        '{"kid": "custom", "x-trace": "1"}',
    )
    header = jws.verify(token, keys["ed"].key, ["EdDSA"]).header
    assert header == {"alg": "EdDSA", "kid": "custom", "typ": "at+jwt", "x-trace": "1"}
    jwt.decode(token, keys["ed"].key, algorithms=["EdDSA"], typ="at+jwt", now=NOW)


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [
        ("90", 90),
        ("30s", 30),
        ("10m", 600),
        ("2h", 7200),
        ("7d", 604800),
        ("1w", 604800),
        ("1h30m", 5400),
    ],
)
def test_sign_exp_durations(run: Any, keys: Any, duration: str, seconds: int) -> None:
    token = _sign(run, "--key", str(keys["hs"].private_jwk), "--exp", duration)
    claims = jwt.decode(token, keys["hs"].key, algorithms=["HS256"], now=NOW)
    assert claims["exp"] - claims["iat"] == seconds


@pytest.mark.parametrize(
    ("args", "status", "fragment"),
    [
        (["--exp", "10x"], 2, "not a duration"),
        (["--exp", "-5m"], 2, "not a duration"),
        (["--exp", "m"], 2, "not a duration"),
        (["--exp", "99999999d"], 2, "100 years"),
        (["--claims", '{"exp": 1}', "--exp", "1m"], 2, "--exp conflicts"),
        (["--claims", "[1, 2]"], 3, "must be a JSON object"),
        (["--claims", "{not json"], 3, "not valid JSON"),
        (["--claims", '{"sub": "a", "sub": "b"}'], 3, "duplicate member"),
        (["--claims", '{"n": NaN}'], 3, "NaN"),
        (["--claims", "@/nonexistent/claims.json"], 3, "cannot read claims"),
        (["--header", '{"alg": "HS512"}'], 3, "conflicts"),
        (["--header", '{"b64": false, "crit": ["b64"]}'], 3, "b64"),
        (["--header", '{"typ": "JWT"}', "--typ", "at+jwt"], 2, "--typ conflicts"),
        (["--alg", "RS256"], 3, "cannot be used with RS256"),
        (["--alg", "none"], 5, "ERR_JOSE_ALG_NOT_ALLOWED"),
        (["--now", "nan"], 2, "--now"),
    ],
)
def test_sign_rejects_bad_input(
    run: Any, keys: Any, args: list[str], status: int, fragment: str
) -> None:
    result = run("jwt", "sign", "--key", str(keys["hs"].private_jwk), *args)
    assert result.exit_code == status, result.output
    assert fragment in result.stderr
    assert result.stdout == ""
    assert keys["hs"].key.to_dict(private=True)["k"] not in result.output


def test_sign_needs_a_private_key(run: Any, keys: Any) -> None:
    for path in (keys["ec"].public_jwk, keys["ec"].public_pem):
        result = run("jwt", "sign", "--key", str(path), "--alg", "ES256")
        assert result.exit_code == 3
        assert "private key" in result.stderr


def test_sign_with_an_encrypted_pem(run: Any, keys: Any, tmp_path: Path) -> None:
    path = tmp_path / "encrypted.pem"
    path.write_bytes(keys["rsa"].key.to_pem(private=True, password=b"hunter22"))
    token = _sign(run, "--key", str(path), "--alg", "RS256", "--password-stdin", stdin="hunter22\n")
    assert jwt.decode(token, keys["rsa"].key.public(), algorithms=["RS256"], now=NOW) == {
        "iat": NOW
    }
    wrong = run(
        "jwt", "sign", "--key", str(path), "--alg", "RS256", "--password-stdin", stdin="hunter2\n"
    )
    assert wrong.exit_code == 3
    assert "hunter2" not in wrong.stderr
    conflict = run(
        "jwt",
        "sign",
        "--key",
        str(path),
        "--alg",
        "RS256",
        "--password-stdin",
        "--claims",
        "-",
        stdin="hunter22\n",
    )
    assert conflict.exit_code == 2


# -- verify ----------------------------------------------------------------------------------


def test_verify_prints_claims_and_exits_zero(run: Any, keys: Any) -> None:
    token = jwt.encode({**CLAIMS, "exp": NOW + 600}, keys["rsa"].key, "RS256")
    for key_file in (keys["rsa"].public_jwk, keys["rsa"].public_pem, keys["rsa"].private_jwk):
        result = _verify(
            run, token, "--key", str(key_file), "--alg", "RS256", "--iss", ISSUER, "--aud", AUDIENCE
        )
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout) == {**CLAIMS, "exp": NOW + 600}
        assert result.stderr == ""


def test_verify_reads_the_token_from_stdin(run: Any, keys: Any) -> None:
    token = jwt.encode({"sub": "x"}, keys["ed"].key, "EdDSA")
    result = _verify(
        run, "-", "--key", str(keys["ed"].public_jwk), "--alg", "EdDSA", stdin=f"  {token}\r\n\n"
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"sub": "x"}


def test_verify_with_a_jwks_selects_by_kid(run: Any, keys: Any, tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    members = [keys[name].key.public().to_dict() for name in ("ec", "rsa", "ed")]
    jwks.write_text(json.dumps({"keys": [*members, {"kty": "EC", "crv": "P-192"}]}))
    for name, alg in (("ec", "ES256"), ("rsa", "RS256"), ("ed", "EdDSA")):
        token = jwt.encode({"who": name}, keys[name].key, alg)
        result = _verify(run, token, "--jwks", str(jwks), "--alg", "ES256,RS256", "--alg", "EdDSA")
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout) == {"who": name}
        assert "skipped 1 unusable key" in result.stderr  # the P-192 member


def test_verify_accepts_peer_tokens(run: Any, keys: Any) -> None:
    rsa_private = serialization.load_pem_private_key(keys["rsa"].key.to_pem(private=True), None)
    token = pyjwt.encode({**CLAIMS, "exp": NOW + 600}, rsa_private, algorithm="PS256")
    result = _verify(
        run,
        token,
        "--key",
        str(keys["rsa"].public_pem),
        "--alg",
        "PS256",
        "--aud",
        AUDIENCE,
        "--iss",
        ISSUER,
    )
    assert result.exit_code == 0, result.stderr


def test_verify_leeway_and_iss_aud_lists(run: Any, keys: Any) -> None:
    token = jwt.encode({**CLAIMS, "exp": NOW + 30}, keys["hs"].key, "HS256")
    key = str(keys["hs"].private_jwk)
    late = _verify(run, token, "--key", key, "--alg", "HS256", "--aud", AUDIENCE)  # now = NOW+60
    assert late.exit_code == 8
    lenient = _verify(
        run, token, "--key", key, "--alg", "HS256", "--aud", AUDIENCE, "--leeway", "1m"
    )
    assert lenient.exit_code == 0, lenient.stderr
    any_of = _verify(
        run,
        token,
        "--key",
        key,
        "--alg",
        "HS256",
        "--leeway",
        "60",
        "--aud",
        "other",
        "--aud",
        AUDIENCE,
        "--iss",
        "x",
        "--iss",
        ISSUER,
    )
    assert any_of.exit_code == 0, any_of.stderr


def _tampered(token: str) -> str:
    head, payload, signature = token.split(".")
    flipped = "A" if signature[0] != "A" else "B"
    return f"{head}.{payload}.{flipped}{signature[1:]}"


@pytest.fixture
def cases(keys: Any) -> dict[str, tuple[str, list[str]]]:
    """Tokens that must be rejected, each with the extra verify arguments (the EC key first)."""
    ec = keys["ec"].key
    good = jwt.encode({**CLAIMS, "exp": NOW + 600}, ec, "ES256")
    header_none = b64url(b'{"alg":"none"}')
    cases = {
        "malformed": ("not.a.jwt", []),
        "two_segments": ("abc.def", []),
        "alg_none": (f"{header_none}.{b64url(b'{}')}.", []),
        "alg_not_allowed": (jwt.encode(CLAIMS, keys["hs"].key, "HS256"), []),
        "bad_signature": (_tampered(good), []),
        "expired": (jwt.encode({**CLAIMS, "exp": NOW}, ec, "ES256"), []),
        "not_yet_valid": (jwt.encode({**CLAIMS, "nbf": NOW + 3600}, ec, "ES256"), []),
        "wrong_issuer": (good, ["--iss", "https://evil.example"]),
        "wrong_audience": (good, ["--aud", "api://other"]),
        "unexpected_audience": (jwt.encode({"iss": ISSUER, "aud": "x"}, ec, "ES256"), []),
        "wrong_typ": (good, ["--typ", "at+jwt"]),
        "missing_claim": (good, ["--require", "jti"]),
    }
    key = ["--key", str(keys["ec"].public_jwk)]
    return {name: (token, key + extra) for name, (token, extra) in cases.items()}


@pytest.mark.parametrize(
    ("case", "status", "fragment"),
    [
        ("malformed", 4, "ERR_JOSE_MALFORMED"),
        ("two_segments", 4, "ERR_JOSE_MALFORMED"),
        ("alg_none", 5, "ERR_JOSE_ALG_NOT_ALLOWED"),
        ("alg_not_allowed", 5, "'HS256' is not allowed"),
        ("bad_signature", 7, "ERR_JOSE_SIGNATURE_INVALID"),
        ("expired", 8, "ERR_JWT_EXPIRED"),
        ("not_yet_valid", 9, "ERR_JWT_NOT_YET_VALID"),
        ("wrong_issuer", 10, "claim 'iss'"),
        ("wrong_audience", 10, "claim 'aud'"),
        ("unexpected_audience", 10, "claim 'aud'"),
        ("wrong_typ", 10, "claim 'typ'"),
        ("missing_claim", 10, "claim 'jti'"),
    ],
)
def test_verify_failures_have_distinct_exit_codes(
    run: Any, cases: dict[str, tuple[str, list[str]]], case: str, status: int, fragment: str
) -> None:
    token, extra = cases[case]
    args = ["--alg", "ES256", *extra]
    if "--iss" not in extra:
        args += ["--iss", ISSUER]
    if "--aud" not in extra and case != "unexpected_audience":
        args += ["--aud", AUDIENCE]
    result = _verify(run, token, *args)
    assert result.exit_code == status, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: ")
    assert fragment in lines[0]


def test_verify_key_not_found_in_set(run: Any, keys: Any, tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(JWKSet([keys["rsa"].key.public()]).to_dict()))
    token = jwt.encode(CLAIMS, keys["ec"].key, "ES256")
    result = _verify(run, token, "--jwks", str(jwks), "--alg", "ES256", "--aud", AUDIENCE)
    assert result.exit_code == 6
    assert "ERR_JOSE_KEY_NOT_FOUND" in result.stderr


def test_verify_wrong_key_family_is_a_key_error(run: Any, keys: Any) -> None:
    # An RSA public key must never act as an HMAC secret (RFC 8725 §3.1).
    token = jwt.encode(CLAIMS, keys["hs"].key, "HS256")
    result = _verify(run, token, "--key", str(keys["rsa"].public_pem), "--alg", "HS256")
    assert result.exit_code == 3
    assert "cannot be used with HS256" in result.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ([], "exactly one of --key and --jwks"),
        (["--key", "a", "--jwks", "b"], "exactly one of --key and --jwks"),
        (["--key", "-"], "only one input may read stdin"),
        (["--key", "k", "--alg", ","], "at least one algorithm"),
    ],
)
def test_verify_usage_errors(run: Any, args: list[str], fragment: str) -> None:
    full = ["jwt", "verify", *args, "-"]
    if "--alg" not in args:
        full[2:2] = ["--alg", "ES256"]
    result = run(*full)
    assert result.exit_code == 2
    assert fragment in result.stderr


def test_verify_requires_an_algorithm(run: Any, keys: Any) -> None:
    token = jwt.encode(CLAIMS, keys["ec"].key, "ES256")
    result = run("jwt", "verify", "--key", str(keys["ec"].public_jwk), token)
    assert result.exit_code == 2
    assert "--alg" in result.stderr


# -- inspect ---------------------------------------------------------------------------------


def test_inspect_shows_header_and_claims_marked_unverified(run: Any, keys: Any) -> None:
    token = _tampered(jwt.encode({**CLAIMS, "exp": NOW, "iat": NOW - 60}, keys["ec"].key, "ES256"))
    result = run("jwt", "inspect", token)
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["status"] == "UNVERIFIED"
    assert out["format"] == "JWS"
    assert out["header"] == {"alg": "ES256", "kid": keys["ec"].key.kid, "typ": "JWT"}
    assert out["claims"] == {**CLAIMS, "exp": NOW, "iat": NOW - 60}
    assert out["times"] == {"exp": "2023-11-14T22:13:20Z", "iat": "2023-11-14T22:12:20Z"}
    assert "UNVERIFIED" in result.stderr
    from_stdin = run("jwt", "inspect", "-", stdin=token + "\n")
    assert json.loads(from_stdin.stdout) == out


def test_inspect_jwe_shows_the_header_only(run: Any) -> None:
    header = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "k1"}
    token = ".".join(
        [
            b64url(json.dumps(header).encode()),
            b64url(b"k" * 256),
            b64url(b"i" * 12),
            b64url(b"secret payload"),
            b64url(b"t" * 16),
        ]
    )
    result = run("jwt", "inspect", token)
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["format"] == "JWE"
    assert out["header"] == header
    assert "claims" not in out
    assert "payload" not in out
    assert out["status"] == "UNVERIFIED"


def test_inspect_non_json_and_unencoded_payloads(run: Any, keys: Any) -> None:
    token = jws.sign(b"hello, world", keys["ed"].key, "EdDSA")
    out = json.loads(run("jwt", "inspect", token).stdout)
    assert out["payload"] == "hello, world"
    assert "claims" not in out
    detached = jws.sign(
        b"$.02", keys["ed"].key, "EdDSA", {"b64": False, "crit": ["b64"]}, detached=True
    )
    assert json.loads(run("jwt", "inspect", detached).stdout)["payload"] == ""


def test_inspect_escapes_terminal_controls(run: Any, keys: Any) -> None:
    token = jwt.encode({"sub": "\x1b[31mred\x1b[0m\u202e\x9b"}, keys["ed"].key, "EdDSA")
    result = run("jwt", "inspect", token)
    assert result.exit_code == 0
    assert "\x1b" not in result.stdout
    assert "\u202e" not in result.stdout
    assert "\x9b" not in result.stdout
    assert json.loads(result.stdout)["claims"]["sub"] == "\x1b[31mred\x1b[0m\u202e\x9b"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b",
        "a.b.c.d",
        "!!!.e30.",
        b64url(b"[1]") + ".e30.",
        b64url(b'{"a":1,"a":2}') + ".e30.",
        "é.e30.",
    ],
)
def test_inspect_rejects_malformed_tokens(run: Any, token: str) -> None:
    result = run("jwt", "inspect", token)
    assert result.exit_code == 4, result.output
    assert len(result.stderr.splitlines()) == 1
    assert "UNVERIFIED" not in result.stdout


# -- the installed entry point, for real ------------------------------------------------------


def _exe(
    authgate_exe: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(authgate_exe), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_entry_point_generate_sign_verify_pipeline(authgate_exe: Path, tmp_path: Path) -> None:
    generated = _exe(authgate_exe, "jwk", "generate", "--alg", "ES256")
    assert generated.returncode == 0, generated.stderr
    private = tmp_path / "key.jwk"
    private.write_text(generated.stdout)
    public = _exe(authgate_exe, "jwk", "public", "-", stdin=generated.stdout)
    assert public.returncode == 0
    public_path = tmp_path / "key.pub.jwk"
    public_path.write_text(public.stdout)

    signed = _exe(
        authgate_exe,
        "jwt",
        "sign",
        "--key",
        str(private),
        "--claims",
        json.dumps(CLAIMS),
        "--exp",
        "5m",
    )
    assert signed.returncode == 0, signed.stderr
    verified = _exe(
        authgate_exe,
        "jwt",
        "verify",
        "--key",
        str(public_path),
        "--alg",
        "ES256",
        "--iss",
        ISSUER,
        "--aud",
        AUDIENCE,
        "-",
        stdin=signed.stdout,
    )
    assert verified.returncode == 0, verified.stderr
    claims = json.loads(verified.stdout)
    assert {k: claims[k] for k in CLAIMS} == CLAIMS
    assert claims["exp"] - claims["iat"] == 300

    expired = _exe(
        authgate_exe,
        "jwt",
        "verify",
        "--key",
        str(public_path),
        "--alg",
        "ES256",
        "--aud",
        AUDIENCE,
        "--now",
        str(claims["exp"] + 1),
        signed.stdout.strip(),
    )
    assert expired.returncode == 8
    assert expired.stderr == "Error: claim 'exp': token has expired (ERR_JWT_EXPIRED)\n"

    inspected = _exe(authgate_exe, "jwt", "inspect", "-", stdin=signed.stdout)
    assert inspected.returncode == 0
    assert json.loads(inspected.stdout)["status"] == "UNVERIFIED"
    assert "UNVERIFIED" in inspected.stderr


def test_entry_point_hostile_inputs_fail_cleanly(authgate_exe: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.key"
    garbage.write_bytes(b"\x00\xff-----BEGIN PRIVATE KEY-----\n\x1b[2J\n-----END PRIVATE KEY-----")
    token = "eyJhbGciOiJIUzI1NiJ9.e30.c2ln"
    for args in (
        ["jwt", "verify", "--key", str(garbage), "--alg", "RS256", token],
        ["jwt", "verify", "--key", str(tmp_path / "missing"), "--alg", "RS256", token],
        ["jwt", "sign", "--key", str(garbage), "--alg", "RS256"],
        ["jwk", "public", str(garbage)],
        ["jwt", "inspect", "x" * 100_000],
    ):
        result = _exe(authgate_exe, *args)
        assert result.returncode in (3, 4), (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert len(result.stderr.splitlines()) == 1
        assert "\x1b" not in result.stderr


def test_entry_point_help_lists_the_commands(authgate_exe: Path) -> None:
    result = _exe(authgate_exe, "jwt", "--help")
    assert result.returncode == 0
    for command in ("sign", "verify", "inspect"):
        assert command in result.stdout
    jwk_help = _exe(authgate_exe, "jwk", "--help").stdout
    for command in ("generate", "public", "thumbprint", "from-pem", "to-pem", "from-secret"):
        assert command in jwk_help


def test_public_pem_verifies_what_private_jwk_signed(authgate_exe: Path, keys: Any) -> None:
    signed = _exe(
        authgate_exe, "jwt", "sign", "--key", str(keys["rsa"].private_jwk), "--alg", "RS512"
    )
    assert signed.returncode == 0, signed.stderr
    verified = _exe(
        authgate_exe,
        "jwt",
        "verify",
        "--key",
        str(keys["rsa"].public_pem),
        "--alg",
        "RS512",
        signed.stdout.strip(),
    )
    assert verified.returncode == 0, verified.stderr
    assert set(json.loads(verified.stdout)) == {"iat"}


def test_key_objects_round_trip(keys: Any) -> None:
    # The fixtures themselves: the CLI tests above rely on these files matching their key.
    for files in keys.values():
        assert JWK.from_dict(json.loads(files.private_jwk.read_text())).thumbprint() == (
            files.key.thumbprint()
        )
