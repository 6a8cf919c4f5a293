"""An HMAC issuer's `secret_file` goes through the same key-confusion check as `JWK.from_secret`
(RFC 8725 §2.1): a public key saved in the file, in any encoding, is refused when the configuration
is loaded (so a gateway reload keeps its running configuration); a random secret in the file
works."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from authgate.gate import load_gate_config
from authgate.jose import JWK
from authgate.verifier import ConfigError, Verifier

CONFIG = """
[[issuers]]
issuer = "https://hs.example.com"
audiences = ["orders"]
algorithms = ["HS256"]
secret_file = "issuer.secret"

[[routes]]
path = "/orders"
upstream = "http://127.0.0.1:9000"
"""
VICTIM = JWK.generate("EC", crv="P-256")


def verifier_for(tmp_path: Path, content: bytes) -> Verifier:
    (tmp_path / "issuer.secret").write_bytes(content)
    (tmp_path / "issuer.secret").chmod(0o600)
    config_file = tmp_path / "gate.toml"
    config_file.write_text(CONFIG)
    return Verifier(load_gate_config(config_file).verifier)


@pytest.mark.parametrize(
    "content",
    [
        b"\xef\xbb\xbf" + VICTIM.to_pem(),  # a PEM saved with a byte-order mark
        json.dumps([VICTIM.public().to_dict()]).encode(),  # the issuer's JWKS keys array
        json.dumps(VICTIM.public().to_dict()).encode("utf-16"),  # a JWK saved as UTF-16
    ],
    ids=["PEM with BOM", "JWK array", "UTF-16 JWK"],
)
def test_a_public_key_in_the_secret_file_is_refused(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(ConfigError, match="unusable HMAC secret"):
        verifier_for(tmp_path, content)


def test_a_random_secret_file_is_used(tmp_path: Path) -> None:
    assert verifier_for(tmp_path, secrets.token_urlsafe(48).encode() + b"\n") is not None
