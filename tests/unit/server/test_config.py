"""The configuration sections of the user-facing flows: refresh tokens, sessions, the device flow,
throttling, the pages; and the purpose keys derived from the server secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from authgate.config import ConfigError
from authgate.server.auth_server import retention_for
from authgate.server.config import Config
from authgate.server.config_loader import load_config
from authgate.server.flows.throttle import LOGIN_ADDRESS_POLICY
from authgate.server.secret_key import ServerSecret, derive_key
from authgate.server.storage.retention import Retention

ENV = {"AUTHGATE_SECRET_KEY": "k" * 40}


def _load(tmp_path: Path, text: str) -> Config:
    file = tmp_path / "authgate.toml"
    file.write_text(text)
    return load_config(file, ENV)


def test_defaults(tmp_path: Path) -> None:
    config = load_config(None, ENV)
    assert config.refresh_tokens.grace_period == 10
    assert config.refresh_tokens.idle_lifetime == 14 * 86400
    assert config.refresh_tokens.absolute_lifetime == 90 * 86400
    assert (config.sessions.idle_timeout, config.sessions.absolute_lifetime) == (
        8 * 3600,
        7 * 86400,
    )
    assert (config.device.lifetime, config.device.interval) == (600, 5)
    assert config.throttle.login_account.free_attempts == 5
    assert config.tokens.authorization_code_ttl == 60
    assert config.tokens.id_token_lifetime == config.tokens.default_access_token_ttl == 300
    assert config.pages.template_dirs == ()
    assert config.keys.sign_in_threads == "auto"
    assert retention_for(config) == Retention()


def test_every_section_from_toml(tmp_path: Path) -> None:
    (tmp_path / "theme" / "templates").mkdir(parents=True)
    (tmp_path / "theme" / "static").mkdir()
    config = load_config(
        _write(
            tmp_path,
            """
        [tokens]
        authorization_code_ttl = "30s"
        id_token_ttl = "10m"
        [refresh_tokens]
        grace_period = 0
        idle_lifetime = "2d"
        absolute_lifetime = "30d"
        [sessions]
        idle_timeout = "1h"
        absolute_lifetime = "1d"
        touch_interval = "0s"
        [device]
        lifetime = "15m"
        interval = "10s"
        [throttle.login_account]
        free_attempts = 3
        max_delay = "5m"
        [pages]
        template_dirs = ["theme/templates"]
        static_dirs = ["theme/static"]
        site_name = "Example Login"
    """,
        ),
        ENV,
    )
    assert (config.tokens.authorization_code_ttl, config.tokens.id_token_lifetime) == (30, 600)
    assert config.refresh_tokens.grace_period == 0  # 0 turns the window off
    assert config.refresh_tokens.idle_lifetime == 2 * 86400
    assert config.sessions.touch_interval == 0
    assert (config.device.lifetime, config.device.interval) == (900, 10)
    account = config.throttle.login_account
    assert (account.free_attempts, account.max_delay, account.base_delay) == (3, 300, 2)
    assert config.throttle.login_address == LOGIN_ADDRESS_POLICY  # untouched tables keep defaults
    assert config.pages.template_dirs == (tmp_path / "theme" / "templates",)
    assert config.pages.static_dirs == (tmp_path / "theme" / "static",)
    assert config.pages.site_name == "Example Login"
    retention = retention_for(config)
    assert (retention.refresh_idle, retention.session_absolute) == (2 * 86400, 86400)
    assert retention.throttle_memory == 86400


def _write(tmp_path: Path, text: str) -> Path:
    file = tmp_path / "authgate.toml"
    file.write_text("\n".join(line.strip() for line in text.splitlines()))
    return file


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[refresh_tokens]\ngrace_period = "61s"', "grace_period must be 0-60"),
        ('[refresh_tokens]\ngrace_period = "-1s"', "duration"),
        ("[refresh_tokens]\ngrace_period = false", "duration"),
        ('[refresh_tokens]\nidle_lifetime = "100d"', "idle_lifetime <= absolute_lifetime"),
        ("[refresh_tokens]\nidle_lifetime = 0", "positive"),
        ('[sessions]\nidle_timeout = "8d"', "idle_timeout <= absolute_lifetime"),
        ('[sessions]\ntouch_interval = "9h"', "touch_interval"),
        ('[device]\ninterval = "2m"', "interval 1-60"),
        ('[device]\nlifetime = "5h"', "lifetime must be 60-3600"),
        ("[device]\nuser_code_length = 4", "unknown"),
        ('[tokens]\nauthorization_code_ttl = "10m"', "at most 60s"),
        ('[tokens]\nid_token_ttl = "2d"', "id_token_ttl"),
        ("[throttle]\nlogin = 1", "unknown"),
        ("[throttle]\nlogin_account = 5", "must be a table"),
        ("[throttle.user_code]\nfree_attempts = 0", "free_attempts >= 1"),
        ('[throttle.user_code]\nfree_attempts = "5"', "must be an integer"),
        ('[throttle.user_code]\nforget_after = "1m"', "forget_after must be at least max_delay"),
        ('[pages]\ntemplate_dirs = ["missing"]', "not a directory"),
        ('[pages]\nstatic_dirs = "static"', "array of directory names"),
        ('[pages]\nsite_name = ""', "site_name"),
        ("[pages]\ncolour = 1", "unknown"),
        ('sessions = "8h"', "must be a table"),
        ('[par]\nlifetime = "10m"', "between 5 and 599"),
        ("[par]\nlifetime = 1", "between 5 and 599"),
        ('[par]\nrequired = "yes"', "true or false"),
        ('[token_exchange]\njwks_uri = "https://idp.test/jwks"', "set token_exchange.issuer"),
        ('[token_exchange]\nissuer = "https://idp.test"\njwks_uri = "ftp://x"', "token_exchange"),
        ('[security]\nprofile = "fapi1"', "the one profile is fapi2"),
        ('[keys]\nsign_in_threads = "sometimes"', "keys.sign_in_threads.*auto, always, never"),
        (
            '[security]\nprofile = "fapi2"\n[keys]\nalgorithms = ["RS256"]',
            "keys.algorithms.*needs one of PS256, ES256, EdDSA",
        ),
        (
            '[security]\nprofile = "fapi2"\n[refresh_tokens]\ngrace_period = 0',
            "refresh_tokens.grace_period.*retry window",
        ),
    ],
)
def test_invalid_flow_settings(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, text)


def test_par_and_token_exchange_settings(tmp_path: Path) -> None:
    defaults = load_config(None, ENV)
    assert (defaults.par.lifetime, defaults.par.required) == (60, False)
    assert defaults.token_exchange.external_issuer(defaults.issuer) is None
    config = _load(
        tmp_path,
        '[par]\nlifetime = "90s"\nrequired = true\n'
        '[token_exchange]\nissuer = "https://idp.test"\njwks_uri = "https://idp.test/jwks"\n',
    )
    assert (config.par.lifetime, config.par.required) == (90, True)
    external = config.token_exchange.external_issuer(config.issuer)
    assert external is not None
    assert external.audiences == (config.issuer,)  # tokens meant for this server
    assert external.jwks_uri == "https://idp.test/jwks"
    assert "sub" in external.required_claims


def test_purpose_keys_are_separate_and_stable() -> None:
    secret = ServerSecret(b"s" * 32)
    assert secret.csrf_key == ServerSecret(b"s" * 32).csrf_key  # every process agrees
    assert secret.csrf_key != ServerSecret(b"t" * 32).csrf_key
    assert secret.csrf_key == derive_key(b"s" * 32, b"authgate csrf token v1")
    assert len(secret.csrf_key) == 32
    # No other purpose shares it: the token hash key, for one, is different.
    assert secret.hash_token("x") != secret.csrf_key.hex()
    assert derive_key(b"s" * 32, b"authgate opaque token hash v1") != secret.csrf_key


def test_the_documented_flow_settings_are_the_defaults(tmp_path: Path) -> None:
    """docs/user-flows.md shows every flow setting with its default: it loads, and equals them."""
    doc = (Path(__file__).resolve().parents[3] / "docs" / "user-flows.md").read_text()
    section = doc.split("## Configuration of the flows", 1)[1]
    toml = section.split("```toml\n", 1)[1].split("```", 1)[0]
    config = _load(tmp_path, toml)
    defaults = load_config(None, ENV)
    for name in ("refresh_tokens", "sessions", "device", "throttle", "pages"):
        assert getattr(config, name) == getattr(defaults, name), name
    assert config.tokens.authorization_code_ttl == defaults.tokens.authorization_code_ttl
    assert config.tokens.id_token_lifetime == defaults.tokens.id_token_lifetime


def test_registration_settings(tmp_path: Path) -> None:
    env = {"AUTHGATE_SECRET_KEY": "k" * 40}
    defaults = load_config(None, env).registration
    assert (defaults.mode, defaults.allowed_scopes, defaults.enabled) == ("off", (), False)
    assert retention_for(load_config(None, env)).unused_registered_client == 30 * 86400
    file = tmp_path / "authgate.toml"
    file.write_text(
        '[registration]\nmode = "token"\nallowed_scopes = ["read", "https://api#write"]\n'
        'unused_client_lifetime = "7d"\n'
    )
    config = load_config(file, env)
    assert config.registration.mode == "token"
    assert config.registration.enabled
    assert config.registration.allowed_scopes == ("read", "https://api#write")
    assert retention_for(config).unused_registered_client == 7 * 86400
    off = load_config(None, {**env, "AUTHGATE_REGISTRATION_UNUSED_CLIENT_LIFETIME": "0"})
    assert retention_for(off).unused_registered_client == 0
    with pytest.raises(ConfigError, match="AUTHGATE_REGISTRATION_MODE"):
        load_config(None, {**env, "AUTHGATE_REGISTRATION_MODE": "public"})
    file.write_text('[registration]\nmode = "yes"\n')
    with pytest.raises(ConfigError, match=r"registration\.mode"):
        load_config(file, env)


def test_security_profile(tmp_path: Path) -> None:
    assert load_config(None, ENV).security.profile is None
    assert _load(tmp_path, '[security]\nprofile = "fapi2"').security.profile == "fapi2"
