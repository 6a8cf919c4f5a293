"""`[token_exchange]` and a route's `token_exchange` in gateway.toml: parsed, and refused with the
file, the key and the reason; the client secret never inline."""

from __future__ import annotations

from pathlib import Path

import pytest

from authgate.gateway.config import TokenExchangeTarget
from authgate.gateway.config_loader import load_gateway_config
from authgate.verifier import ConfigError

_TABLE = """
[token_exchange]
token_endpoint = "https://as.example/token"
client_id = "gateway"
{secret}
{extra}
"""
_ROUTE = """
[[routes]]
path = "/billing"
upstream = "http://127.0.0.1:9001"
{route}
"""


def _write(tmp_path: Path, table: str, route: str = "") -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(
        table
        + '\n[[issuers]]\nissuer = "https://idp.example"\naudiences = ["a"]\n'
        + _ROUTE.format(route=route)
    )
    return path


def _table(secret: str = 'client_secret_env = "GW_SECRET"', extra: str = "") -> str:
    return _TABLE.format(secret=secret, extra=extra)


def test_the_table_and_the_route_option_are_parsed(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s3cret\n")
    (tmp_path / "secret").chmod(0o600)
    path = _write(
        tmp_path,
        _table('client_secret_file = "secret"', 'timeout = "1500ms"\ndelegation = false'),
        'token_exchange = { audience = "https://orders.internal", scope = "orders:read a" }',
    )
    config = load_gateway_config(path)
    settings = config.settings.token_exchange
    assert settings is not None
    assert (settings.client_id, settings.client_secret) == ("gateway", "s3cret")
    assert (settings.timeout, settings.delegation, settings.cache_size) == (1.5, False, 10_000)
    assert "s3cret" not in repr(settings)
    upstream = config.routes[0][1]
    assert upstream is not None
    assert upstream.token_exchange == TokenExchangeTarget(
        "https://orders.internal", "orders:read a"
    )


def test_the_secret_may_come_from_the_environment(tmp_path: Path) -> None:
    path = _write(tmp_path, _table())
    config = load_gateway_config(path, environ={"GW_SECRET": "from-env"})
    assert config.settings.token_exchange is not None
    assert config.settings.token_exchange.client_secret == "from-env"


@pytest.mark.parametrize(
    ("table", "route", "key", "reason"),
    [
        (_table('client_secret = "hunter2"'), "", "token_exchange.client_secret", "inline"),
        (_table(""), "", "token_exchange", "exactly one of client_secret_file"),
        (_table('client_secret_env = "UNSET_VAR"'), "", "token_exchange.client_secret_env",
         "UNSET_VAR is unset"),
        (_table('client_secret_file = "missing"'), "", "token_exchange.client_secret_file",
         "cannot read"),
        (_table(extra="cache_size = 0"), "", "token_exchange.cache_size", "at least 1"),
        (_table(extra="colour = 1"), "", "token_exchange.colour", "unknown"),
        (_table().replace("https://as.example/token", "as.example"), "",
         "token_exchange.token_endpoint", "must be an absolute URL"),
        # The secret goes there: https, or plain http to loopback only.
        (_table().replace("https://as.example/token", "http://as.example/token"), "",
         "token_exchange.token_endpoint", "must use https"),
        (_table().replace('token_endpoint = "https://as.example/token"', ""), "",
         "token_exchange", "exactly one of token_endpoint and issuer"),
        (_table(extra='issuer = "https://as.example"'), "", "token_exchange",
         "exactly one of token_endpoint and issuer"),
        ("", 'token_exchange = { audience = "https://o" }', "routes[0].token_exchange",
         "needs the gateway's [token_exchange]"),
        (_table(), 'token_exchange = { audience = "https://o" }\nforward_authorization = true',
         "routes[0].token_exchange", "forward_authorization"),
        (_table(), 'token_exchange = { audience = "https://o" }\n[[routes]]\npath = "/fa"\n'
         'token_exchange = { audience = "https://o" }', "routes[1].token_exchange", "upstream"),
        (_table(), 'token_exchange = { scope = "x" }', "routes[0].token_exchange.audience",
         "required"),
        (_table(), 'token_exchange = { audience = "https://o", scope = "a  b" }',
         "routes[0].token_exchange.scope", "RFC 6749"),
        (_table(), 'token_exchange = { audience = "https://o", resource = "x" }',
         "routes[0].token_exchange.resource", "unknown"),
    ],
)  # fmt: skip
def test_bad_settings_name_the_file_the_key_and_the_reason(
    tmp_path: Path, table: str, route: str, key: str, reason: str
) -> None:
    path = _write(tmp_path, table, route)
    with pytest.raises(ConfigError) as info:
        load_gateway_config(path, environ={"GW_SECRET": "x"})
    assert (info.value.file, info.value.key) == (str(path), key)
    assert reason in info.value.reason
    assert "hunter2" not in str(info.value)
