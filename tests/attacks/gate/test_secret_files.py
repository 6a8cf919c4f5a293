"""Secret files named by the gate and gateway configuration (`secret_file`, `client_secret_file`,
`[identity_token] key_file`) are read with a warning when other users may read them, as the
server does for its own key file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from authgate.gate import load_gate_config
from authgate.gateway.config_loader import load_gateway_config
from authgate.jose import JWK

GATE = """
[[issuers]]
issuer = "https://issuer.test"
secret_file = "hmac.secret"
audiences = ["https://api.test"]
[[routes]]
path = "/"
public = true
"""


def _write(path: Path, data: str, mode: int) -> None:
    path.write_text(data)
    path.chmod(mode)


@pytest.mark.parametrize(("mode", "warned"), [(0o644, True), (0o640, True), (0o600, False)])
def test_hmac_secret_file_permissions(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int, warned: bool
) -> None:
    _write(tmp_path / "hmac.secret", "s" * 48 + "\n", mode)
    (tmp_path / "gate.toml").write_text(GATE)
    with caplog.at_level(logging.WARNING, logger="authgate"):
        load_gate_config(tmp_path / "gate.toml")
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("readable by other users" in m for m in messages) is warned
    assert not any("s" * 48 in m for m in messages)  # never the secret itself


def test_identity_token_key_file_permissions(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = JWK.generate("EC", crv="P-256", alg="ES256")
    _write(tmp_path / "identity.jwk", json.dumps(key.to_dict(private=True)), 0o644)
    _write(tmp_path / "hmac.secret", "s" * 48, 0o600)
    config = GATE + '\n[identity_token]\nissuer = "https://gw.test"\nkey_file = "identity.jwk"\n'
    (tmp_path / "gateway.toml").write_text(config)
    with caplog.at_level(logging.WARNING, logger="authgate"):
        load_gateway_config(tmp_path / "gateway.toml")
    assert any("identity.jwk is readable by other users" in r.getMessage() for r in caplog.records)
