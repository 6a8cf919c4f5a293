"""Fixtures for the `authgate jwk` / `authgate jwt` command tests: keys on disk and a runner."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from authgate.cli import main
from authgate.jose import JWK


@dataclass(frozen=True)
class KeyFiles:
    """A key and its files: private JWK, public JWK, private PEM, public PEM."""

    key: JWK
    private_jwk: Path
    public_jwk: Path
    private_pem: Path | None
    public_pem: Path | None


def write_key(directory: Path, name: str, key: JWK) -> KeyFiles:
    private_jwk = directory / f"{name}.jwk"
    private_jwk.write_text(json.dumps(key.to_dict(private=True)))
    if key.kty == "oct":
        return KeyFiles(key, private_jwk, private_jwk, None, None)
    public_jwk = directory / f"{name}.pub.jwk"
    public_jwk.write_text(json.dumps(key.public().to_dict()))
    private_pem = directory / f"{name}.pem"
    private_pem.write_bytes(key.to_pem(private=True))
    public_pem = directory / f"{name}.pub.pem"
    public_pem.write_bytes(key.to_pem())
    return KeyFiles(key, private_jwk, public_jwk, private_pem, public_pem)


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeyFiles]:
    """One key per family, written once per session (RSA generation is the slow part)."""
    directory = tmp_path_factory.mktemp("keys")
    return {
        "ec": write_key(directory, "ec", JWK.generate("EC", crv="P-256", alg="ES256")),
        "rsa": write_key(directory, "rsa", JWK.generate("RSA", size=2048)),
        "ed": write_key(directory, "ed", JWK.generate("OKP", crv="Ed25519")),
        "hs": write_key(directory, "hs", JWK.generate("oct", size=256, alg="HS256")),
    }


Run = Callable[..., Result]


@pytest.fixture
def run() -> Run:
    """Invoke `authgate` in-process; stdout and stderr are kept apart."""
    runner = CliRunner()

    def invoke(*args: str, stdin: str | bytes | None = None) -> Result:
        return runner.invoke(main, list(args), input=stdin, catch_exceptions=True)

    return invoke


@pytest.fixture(scope="session")
def authgate_exe() -> Path:
    """The installed console script (the real entry point)."""
    exe = Path(sys.executable).parent / "authgate"
    if not exe.exists():
        pytest.fail(f"the authgate entry point is not installed at {exe}")
    return exe
