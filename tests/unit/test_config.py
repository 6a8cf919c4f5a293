"""The configuration toolkit (`authgate.config`): one duration syntax accepted the same way by the
server, the gate, the gateway and the command line; one `ConfigError` naming file, key and reason;
`Table` refusing unknown keys; the server's settings declared, never guessed from their names."""

from __future__ import annotations

import ast
import json
import math
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import authgate
import authgate.verifier
from authgate.cli import main
from authgate.config import ConfigError, Setting, Table, parse_duration, parse_toml, read_settings
from authgate.gate import parse_gate_config
from authgate.gateway import load_gateway_config
from authgate.jose import JWK, jwt
from authgate.server import config as server_config
from authgate.server.config_loader import SECTIONS, TOP_LEVEL, load_config
from authgate.server.flows.device_codes import DevicePolicy
from authgate.server.flows.refresh_tokens import RefreshPolicy
from authgate.server.flows.sessions import SessionPolicy
from authgate.server.flows.throttle import ThrottlePolicy

SRC = Path(authgate.__file__).resolve().parent.parent
SECRET_ENV = {"AUTHGATE_SECRET_KEY": "k" * 40}
GATE = """
[[issuers]]
issuer = "https://idp.example.com"
audiences = ["https://api.example.com"]
leeway = {value}
[[routes]]
path = "/orders"
upstream = "http://127.0.0.1:9000"
"""


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90),
        (0.5, 0.5),
        ("90", 90),
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        ("7d", 604800),
        ("1w", 604800),
        ("1h30m", 5400),
        ("1d2h3m4s", 93784),
        ("1.5h", 5400),
        ("500ms", 0.5),
        ("1s500ms", 1.5),
        (" 5 m ", 300),  # the server took spaces before
        ("1h 30m", 5400),
    ],
)
def test_duration_forms(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("5 minutes", "is not a duration"),
        ("-1s", "is not a duration"),
        ("1m1m", "is not a duration"),  # each unit once
        ("30m1h", "is not a duration"),  # in decreasing order
        ("1h30", "is not a duration"),  # a number after a unit needs its unit
        ("1y", "is not a duration"),
        ("1e3", "is not a duration"),
        (".5s", "is not a duration"),
        ("", "is not a duration"),
        ("9" * 11 + "s", "is not a duration"),  # bounded digits, never a huge integer
        (True, "must be a duration"),
        (None, "must be a duration"),
        ([30], "must be a duration"),
        (-1, "must be positive"),
        (0, "must be positive"),
        ("0s", "must be positive"),
        (math.nan, "finite"),
        (math.inf, "finite"),
        ("99999999d", "at most 100 years"),
        (1e300, "at most 100 years"),
    ],
)
def test_duration_refusals(value: object, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_duration(value)
    assert reason in info.value.reason
    assert info.value.key is None  # the caller knows the key


def test_duration_zero_and_whole_seconds() -> None:
    assert parse_duration("0s", zero=True) == 0
    assert parse_duration(0, zero=True) == 0
    with pytest.raises(ConfigError, match="must not be negative"):
        parse_duration(-1, zero=True)
    assert parse_duration("1.5m", whole=True) == 90
    assert type(parse_duration("1.5m", whole=True)) is int
    assert type(parse_duration(90.0, whole=True)) is int
    assert parse_duration("0.1h", whole=True) == 360  # exact decimal arithmetic
    for fractional in ("500ms", 1.5, "1.5s"):
        with pytest.raises(ConfigError, match="whole number of seconds"):
            parse_duration(fractional, whole=True)


def test_config_error_names_file_key_and_reason() -> None:
    error = ConfigError("must be an array of strings", key="routes[2].scopes", file="gateway.toml")
    assert str(error) == "gateway.toml: routes[2].scopes: must be an array of strings"
    assert (error.file, error.key, error.reason) == (
        "gateway.toml",
        "routes[2].scopes",
        "must be an array of strings",
    )
    assert isinstance(error, ValueError)
    assert str(ConfigError("configure at least one issuer")) == "configure at least one issuer"
    bare = ConfigError("must not exceed keys.jwks_max_age", key="keys.refresh_interval")
    assert bare.locate(file="a.toml", key="ignored") is bare
    assert str(bare) == "a.toml: keys.refresh_interval: must not exceed keys.jwks_max_age"
    assert bare.args == (str(bare),)


def test_table_errors_carry_the_file() -> None:
    top = parse_toml('[a]\nttl = "soon"\n[[b]]\nx = 1\n', "f.toml")
    a = top.table("a")
    assert a is not None
    with pytest.raises(ConfigError) as info:
        a.duration("ttl")
    assert (info.value.file, info.value.key) == ("f.toml", "a.ttl")
    (b,) = top.tables("b")
    with pytest.raises(ConfigError) as info:
        b.finish()
    assert str(info.value) == "f.toml: b[0].x: unknown configuration key"
    with pytest.raises(ConfigError) as info:
        parse_toml("x = [", "g.toml")
    assert info.value.file == "g.toml"
    assert "not valid TOML" in info.value.reason


def test_read_settings_reads_what_is_declared() -> None:
    schema = {"ttl": Setting.duration(whole=True), "names": Setting.strings("names")}
    assert read_settings(Table({"ttl": "2m", "names": ["a"]}, "s"), schema) == {
        "ttl": 120,
        "names": ("a",),
    }
    assert read_settings(Table({}, "s"), schema) == {}
    with pytest.raises(ConfigError, match=r"s\.other: unknown configuration key"):
        read_settings(Table({"other": 1}, "s"), schema)
    with pytest.raises(ConfigError, match=r"s\.names: must be an array of names"):
        read_settings(Table({"names": "a"}, "s"), schema)


# -- the same forms everywhere --------------------------------------------------------------------

SAME_DURATION = ["90", 90, 90.0, '"90"', '"90s"', '"1m30s"', '"1.5m"', '"90000ms"']


@pytest.mark.parametrize("form", SAME_DURATION)
def test_one_duration_syntax_in_every_file(tmp_path: Path, form: object) -> None:
    server = tmp_path / "authgate.toml"
    server.write_text(f"[tokens]\ndefault_access_token_ttl = {form}\n")
    assert load_config(server, SECRET_ENV).tokens.default_access_token_ttl == 90
    assert parse_gate_config(GATE.format(value=form)).verifier.issuers[0].leeway == 90
    gateway = tmp_path / "gateway.toml"
    gateway.write_text(GATE.format(value=30) + f"[upstream]\nread = {form}\n")
    assert load_gateway_config(gateway).settings.upstream.read == 90


@pytest.mark.parametrize("form", ["90", "90s", "1m30s", "1.5m", "90000ms"])
def test_one_duration_syntax_on_the_command_line(tmp_path: Path, form: str) -> None:
    key = JWK.generate("oct", size=256, alg="HS256")
    key_file = tmp_path / "hs.jwk"
    key_file.write_text(json.dumps(key.to_dict(private=True)))
    now = 1_700_000_000
    args = ["jwt", "sign", "--key", str(key_file), "--now", str(now), "--exp", form]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    claims = jwt.decode(result.stdout.strip(), key, algorithms=["HS256"], now=now)
    assert claims["exp"] - claims["iat"] == 90


def test_a_sub_second_exp_is_refused_on_the_command_line(tmp_path: Path) -> None:
    key_file = tmp_path / "hs.jwk"
    key_file.write_text(json.dumps(JWK.generate("oct", size=256).to_dict(private=True)))
    result = CliRunner().invoke(main, ["jwt", "sign", "--key", str(key_file), "--exp", "1500ms"])
    assert result.exit_code == 2
    assert "whole number of seconds" in result.output


# -- one error type, one toolkit at the bottom ----------------------------------------------------


def _python_files() -> list[Path]:
    return sorted(SRC.joinpath("authgate").rglob("*.py"))


def test_there_is_one_config_error_class() -> None:
    defined = [
        path.relative_to(SRC).as_posix()
        for path in _python_files()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and node.name == "ConfigError"
    ]
    assert defined == ["authgate/config/errors.py"]
    assert authgate.verifier.ConfigError is ConfigError  # the re-export is the same class


def test_the_toolkit_imports_nothing_else_from_authgate() -> None:
    for path in sorted(SRC.joinpath("authgate", "config").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("authgate.") or node.module.startswith(
                    "authgate.config"
                ), f"{path.name} imports {node.module}"
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("authgate") for a in node.names)


# -- the server's settings are declared --------------------------------------------------------

_SECTION_TYPES: dict[str, Any] = {
    "keys": server_config.KeyPolicy,
    "tokens": server_config.TokenPolicy,
    "http": server_config.HttpSettings,
    "database": server_config.DatabaseSettings,
    "refresh_tokens": RefreshPolicy,
    "sessions": SessionPolicy,
    "device": DevicePolicy,
    "throttle.login_account": ThrottlePolicy,
    "throttle.login_address": ThrottlePolicy,
    "throttle.user_code": ThrottlePolicy,
    "pages": server_config.PageSettings,
    "tracing": server_config.TracingSettings,
    "audit": server_config.AuditSettings,
    "admin": server_config.AdminSettings,
    "fetch": server_config.FetchSettings,
    "client_metadata": server_config.ClientMetadataSettings,
    "par": server_config.PushedRequestSettings,
    "token_exchange": server_config.TokenExchangeSettings,
    "dpop": server_config.DPoPSettings,
    "security": server_config.SecuritySettings,
    "limits": server_config.LimitsSettings,
    "limits.throttle": server_config.ThrottleStoreSettings,
    "limits.token": server_config.LimitSettings,
    "limits.authorize": server_config.LimitSettings,
    "limits.consent": server_config.LimitSettings,
    "limits.device": server_config.LimitSettings,
    "limits.device_authorization": server_config.LimitSettings,
    "limits.introspection": server_config.LimitSettings,
    "limits.revocation": server_config.LimitSettings,
    "limits.client_auth": server_config.LockoutSettings,
    "limits.client_auth_address": server_config.LockoutSettings,
    "limits.registration": server_config.LimitSettings,
    "registration": server_config.RegistrationSettings,
}
# Fields held by a section that are sub-tables of their own, declared apart.
_SUBTABLES = {
    "limits": {
        "throttle",
        "token",
        "authorize",
        "consent",
        "device",
        "device_authorization",
        "introspection",
        "revocation",
        "client_auth",
        "client_auth_address",
        "registration",
    }
}


def test_every_server_setting_is_declared() -> None:
    """A new field of a section must be declared with its kind, or it cannot be configured."""
    assert set(SECTIONS) == set(_SECTION_TYPES)
    for name, cls in _SECTION_TYPES.items():
        expected = {f.name for f in fields(cls)} - _SUBTABLES.get(name, set())
        assert set(SECTIONS[name]) == expected, name
    assert set(TOP_LEVEL) == {"issuer", "database_url", "secret_key_file"}


def test_a_setting_is_a_duration_by_declaration_not_by_name(tmp_path: Path) -> None:
    # `jwks_fetch_timeout` was read as a plain number (its name is not in a list of durations);
    # declared, it takes every duration form, including fractions of a second.
    file = tmp_path / "authgate.toml"
    file.write_text('[http]\njwks_fetch_timeout = "1500ms"\n')
    assert load_config(file, SECRET_ENV).http.jwks_fetch_timeout == 1.5
    # `refresh_ahead` was in the gate's list of durations though it is a fraction: still a number.
    gate = GATE.format(value=30).replace(
        "leeway = 30", "leeway = 30\n[issuers.jwks]\nrefresh_ahead = 0.5"
    )
    assert parse_gate_config(gate).verifier.issuers[0].jwks.refresh_ahead == 0.5
    with pytest.raises(ConfigError, match=r"issuers\[0\]\.jwks\.refresh_ahead: must be a number"):
        parse_gate_config(gate.replace("refresh_ahead = 0.5", 'refresh_ahead = "1s"'))
