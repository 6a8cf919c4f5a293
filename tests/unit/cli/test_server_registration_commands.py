"""`authgate registration-token create|list|revoke` on SQLite and PostgreSQL: the token is shown
once and stored as its keyed hash; `client create --application-type` holds the CLI's clients to
the same redirect rule as registered ones; `client list` shows where each client came from."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from authgate.cli import main
from authgate.server.secret_key import ServerSecret
from authgate.server.storage import Database, SqlStorage

SECRET = "s" * 43


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "AUTHGATE_DATABASE_URL": database_url,
        "AUTHGATE_SECRET_KEY": SECRET,
        "AUTHGATE_ISSUER": "https://auth.example.test",
        "AUTHGATE_CONFIG": "",
        "AUTHGATE_SECRET_KEY_FILE": str(tmp_path / "unused"),
        "AUTHGATE_REGISTRATION_MODE": "token",
    }


def _cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.output


def _json(env: dict[str, str], *args: str) -> Any:
    code, out = _cli(env, *args, "--json")
    assert code == 0, out
    return json.loads(out)


async def _stored_hashes(url: str) -> list[str]:
    db = Database(url)
    try:
        return [t.token_hash for t in await SqlStorage(db).list_initial_access_tokens()]
    finally:
        await db.close()


def test_create_list_revoke(env: dict[str, str], database_url: str) -> None:
    created = _json(env, "registration-token", "create", "--expires", "1h", "--max-uses", "2")
    token = created["token"]
    assert created["max_uses"] == 2
    assert created["expires_at"] - created["created_at"] == 3600
    assert created["usable"] is True
    # Stored as its keyed hash only.
    hashes = asyncio.run(_stored_hashes(database_url))
    assert hashes == [ServerSecret(SECRET.encode()).hash_registration_token(token)]
    listed = _json(env, "registration-token", "list")
    assert [t["id"] for t in listed] == [created["id"]]
    assert "token" not in listed[0]
    code, out = _cli(env, "registration-token", "list")
    assert out.splitlines()[0].split("\t") == ["ID", "CREATED", "EXPIRES", "USES", "STATE"]
    assert out.splitlines()[1].split("\t")[3:] == ["0/2", "usable"]
    assert token not in out
    assert _json(env, "registration-token", "revoke", created["id"]) == {"revoked": created["id"]}
    code, out = _cli(env, "registration-token", "revoke", created["id"])
    assert code != 0
    assert "no usable registration token" in out
    assert _cli(env, "registration-token", "list")[1].splitlines()[1].endswith("\trevoked")


def test_bad_options_are_usage_errors(env: dict[str, str]) -> None:
    for args in (("--expires", "0s"), ("--expires", "soon"), ("--max-uses", "0")):
        code, _ = _cli(env, "registration-token", "create", *args)
        assert code == 2, args


def test_a_note_when_the_mode_does_not_ask_for_tokens(env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        main, ["registration-token", "create"], env={**env, "AUTHGATE_REGISTRATION_MODE": "open"}
    )
    assert result.exit_code == 0
    assert 'mode is "open"' in result.stderr


def test_client_create_application_type_uses_the_registration_rule(env: dict[str, str]) -> None:
    _json(env, "api", "create", "--identifier", "https://api.example.test", "--scope", "read")
    args = ("client", "create", "--name", "app", "--grant", "authorization_code")
    loopback = ("--redirect-uri", "http://127.0.0.1/cb")
    code, out = _cli(env, *args, *loopback, "--application-type", "web")
    assert code != 0
    assert "web client's redirect URIs must use https" in out
    native = _json(env, *args, *loopback, "--application-type", "native")
    assert native["application_type"] == "native"
    assert native["origin"] == "cli"
    listed = _cli(env, "client", "list")[1].splitlines()
    assert listed[0].split("\t")[3] == "ORIGIN"
    assert listed[1].split("\t")[3] == "cli"
