"""`authgate api-key new|hash`: keys and the hashes the gate's configuration holds."""

from __future__ import annotations

import json

from click.testing import CliRunner

from authgate.cli import main
from authgate.verifier import ApiKeyConfig, ApiKeyEntry, Verifier, VerifierConfig
from authgate.verifier.api_keys import parse_key_hash


def test_new_key_and_its_hash_are_accepted_by_the_verifier() -> None:
    runner = CliRunner()
    created = runner.invoke(main, ["api-key", "new"])
    assert created.exit_code == 0
    pair = json.loads(created.output)
    hashed = runner.invoke(main, ["api-key", "hash"], input=pair["key"] + "\n")
    assert hashed.exit_code == 0
    assert hashed.output.strip() == pair["hash"]
    entry = ApiKeyEntry(parse_key_hash(pair["hash"]), "job")
    verifier = Verifier(VerifierConfig(api_keys=ApiKeyConfig((entry,))))
    assert verifier.verify_api_key(pair["key"]).subject == "job"


def test_hash_refuses_weak_or_malformed_keys() -> None:
    runner = CliRunner()
    for bad in ("", "short", "x" * 600, "caf\u00e9" * 10, "a\tb" * 10):
        result = runner.invoke(main, ["api-key", "hash"], input=bad)
        assert result.exit_code == 3, bad
        assert "Error:" in result.output
