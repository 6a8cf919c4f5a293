"""`authgate jwk …` and `authgate jwt …`: key generation and token tools."""

from __future__ import annotations

import json

import click

from authgate.jose import JWK


@click.group("jwk")
def jwk_group() -> None:
    """Generate and convert JSON Web Keys."""


@jwk_group.command("generate")
@click.option("--kty", required=True, type=click.Choice(["RSA", "EC", "OKP", "oct"]))
@click.option("--crv", help="EC: P-256, P-384, P-521, secp256k1; OKP: Ed25519, Ed448, X25519, X448")
@click.option("--size", type=int, help="RSA modulus or oct key size in bits")
@click.option("--kid", help="key id (default: the RFC 7638 thumbprint)")
@click.option("--alg", help="bind the key to one algorithm")
@click.option("--public", "public_only", is_flag=True, help="print the public key only")
def jwk_generate(
    kty: str, crv: str | None, size: int | None, kid: str | None, alg: str | None,
    public_only: bool,
) -> None:
    """Print a new private JWK (or its public part)."""
    key = JWK.generate(kty, size=size, crv=crv, kid=kid, alg=alg)
    out = key.public().to_dict() if public_only else key.to_dict(private=True)
    click.echo(json.dumps(out, indent=2))


@click.group("jwt")
def jwt_group() -> None:
    """Sign, verify and inspect JWTs."""
