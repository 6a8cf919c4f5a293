"""`authgate jwk …`: generate, convert and fingerprint JSON Web Keys (RFC 7517, 7638, 8037, 9278).

Keys are printed as JWK JSON on stdout; errors go to stderr as one line, with the exit codes of
`authgate.cli.exit_codes`.
"""

from __future__ import annotations

import click

from authgate.cli.exit_codes import CliError, ExitCode, jose_errors
from authgate.cli.jose_inputs import (
    echo_json,
    load_key,
    parse_keys,
    pem_key,
    read_input,
    read_password,
)
from authgate.jose import JWK, AlgorithmNotAllowed
from authgate.jose.jwk import KeyRequirement, key_requirement

__all__ = ["jwk_group"]

# RFC 9278 §3: the URI form of a SHA-256 JWK thumbprint.
_THUMBPRINT_URN = "urn:ietf:params:oauth:jwk-thumbprint:sha-256:"
# When only --alg is given, the key type to generate. Algorithms that accept several curves get
# the most widely supported one.
_PREFERRED_FAMILIES = (("OKP", "Ed25519"), ("EC", "P-256"))

_FILE = click.argument("source", metavar="FILE", default="-")


@click.group("jwk")
def jwk_group() -> None:
    """Generate, convert and fingerprint JSON Web Keys."""


@jwk_group.command("generate")
@click.option(
    "--kty",
    type=click.Choice(["RSA", "EC", "OKP", "oct"]),
    help="key type (default: the one --alg needs)",
)
@click.option("--crv", help="EC: P-256, P-384, P-521, secp256k1; OKP: Ed25519, Ed448, X25519, X448")
@click.option("--size", type=click.IntRange(min=1), help="RSA modulus or oct key size in bits")
@click.option("--kid", help="key id (default: the RFC 7638 thumbprint)")
@click.option("--alg", help="bind the key to one algorithm, e.g. ES256 or RSA-OAEP-256")
@click.option("--use", type=click.Choice(["sig", "enc"]), help="bind to signing or encryption")
@click.option("--public", "public_only", is_flag=True, help="print the public key only")
def jwk_generate(
    *,
    kty: str | None,
    crv: str | None,
    size: int | None,
    kid: str | None,
    alg: str | None,
    use: str | None,
    public_only: bool,
) -> None:
    """Print a new private JWK (or, with --public, its public part).

    \b
    Examples:
      authgate jwk generate --alg ES256
      authgate jwk generate --kty RSA --size 3072 --alg PS256 --use sig
      authgate jwk generate --kty oct --size 256 --alg HS256
    """
    if kty is None:
        if alg is None:
            raise click.UsageError("give --kty, or --alg to pick the key type")
        kty, default_crv = _family_for(alg)
        crv = crv or default_crv
    if crv is not None and kty in ("RSA", "oct"):
        raise click.UsageError(f"--crv does not apply to {kty} keys")
    if size is not None and kty in ("EC", "OKP"):
        raise click.UsageError(f"--size does not apply to {kty} keys (the curve sets it)")
    with jose_errors():
        key = JWK.generate(kty, size=size, crv=crv, kid=kid, alg=alg, use=use)
        if alg is not None:
            _check_binding(key, alg)
        _echo_key(key.public() if public_only else key, private=not public_only)


def _family_for(alg: str) -> tuple[str, str | None]:

    families = _requirement(alg).families
    if len(families) == 1:
        return next(iter(families))
    return next(f for f in _PREFERRED_FAMILIES if f in families)


def _check_binding(key: JWK, alg: str) -> None:
    """Refuse to print a key bound to an algorithm it cannot serve (e.g. a P-384 key for ES256)."""
    use = _requirement(alg).use
    key.check(alg, "sign" if use == "sig" else "encrypt", private=False)


def _requirement(alg: str) -> KeyRequirement:
    try:
        return key_requirement(alg)
    except AlgorithmNotAllowed:
        raise CliError(f"unsupported algorithm {alg!r}", ExitCode.ALGORITHM) from None


