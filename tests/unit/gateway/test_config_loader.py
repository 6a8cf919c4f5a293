"""The gateway configuration keys: parsed, refused with the key named, durations with units."""

from __future__ import annotations

from pathlib import Path

import pytest

from authgate.config.admin import AdminSettings
from authgate.gateway.config_loader import load_gateway_config
from authgate.verifier import ConfigError


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text + '\n[[issuers]]\nissuer = "https://idp.example"\naudiences = ["a"]\n')
    return path


def test_config_keys_are_parsed(tmp_path: Path) -> None:
    config = load_gateway_config(
        _config(
            tmp_path,
            """
listen = "127.0.0.2:9000"
trusted_proxies = ["10.0.0.0/8"]
forward_auth_path = "/auth/check/"
metrics_path = false
[limits]
max_headers = 20
[upstream]
read = 2.5
[identity_token]
issuer = "https://gw"
ttl = 30
[[routes]]
path = "/orders"
upstream = "http://127.0.0.1:9001/base/"
strip_prefix = true
forward_authorization = true
[[routes]]
pattern = "/items/*"
public = true
""",
        )
    )
    settings = config.settings
    assert (settings.host, settings.port) == ("127.0.0.2", 9000)
    assert settings.trusted_proxies == ("10.0.0.0/8",)
    assert settings.forward_auth_path == "/auth/check"
    assert settings.metrics_path is None
    assert settings.client.max_headers == 20
    assert settings.upstream.read == 2.5
    assert settings.identity_token is not None
    assert settings.identity_token.ttl == 30
    upstream = config.routes[0][1]
    assert upstream is not None
    assert (upstream.origin.port, upstream.prefix, upstream.strip_prefix) == (
        9001,
        "/base",
        "/orders",
    )
    assert upstream.forward_authorization is True
    assert upstream.audience == "http://127.0.0.1:9001/base"
    assert config.routes[1][1] is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[limits]\nmax_header = 1\n", "limits.max_header"),
        ("[limits]\nmax_headers = 0\n", "greater than zero"),
        ('trusted_proxies = ["nope"]\n', "trusted_proxies"),
        ('[[routes]]\npath = "/x"\nupstream = "ftp://x"\n', "upstream"),
        (
            '[[routes]]\npattern = "/x/*"\nupstream = "http://x"\nstrip_prefix = true\n',
            "strip_prefix",
        ),
        ('[identity_token]\nissuer = "i"\nalg = "HS256"\n', "asymmetric"),
        ('[identity_token]\nissuer = "i"\nheader = "X-User"\n', "X-Auth-"),
        ('health_path = "healthz"\n', "health_path"),
        ('mode = "dependencies"\n', "mode: the gateway decides by routes only"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_gateway_config(_config(tmp_path, text))


def test_durations_may_be_written_with_units(tmp_path: Path) -> None:
    """Every duration of gateway.toml takes the one syntax: numbers of seconds as before, and
    strings such as "30s" (docs/configuration.md)."""
    config = load_gateway_config(
        _config(
            tmp_path,
            """
[limits]
header_timeout = "5s"
body_timeout = "1m"
keepalive_timeout = 75
[upstream]
connect = "500ms"
read = "2m30s"
idle = 4.5
[identity_token]
issuer = "https://gw"
ttl = "30s"
""",
        )
    )
    client, upstream = config.settings.client, config.settings.upstream
    assert (client.header_timeout, client.body_timeout, client.keepalive_timeout) == (5, 60, 75)
    assert (upstream.connect, upstream.read, upstream.idle) == (0.5, 150, 4.5)
    assert config.settings.identity_token is not None
    assert config.settings.identity_token.ttl == 30
    path = tmp_path / "gateway.toml"
    path.write_text(
        '[[issuers]]\nissuer = "https://idp.example"\naudiences = ["a"]\nleeway = "1m"\n'
        '[issuers.jwks]\nmin_ttl = "30s"\nstale_grace = "0s"\ntimeout = "2s"\n'
    )
    config = load_gateway_config(path)
    first = config.gate.verifier.issuers[0]
    assert (first.leeway, first.jwks.min_ttl, first.jwks.stale_grace) == (60, 30, 0)
    assert first.jwks.fetch.timeout == 2


def test_a_config_error_names_the_file_the_key_and_the_reason(tmp_path: Path) -> None:
    path = _config(tmp_path, '[[routes]]\npath = "/x"\nscopes = "orders:read"\n')
    with pytest.raises(ConfigError) as info:
        load_gateway_config(path)
    assert (info.value.file, info.value.key) == (str(path), "routes[0].scopes")
    assert info.value.reason == "must be an array of strings"
    assert str(info.value) == f"{path}: routes[0].scopes: must be an array of strings"
    with pytest.raises(ConfigError) as info:
        load_gateway_config(_config(tmp_path, '[upstream]\nread = "soon"\n'))
    assert (info.value.file, info.value.key) == (str(path), "upstream.read")
    assert "is not a duration" in info.value.reason


def test_the_admin_table_is_the_servers(tmp_path: Path) -> None:
    assert load_gateway_config(_config(tmp_path, "")).settings.admin == AdminSettings()
    config = load_gateway_config(_config(tmp_path, '[admin]\nlisten = "[::1]:9100"\n'))
    assert config.settings.admin.address() == ("::1", 9100)


@pytest.mark.parametrize(
    ("table", "key", "reason"),
    [
        ('listen = "9100"', "admin.listen", "must be HOST:PORT, such as 127.0.0.1:9100"),
        ('listen = "127.0.0.1:0"', "admin.listen", "must be HOST:PORT, such as 127.0.0.1:9100"),
        ('listen = ":9100"', "admin.listen", "must be HOST:PORT, such as 127.0.0.1:9100"),
        ("listen = 9100", "admin.listen", "must be a string"),
        ('port = "127.0.0.1:9100"', "admin.port", "unknown configuration key"),
    ],
)
def test_a_bad_admin_table_names_the_file_and_the_key(
    tmp_path: Path, table: str, key: str, reason: str
) -> None:
    path = _config(tmp_path, f"[admin]\n{table}\n")
    with pytest.raises(ConfigError) as info:
        load_gateway_config(path)
    assert (info.value.file, info.value.key, info.value.reason) == (str(path), key, reason)
