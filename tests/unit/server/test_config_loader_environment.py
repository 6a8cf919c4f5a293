"""Every server setting from the environment (`AUTHGATE_<SECTION>_<KEY>`): each kind, precedence,
errors that name the variable (never its value), and misspelt variables refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from authgate.config import ConfigError, Setting, from_environment
from authgate.server.config_loader import (
    ENVIRONMENT,
    OTHER_VARIABLES,
    SECTIONS,
    TOP_LEVEL,
    load_config,
    load_config_sources,
    settings,
)

_SECRET = {"AUTHGATE_SECRET_KEY": "s" * 40}


def _env(**variables: str) -> dict[str, str]:
    return {**_SECRET, **variables}


def test_every_setting_has_one_distinct_variable() -> None:
    paths = [path for path, _ in settings()]
    assert len(paths) == len(TOP_LEVEL) + sum(len(keys) for keys in SECTIONS.values())
    names = [ENVIRONMENT[path] for path in paths]
    assert len(set(names)) == len(names)
    assert not set(names) & set(OTHER_VARIABLES)
    # The variables documented before every setting had one keep their names.
    assert ENVIRONMENT["issuer"] == "AUTHGATE_ISSUER"
    assert ENVIRONMENT["database_url"] == "AUTHGATE_DATABASE_URL"
    assert ENVIRONMENT["secret_key_file"] == "AUTHGATE_SECRET_KEY_FILE"
    assert ENVIRONMENT["throttle.user_code.max_delay"] == "AUTHGATE_THROTTLE_USER_CODE_MAX_DELAY"


def test_each_kind_from_the_environment(tmp_path: Path) -> None:
    config = load_config(
        None,
        _env(
            AUTHGATE_HTTP_PORT="9100",  # integer
            AUTHGATE_HTTP_HOST="0.0.0.0",  # string  # noqa: S104
            AUTHGATE_TOKENS_DEFAULT_ACCESS_TOKEN_TTL="2m",  # whole-second duration
            AUTHGATE_HTTP_JWKS_FETCH_TIMEOUT="1.5",  # fractional duration, plain number
            AUTHGATE_HTTP_CACHE_TTL="0",  # duration where 0 is "off"
            AUTHGATE_KEYS_ALGORITHMS="RS256, ES256",  # list, comma-separated, items stripped
            AUTHGATE_HTTP_TRUSTED_PROXIES="10.0.0.0/8,2001:db8::1",
            AUTHGATE_THROTTLE_USER_CODE_FREE_ATTEMPTS="7",  # a nested section
            AUTHGATE_PAGES_TEMPLATE_DIRS=str(tmp_path),
            AUTHGATE_DATABASE_POOL_SIZE="3",
        ),
    )
    assert config.http.port == 9100
    assert config.http.host == "0.0.0.0"  # noqa: S104
    assert config.tokens.default_access_token_ttl == 120
    assert config.http.jwks_fetch_timeout == 1.5
    assert config.http.cache_ttl == 0
    assert config.keys.algorithms == ("RS256", "ES256")
    assert config.http.trusted_proxies == ("10.0.0.0/8", "2001:db8::1")
    assert config.throttle.user_code.free_attempts == 7
    assert config.pages.template_dirs == (tmp_path,)
    assert config.database.pool_size == 3


def test_booleans() -> None:
    flag = Setting("boolean")
    for text, value in [("true", True), ("1", True), ("FALSE", False), ("0", False)]:
        assert from_environment(flag, text, "AUTHGATE_X") is value
    for text in ["yes", "on", "2", ""]:
        with pytest.raises(ConfigError, match="AUTHGATE_X: must be true, false, 1 or 0"):
            from_environment(flag, text, "AUTHGATE_X")
    assert from_environment(Setting("number"), " 2.5 ", "AUTHGATE_X") == 2.5


def test_environment_over_file_over_default(tmp_path: Path) -> None:
    file = tmp_path / "authgate.toml"
    file.write_text("[http]\nport = 9000\nworkers = 2\n[sessions]\nidle_timeout = '2h'\n")
    loaded = load_config_sources(file, _env(AUTHGATE_HTTP_PORT="9001"))
    assert loaded.config.http.port == 9001  # environment beats the file
    assert loaded.config.http.workers == 2  # the file beats the default
    assert loaded.config.sessions.idle_timeout == 7200
    assert loaded.config.http.max_body_size == 16 * 1024  # default
    assert loaded.sources["http.port"] == "AUTHGATE_HTTP_PORT"
    assert loaded.sources["http.workers"] == "file"
    assert "http.max_body_size" not in loaded.sources
    assert loaded.secret_key_source == "AUTHGATE_SECRET_KEY"
    # An empty variable is as if unset.
    assert load_config(file, _env(AUTHGATE_HTTP_PORT="")).http.port == 9000


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("AUTHGATE_HTTP_PORT", "80x", "AUTHGATE_HTTP_PORT: must be an integer"),
        ("AUTHGATE_HTTP_PORT", "9" * 5000, "AUTHGATE_HTTP_PORT: must be an integer"),
        ("AUTHGATE_TOKENS_ID_TOKEN_TTL", "5 parsecs", "AUTHGATE_TOKENS_ID_TOKEN_TTL: "),
        ("AUTHGATE_HTTP_HEADER_TIMEOUT", "1.5s", "AUTHGATE_HTTP_HEADER_TIMEOUT: "),
        ("AUTHGATE_KEYS_ALGORITHMS", "RS256,,ES256", "AUTHGATE_KEYS_ALGORITHMS: must be comma"),
        ("AUTHGATE_KEYS_ALGORITHMS", "RS256,", "AUTHGATE_KEYS_ALGORITHMS: must be comma"),
        ("AUTHGATE_ISSUER", "http://evil.example/\x00", "AUTHGATE_ISSUER: only printable"),
        ("AUTHGATE_DATABASE_URL", "mysql://u:hunter2@h/d", "AUTHGATE_DATABASE_URL: use sqlite"),
        ("AUTHGATE_HTTP_TRUSTED_PROXIES", "10.0.0.0/33", "AUTHGATE_HTTP_TRUSTED_PROXIES"),
        ("AUTHGATE_HTTP_PORT", "70000", "AUTHGATE_HTTP_PORT: must be between 0 and 65535"),
        ("AUTHGATE_HTTP_PORT", "-1", "AUTHGATE_HTTP_PORT: must be between 0 and 65535"),
        ("AUTHGATE_HTTP_WORKERS", "0", "AUTHGATE_HTTP_WORKERS: must be at least 1"),
    ],
)
def test_a_bad_value_names_the_variable_not_the_value(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, _env(**{variable: value}))
    text = str(caught.value)
    assert text.startswith(message)
    assert caught.value.key == variable
    assert caught.value.file is None
    assert "hunter2" not in text
    assert "\x00" not in text


def test_a_misspelt_variable_is_refused_by_name() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, _env(AUTHGATE_HTTP_PROT="9000"))
    assert caught.value.key == "AUTHGATE_HTTP_PROT"
    assert "9000" not in str(caught.value)
    # Not a setting's variable either: a section name alone.
    with pytest.raises(ConfigError, match="AUTHGATE_HTTP:"):
        load_config(None, _env(AUTHGATE_HTTP="x"))


def test_non_setting_variables_are_allowed(tmp_path: Path) -> None:
    file = tmp_path / "a.toml"
    file.write_text("")
    env = _env(AUTHGATE_CONFIG=str(file), AUTHGATE_LIMITS_REDIS_URL="redis://127.0.0.1:6379/0")
    assert load_config(None, env).http.port == 8000
    # Variables that do not start with AUTHGATE_ are none of ours.
    assert load_config(None, _env(AUTHGATEWAY_X="1", authgate_http_port="x")).http.port == 8000


def test_a_file_section_that_is_not_a_table_is_still_refused(tmp_path: Path) -> None:
    file = tmp_path / "a.toml"
    file.write_text("http = 5\n")
    with pytest.raises(ConfigError, match="http: must be a table"):
        load_config(file, _env(AUTHGATE_HTTP_PORT="9000"))
