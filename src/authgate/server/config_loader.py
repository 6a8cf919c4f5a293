"""Loading the server's configuration (`authgate.server.config`) from a TOML file and the
environment, at the edge (every key is documented in docs/server.md).

Precedence: built-in defaults < TOML file (`--config` or `AUTHGATE_CONFIG`) < environment variables
(`AUTHGATE_ISSUER`, `AUTHGATE_DATABASE_URL`, `AUTHGATE_SECRET_KEY`, `AUTHGATE_SECRET_KEY_FILE`).

Every key of the file is declared here with its kind (`TOP_LEVEL`, `SECTIONS`): a value is a
duration because its declaration says so, and the declarations are the list of every setting.
An error names where the value came from: the file and its key, or the environment variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, TypeVar

from authgate.config import ConfigError, Setting, Table, read_settings, read_toml
from authgate.server.config import (
    DEFAULT_DATABASE_URL,
    DEFAULT_ISSUER,
    AdminSettings,
    Config,
    DatabaseSettings,
    HttpSettings,
    KeyPolicy,
    PageSettings,
    ThrottleSettings,
    TokenPolicy,
)
from authgate.server.flows.device_codes import DevicePolicy
from authgate.server.flows.refresh_tokens import RefreshPolicy
from authgate.server.flows.sessions import SessionPolicy
from authgate.server.secret_key import load_or_create_secret_key

__all__ = ["ENVIRONMENT", "SECTIONS", "TOP_LEVEL", "load_config"]

_SECONDS = Setting.duration(whole=True)
_SECONDS_OR_OFF = Setting.duration(zero=True, whole=True)  # 0 turns the feature off
_INTEGER = Setting("integer")
_STRING = Setting("string")
_THROTTLE = {
    "free_attempts": _INTEGER,
    "base_delay": _SECONDS,
    "max_delay": _SECONDS,
    "forget_after": _SECONDS,
}

TOP_LEVEL: Mapping[str, Setting] = {
    "issuer": _STRING,
    "database_url": _STRING,
    "secret_key_file": _STRING,
}
# The tables of the file (dotted: `[throttle.user_code]`) and their keys. Each is read over the
# defaults of its section of `Config`, so a partial table changes only what it names.
SECTIONS: Mapping[str, Mapping[str, Setting]] = {
    "keys": {
        "algorithms": Setting.strings("algorithm names"),
        "rotation_period": _SECONDS,
        "publication_lead": _SECONDS,
        "retirement_period": _SECONDS,
        "jwks_max_age": _SECONDS,
        "refresh_interval": _SECONDS,
    },
    "tokens": {
        "default_access_token_ttl": _SECONDS,
        "max_access_token_ttl": _SECONDS,
        "client_assertion_max_lifetime": _SECONDS,
        "client_assertion_audience": _STRING,
        "authorization_code_ttl": _SECONDS,
        "id_token_ttl": _SECONDS,
    },
    "http": {
        "host": _STRING,
        "port": _INTEGER,
        "workers": _INTEGER,
        "max_body_size": _INTEGER,
        "cache_ttl": _SECONDS_OR_OFF,
        "jwks_fetch_max_bytes": _INTEGER,
        "jwks_fetch_timeout": Setting.duration(),
        "jwks_fetch_cache_ttl": _SECONDS,
        "trusted_proxies": Setting.strings("addresses or CIDR blocks"),
        "header_timeout": _SECONDS,
        "body_timeout": _SECONDS,
        "keep_alive_timeout": _SECONDS,
    },
    "database": {
        "pool_size": _INTEGER,
        "lock_timeout": _SECONDS,
        "statement_timeout": _SECONDS,
        "pool_timeout": _SECONDS,
    },
    "refresh_tokens": {
        "idle_lifetime": _SECONDS,
        "absolute_lifetime": _SECONDS,
        "grace_period": _SECONDS_OR_OFF,
    },
    "sessions": {
        "idle_timeout": _SECONDS,
        "absolute_lifetime": _SECONDS,
        "touch_interval": _SECONDS_OR_OFF,
    },
    "device": {"lifetime": _SECONDS, "interval": _SECONDS},
    "throttle.login_account": _THROTTLE,
    "throttle.login_address": _THROTTLE,
    "throttle.user_code": _THROTTLE,
    "pages": {
        # Relative to the configuration file's directory.
        "template_dirs": Setting.strings("directory names"),
        "static_dirs": Setting.strings("directory names"),
        "site_name": _STRING,
    },
    "admin": {"listen": _STRING},
}
# Top-level keys that an environment variable overrides (an empty variable does not).
ENVIRONMENT: Mapping[str, str] = {
    "issuer": "AUTHGATE_ISSUER",
    "database_url": "AUTHGATE_DATABASE_URL",
    "secret_key_file": "AUTHGATE_SECRET_KEY_FILE",
}
_SECRET_KEY_VARIABLE = "AUTHGATE_SECRET_KEY"
# The sections read with `_section`, and the type that holds each.
_SECTION_TYPES: Mapping[str, type[Any]] = {
    "keys": KeyPolicy,
    "tokens": TokenPolicy,
    "http": HttpSettings,
    "database": DatabaseSettings,
    "refresh_tokens": RefreshPolicy,
    "sessions": SessionPolicy,
    "device": DevicePolicy,
    "admin": AdminSettings,
}

_T = TypeVar("_T")


def load_config(path: str | Path | None, env: Mapping[str, str]) -> Config:
    """Read the TOML file (`path`, else `AUTHGATE_CONFIG`, else none) and apply the environment.

    The secret key comes from `AUTHGATE_SECRET_KEY`, else from the key file (`secret_key_file`,
    `AUTHGATE_SECRET_KEY_FILE`, default `authgate.secret` in the working directory), which is
    created with mode 0600 when absent.
    """
    source = path if path is not None else env.get("AUTHGATE_CONFIG")
    top = read_toml(source) if source else Table({}, "")
    base = Path(source).resolve().parent if source else Path.cwd()
    return _load(top, env, base)


def _load(top: Table, env: Mapping[str, str], base: Path) -> Config:
    # Errors in the file's tables carry the file's name (`Table.error`, `Table.checking`).
    values = _read_top_level(top)
    sections = {name: _section(top, name, cls()) for name, cls in _SECTION_TYPES.items()}
    throttle = _throttle(top)
    pages = _pages(top, base)
    top.finish()
    # Where each top-level value came from (file, key), so that an error names the right one.
    origins: dict[str, tuple[str | None, str | None]] = {}
    for key, variable in ENVIRONMENT.items():
        if env.get(variable):
            values[key] = env[variable]
            origins[key] = (None, variable)
    if env.get(_SECRET_KEY_VARIABLE):
        secret = env[_SECRET_KEY_VARIABLE].encode("utf-8")
        origins["secret_key"] = (None, _SECRET_KEY_VARIABLE)
    else:
        key_file = _relative(base, values.get("secret_key_file", "authgate.secret"))
        secret = load_or_create_secret_key(key_file)
        origins["secret_key"] = (str(key_file), None)
    try:
        return Config(
            issuer=values.get("issuer", DEFAULT_ISSUER),
            database_url=values.get("database_url", DEFAULT_DATABASE_URL),
            secret_key=secret,
            throttle=throttle,
            pages=pages,
            **sections,
        )
    except ConfigError as exc:
        origin = origins.get(exc.key) if exc.key else None
        if origin is None:  # a value of the file
            raise exc.locate(file=top.file) from None
        raise ConfigError(exc.reason, key=origin[1], file=origin[0]) from None


def _read_top_level(top: Table) -> dict[str, Any]:
    """The top-level keys present in the file."""
    return {key: setting.read(top, key) for key, setting in TOP_LEVEL.items() if key in top.data}


def _section(parent: Table, name: str, default: _T) -> _T:
    """Table `name` of `parent` read over `default` (returned as is when the table is absent)."""
    table = parent.table(name)
    if table is None:
        return default
    values = read_settings(table, SECTIONS[table.where])
    with table.checking():  # the policies' own checks raise ConfigError or ValueError
        return replace(default, **values)  # type: ignore[type-var]


def _throttle(top: Table) -> ThrottleSettings:
    table = top.table("throttle")
    if table is None:
        return ThrottleSettings()
    defaults = ThrottleSettings()
    policies = {
        f.name: _section(table, f.name, getattr(defaults, f.name)) for f in fields(defaults)
    }
    table.finish()
    return ThrottleSettings(**policies)


def _pages(top: Table, base: Path) -> PageSettings:
    table = top.table("pages")
    if table is None:
        return PageSettings()
    values = read_settings(table, SECTIONS["pages"])
    for name in ("template_dirs", "static_dirs"):
        if name in values:
            values[name] = tuple(_relative(base, d) for d in values[name])
    with table.checking():
        return PageSettings(**values)


def _relative(base: Path, value: str) -> Path:
    candidate = Path(value)
    return candidate if candidate.is_absolute() else base / candidate