@jwk_group.command("public")
@_FILE
def jwk_public(source: str) -> None:
    """Print the public JWK of a key (JWK or PEM), or the public set of a private JWKS.

    FILE defaults to `-` (stdin).
    """
    keys = parse_keys(read_input(source, "key file"))
    with jose_errors():
        if isinstance(keys, JWK):
            _echo_key(keys.public(), private=False)
            return
        if keys.skipped:
            raise CliError(f"{keys.skipped} key(s) in the set are not usable", ExitCode.INPUT)
        echo_json({"keys": [key.public().to_dict() for key in keys]})


@jwk_group.command("thumbprint")
@_FILE
@click.option("--uri", is_flag=True, help="print the RFC 9278 URN form")
def jwk_thumbprint(source: str, uri: bool) -> None:
    """Print the RFC 7638 SHA-256 thumbprint of a key (JWK or PEM; FILE defaults to stdin)."""
    key = load_key(source)
    with jose_errors():
        thumbprint = key.thumbprint()
    click.echo(_THUMBPRINT_URN + thumbprint if uri else thumbprint)


@jwk_group.command("from-pem")
@_FILE
@click.option("--password-stdin", is_flag=True, help="read the PEM password from stdin")
@click.option("--kid", help="key id (default: the RFC 7638 thumbprint)")
@click.option("--alg", help="bind the key to one algorithm")
@click.option("--use", type=click.Choice(["sig", "enc"]), help="bind to signing or encryption")
@click.option("--public", "public_only", is_flag=True, help="print the public key only")
def jwk_from_pem(
    *,
    source: str,
    password_stdin: bool,
    kid: str | None,
    alg: str | None,
    use: str | None,
    public_only: bool,
) -> None:
    """Convert a PEM key or certificate to a JWK (private when the PEM is private)."""
    if password_stdin and source == "-":
        raise click.UsageError("--password-stdin needs the PEM in a FILE")
    password = read_password() if password_stdin else None
    data = read_input(source, "PEM file")
    if b"-----BEGIN " not in data:
        raise CliError("the file holds no PEM block", ExitCode.INPUT)
    key = pem_key(data, password, kid=kid, alg=alg, use=use)
    with jose_errors():
        if alg is not None:
            _check_binding(key, alg)
        private = key.is_private and not public_only
        _echo_key(key if private else key.public(), private=private)


@jwk_group.command("to-pem")
@_FILE
@click.option("--private", is_flag=True, help="print the private key (PKCS#8)")
def jwk_to_pem(source: str, private: bool) -> None:
    """Convert a JWK to PEM: the public key (SPKI) by default, or the private key (PKCS#8)."""
    key = load_key(source)
    with jose_errors():
        pem = key.to_pem(private=private)
    click.echo(pem.decode("ascii"), nl=False)


@jwk_group.command("from-secret")
@_FILE
@click.option("--kid", help="key id (default: none, see below)")
@click.option("--alg", help="bind the key to one algorithm, e.g. HS256")
def jwk_from_secret(source: str, kid: str | None, alg: str | None) -> None:
    """Wrap the bytes of a shared secret as an `oct` JWK (for HS256/384/512 or AES).

    The file is taken byte for byte except for one trailing newline (\\n or \\r\\n), which text
    editors add. The secret must be at least as long as the algorithm's hash (RFC 7518 §3.2).
    No kid is derived: the thumbprint of a secret is a hash of it, which would let a weak secret
    be guessed offline.
    """
    secret = read_input(source, "secret file")
    secret = secret.removesuffix(b"\n").removesuffix(b"\r") if secret.endswith(b"\n") else secret
    with jose_errors():
        key = JWK.from_secret(secret, kid=kid, alg=alg)
        if alg is not None:
            _check_binding(key, alg)
        _echo_key(key, private=True)


def _echo_key(key: JWK, *, private: bool) -> None:

    echo_json(key.to_dict(private=private))
