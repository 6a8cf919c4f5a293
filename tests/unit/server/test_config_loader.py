"""Configuration loading (TOML + environment, the secret key file) and the admin CLI."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from authgate.cli import main
from authgate.config import ConfigError, parse_duration
from authgate.server.config import HttpSettings
from authgate.server.config_loader import load_config


def test_defaults_and_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(None, {})
    assert config.issuer == "http://127.0.0.1:8000"
    assert config.database_url == "sqlite:///authgate.db"
    key_file = tmp_path / "authgate.secret"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_config(None, {}).secret_key == config.secret_key  # created once, then reused
    assert config.secret_key.decode() not in repr(config)


def test_toml_and_environment_precedence(tmp_path: Path) -> None:
    file = tmp_path / "authgate.toml"
    file.write_text(
        'issuer = "https://auth.example.test"\n'
        'database_url = "sqlite:///from-file.db"\n'
        'secret_key_file = "keys/secret"\n'
        '[keys]\nrotation_period = "10d"\npublication_lead = "1d"\n'
        '[tokens]\ndefault_access_token_ttl = "2m"\n'
        "[http]\nport = 9000\nmax_body_size = 4096\n"
        'trusted_proxies = ["10.0.0.0/8", "2001:db8::1"]\n'
        "[database]\npool_size = 7\n"
    )
    (tmp_path / "keys").mkdir()
    config = load_config(file, {})
    assert config.issuer == "https://auth.example.test"
    assert config.keys.rotation_period == 10 * 86400
    assert config.tokens.default_access_token_ttl == 120
    assert config.http.port == 9000
    assert config.http.trusted_proxies == ("10.0.0.0/8", "2001:db8::1")
    assert config.database.pool_size == 7
    assert (tmp_path / "keys" / "secret").exists()  # relative to the configuration file
    env = {
        "AUTHGATE_CONFIG": str(file),
        "AUTHGATE_ISSUER": "https://other.example.test",
        "AUTHGATE_DATABASE_URL": "postgresql://db.example.test/auth",
        "AUTHGATE_SECRET_KEY": "k" * 40,
    }
    overridden = load_config(None, env)
    assert overridden.issuer == "https://other.example.test"
    assert overridden.database_url == "postgresql://db.example.test/auth"
    assert overridden.secret_key == b"k" * 40


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('issuer = "http://auth.example.test"', "https"),
        ('issuer = "https://auth.example.test/?x=1"', "query"),
        ('issuer = "https://auth.example.test/"', "trailing"),
        ('database_url = "mysql://x"', "database_url"),
        ("unknown = 1", "unknown"),
        ('[keys]\nrotation_period = "soon"', "duration"),
        ('[keys]\njwks_max_age = "3d"', "publication_lead"),
        ('[keys]\nalgorithms = ["HS256"]', "algorithms"),
        ('[tokens]\nmax_access_token_ttl = "30d"', "retirement_period"),
        ('[http]\nport = "80"', "http.port: must be an integer"),
        ("[http]\nnonsense = 1", "unknown"),
        ('[http]\ntrusted_proxies = "10.0.0.1"', "array of addresses"),
        ('[http]\ntrusted_proxies = ["proxy.example"]', "not an IP address"),
        ("[http]\nheader_timeout = 0", "header_timeout: must be positive"),
        ('[http]\nbody_timeout = "soon"', "duration"),
        ("[database]\npool_size = 0", "pool_size"),
        ('[database]\npool_size = "10"', "database.pool_size: must be an integer"),
        ("not toml [", "configuration file"),
    ],
)
def test_invalid_configuration(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "bad.toml"
    file.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(file, {"AUTHGATE_SECRET_KEY": "k" * 40})


def test_plain_numbers_are_seconds_as_in_every_other_file(tmp_path: Path) -> None:
    """The one duration syntax: a number is seconds (a float too, when whole), "1h30m" works."""
    file = tmp_path / "authgate.toml"
    file.write_text(
        "[keys]\nrotation_period = 864000\npublication_lead = 86400.0\n"
        '[tokens]\ndefault_access_token_ttl = 120\nmax_access_token_ttl = "1h30m"\n'
        "[http]\njwks_fetch_timeout = 2.5\n"
    )
    config = load_config(file, {"AUTHGATE_SECRET_KEY": "k" * 40})
    assert (config.keys.rotation_period, config.keys.publication_lead) == (864000, 86400)
    assert type(config.keys.publication_lead) is int
    assert config.tokens.default_access_token_ttl == 120
    assert config.tokens.max_access_token_ttl == 5400
    assert config.http.jwks_fetch_timeout == 2.5
    file.write_text("[tokens]\ndefault_access_token_ttl = 90.5\n")
    with pytest.raises(ConfigError) as info:
        load_config(file, {"AUTHGATE_SECRET_KEY": "k" * 40})
    assert (info.value.file, info.value.key) == (str(file), "tokens.default_access_token_ttl")
    assert info.value.reason == "must be a whole number of seconds"


def test_errors_name_the_environment_variable_a_value_came_from(tmp_path: Path) -> None:
    file = tmp_path / "authgate.toml"
    file.write_text('issuer = "https://auth.example.test"\n')
    env = {"AUTHGATE_SECRET_KEY": "k" * 40, "AUTHGATE_ISSUER": "http://auth.example.test"}
    with pytest.raises(ConfigError) as info:
        load_config(file, env)
    assert (info.value.file, info.value.key) == (None, "AUTHGATE_ISSUER")
    assert "https" in info.value.reason
    with pytest.raises(ConfigError) as info:
        load_config(file, {"AUTHGATE_SECRET_KEY": "short"})
    assert (info.value.file, info.value.key) == (None, "AUTHGATE_SECRET_KEY")
    file.write_text('issuer = "http://auth.example.test"\n')
    with pytest.raises(ConfigError) as info:
        load_config(file, {"AUTHGATE_SECRET_KEY": "k" * 40})
    assert (info.value.file, info.value.key) == (str(file), "issuer")


def test_connection_deadlines(tmp_path: Path) -> None:
    http = HttpSettings()
    assert (http.header_timeout, http.body_timeout, http.keep_alive_timeout) == (10, 30, 5)
    file = tmp_path / "authgate.toml"
    file.write_text(
        '[http]\nheader_timeout = "20s"\nbody_timeout = "1m"\nkeep_alive_timeout = 75\n'
    )
    http = load_config(file, {"AUTHGATE_SECRET_KEY": "k" * 40}).http
    assert (http.header_timeout, http.body_timeout, http.keep_alive_timeout) == (20, 60, 75)
    with pytest.raises(ConfigError, match="keep_alive_timeout"):
        HttpSettings(keep_alive_timeout=0)


def test_durations() -> None:
    assert parse_duration("90s", whole=True) == 90
    assert parse_duration("5m", whole=True) == 300
    assert parse_duration(7, whole=True) == 7
    # "1w" is a duration now (the one syntax is the CLI's, which had weeks); "1y" is not.
    for bad in ("5 minutes", "-1s", 0, True, "1y"):
        with pytest.raises(ConfigError):
            parse_duration(bad, whole=True)


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "AUTHGATE_DATABASE_URL": database_url,
        "AUTHGATE_SECRET_KEY": "s" * 43,
        "AUTHGATE_ISSUER": "https://auth.example.test",
        "AUTHGATE_CONFIG": "",
        "AUTHGATE_SECRET_KEY_FILE": str(tmp_path / "unused"),
    }


def _run(env: dict[str, str], *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env, input=stdin)
    return result.exit_code, result.output


def test_admin_cli_round_trip(cli_env: dict[str, str]) -> None:
    code, out = _run(
        cli_env,
        "api",
        "create",
        "--identifier",
        "https://api.example.test",
        "--scope",
        "read",
        "--scope",
        "write",
        "--token-format",
        "opaque",
        "--access-token-ttl",
        "2m",
        "--json",
    )
    assert code == 0, out
    assert json.loads(out)["access_token_ttl"] == 120
    code, out = _run(
        cli_env,
        "client",
        "create",
        "--name",
        "svc",
        "--grant",
        "client_credentials",
        "--scope",
        "read",
        "--role",
        "ops",
        "--json",
    )
    assert code == 0, out
    created = json.loads(out)
    assert len(created["client_secret"]) >= 43
    client_id = created["client_id"]
    code, out = _run(cli_env, "client", "show", client_id, "--json")
    assert code == 0
    shown = json.loads(out)
    assert "client_secret" not in shown  # printed once, at creation only
    assert shown["access"][0]["scopes"] == ["read"]
    code, out = _run(cli_env, "client", "rotate-secret", client_id, "--grace", "1h", "--json")
    assert code == 0
    rotated = json.loads(out)
    assert rotated["client_secret"] != created["client_secret"]
    assert rotated["previous_secret_expires_at"] is not None
    code, out = _run(cli_env, "client", "rotate-secret", client_id, "--overlap", "24h")
    assert code == 0
    assert "old secret:    accepted until" in out
    code, out = _run(cli_env, "client", "rotate-secret", client_id)
    assert "old secret:    no longer accepted" in out
    for bad in ("soon", "-1h", "1.5s"):
        code, out = _run(cli_env, "client", "rotate-secret", client_id, "--overlap", bad)
        assert code == 2
        assert "--overlap" in out
    code, out = _run(cli_env, "client", "rotate-secret", "no-such-client", "--overlap", "1h")
    assert code == 1
    assert "no client with id 'no-such-client'" in out
    code, out = _run(cli_env, "client", "list", "--json")
    assert [c["client_id"] for c in json.loads(out)] == [client_id]
    assert [c["origin"] for c in json.loads(out)] == ["cli"]
    code, out = _run(cli_env, "api", "list")
    assert out.splitlines()[0].split("\t") == ["IDENTIFIER", "FORMAT", "ALG", "SCOPES"]
    assert out.splitlines()[1].startswith("https://api.example.test\t")
    code, out = _run(cli_env, "client", "list")
    header = ["CLIENT_ID", "AUTH_METHOD", "GRANTS", "ORIGIN", "NAME"]
    assert out.splitlines()[0].split("\t") == header
    assert out.splitlines()[1].split("\t")[:2] == [client_id, "client_secret_basic"]
    assert out.splitlines()[1].split("\t")[3] == "cli"
    assert _run(cli_env, "client", "delete", client_id)[0] == 0
    assert _run(cli_env, "client", "delete", client_id)[0] != 0
    assert _run(cli_env, "api", "delete", "https://api.example.test")[0] == 0


def test_admin_cli_errors(cli_env: dict[str, str]) -> None:
    code, out = _run(cli_env, "api", "create", "--identifier", "not a uri", "--scope", "read")
    assert code != 0
    assert "identifier" in out
    _run(cli_env, "api", "create", "--identifier", "https://a.example.test", "--scope", "read")
    _run(cli_env, "api", "create", "--identifier", "https://b.example.test", "--scope", "read")
    code, out = _run(
        cli_env,
        "client",
        "create",
        "--name",
        "x",
        "--grant",
        "client_credentials",
        "--scope",
        "read",
    )
    assert code != 0
    assert "https://a.example.test#read" in out  # ambiguous scope: told how to qualify it
    code, out = _run(
        cli_env,
        "client",
        "create",
        "--name",
        "x",
        "--grant",
        "client_credentials",
        "--scope",
        "https://b.example.test#read",
        "--json",
    )
    assert code == 0, out
    code, out = _run(cli_env, "client", "create", "--name", "x", "--grant", "implicit")
    assert code != 0
    assert "unsupported grant" in out
    code, out = _run(
        cli_env, "api", "create", "--identifier", "https://a.example.test", "--scope", "read"
    )
    assert code != 0
    assert "exists" in out


def test_user_cli(cli_env: dict[str, str]) -> None:
    code, out = _run(
        cli_env,
        "user",
        "create",
        "alice",
        "--email",
        "alice@example.test",
        "--role",
        "admin",
        "--password-stdin",
        "--json",
        stdin="correct horse battery staple\n",
    )
    assert code == 0, out
    assert json.loads(out)["roles"] == ["admin"]
    code, out = _run(cli_env, "user", "create", "bob", "--password-stdin", stdin="short\n")
    assert code != 0
    assert "8 to 1024" in out
    code, out = _run(
        cli_env,
        "user",
        "set-password",
        "alice",
        stdin="another long passphrase\nanother long passphrase\n",
    )
    assert code == 0, out
    code, out = _run(cli_env, "user", "list")
    assert out.splitlines()[0].split("\t") == ["USERNAME", "EMAIL", "ROLES"]
    code, out = _run(cli_env, "user", "list", "--json")
    assert [u["username"] for u in json.loads(out)] == ["alice"]
    assert "password" not in out
    assert _run(cli_env, "user", "delete", "alice")[0] == 0


def test_keys_and_db_cli(cli_env: dict[str, str]) -> None:
    code, out = _run(cli_env, "db", "upgrade", "--json")
    assert code == 0, out
    code, out = _run(cli_env, "keys", "rotate", "--alg", "RS256", "--json")
    assert code == 0, out
    (rotation,) = json.loads(out)
    code, out = _run(cli_env, "keys", "list")
    header, *rows = out.splitlines()
    assert header.split("\t")[:3] == ["ALG", "STATE", "KID"]
    assert len(rows) >= 2  # a key per configured algorithm, and the RS256 successor
    code, out = _run(cli_env, "keys", "list", "--json")
    states = {k["kid"]: k["state"] for k in json.loads(out)}
    assert states[rotation["kid"]] == "published"
    assert "active" in states.values()
    code, out = _run(cli_env, "db", "status", "--json")
    assert json.loads(out)["up_to_date"] is True


def test_client_create_prints_the_auth_method(cli_env: dict[str, str]) -> None:
    _run(cli_env, "api", "create", "--identifier", "https://api.example.test", "--scope", "read")
    for method in ("client_secret_basic", "client_secret_post"):
        code, out = _run(
            cli_env, "client", "create", "--name", "x", "--grant", "client_credentials",
            "--scope", "read", "--auth-method", method,
        )  # fmt: skip
        assert code == 0, out
        assert f"auth method:   {method}" in out.splitlines()


def test_keys_revoke_cli(cli_env: dict[str, str]) -> None:
    assert _run(cli_env, "keys", "rotate", "--alg", "RS256")[0] == 0  # creates the first keys
    code, out = _run(cli_env, "keys", "list", "--json")
    (active,) = [k for k in json.loads(out) if k["alg"] == "RS256" and k["state"] == "active"]
    code, out = _run(cli_env, "keys", "revoke", active["kid"], "--json")
    assert code == 0, out
    revoked = json.loads(out)
    assert revoked["revoked"] == active["kid"]
    code, out = _run(cli_env, "keys", "list", "--json")
    keys = {k["kid"]: k for k in json.loads(out)}
    assert active["kid"] not in keys
    # The published successor signs at once: the publication lead is waived.
    assert keys[revoked["signing"]]["state"] == "active"
    for hostile in (active["kid"], "nope", "x" * 5000, "kid\x1b[2J"):
        code, out = _run(cli_env, "keys", "revoke", hostile)
        assert code == 1
        assert out.startswith("Error: no signing key with kid")
        assert "\x1b" not in out
        assert len(out) < 400


def test_wrong_secret_key_is_one_clear_line(cli_env: dict[str, str]) -> None:
    assert _run(cli_env, "keys", "rotate", "--alg", "RS256")[0] == 0
    code, out = _run({**cli_env, "AUTHGATE_SECRET_KEY": "t" * 43}, "keys", "rotate")
    assert code != 0
    assert "secret key" in out
    assert os.linesep not in out.strip()


def test_fetch_and_client_metadata_sections(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("not read until the server starts")
    file = tmp_path / "authgate.toml"
    file.write_text(
        '[fetch]\nca_file = "certs/ca.pem"\nhost_rate = "10/minute"\nconnect_timeout = "500ms"\n'
        '[client_metadata]\npolicy = "allowlist"\nallowed_hosts = ["apps.example"]\n'
        'cache_min = "1m"\ncache_max = "2h"\n'
    )
    env = {"AUTHGATE_SECRET_KEY": "k" * 40, "AUTHGATE_CLIENT_METADATA_TIMEOUT": "2s"}
    config = load_config(file, env)
    assert config.fetch.ca_file == tmp_path / "certs" / "ca.pem"  # relative to the file
    assert config.fetch.host_rate == "10/minute"
    assert config.fetch.connect_timeout == 0.5
    assert not config.fetch.allow_loopback  # off unless asked for
    assert config.client_metadata.allowed_hosts == ("apps.example",)
    assert (config.client_metadata.cache_min, config.client_metadata.cache_max) == (60, 7200)
    assert config.client_metadata.timeout == 2.0
    file.write_text('[client_metadata]\npolicy = "open"\n')
    with pytest.raises(ConfigError, match=r"client_metadata\.policy"):
        load_config(file, env)
    file.write_text('[fetch]\nhost_rate = "often"\n')
    with pytest.raises(ConfigError, match="host_rate"):
        load_config(file, env)
