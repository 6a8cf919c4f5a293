"""Loading the server's configuration (`authgate.server.config`) from a TOML file and the
environment, at the edge (every key is documented in docs/server.md).

Precedence: built-in defaults < TOML file (`--config` or `AUTHGATE_CONFIG`) < environment variables.
Every setting has a variable, generated from its declaration: `AUTHGATE_<KEY>` for a top-level key,
`AUTHGATE_<SECTION>_<KEY>` for a section's (`AUTHGATE_THROTTLE_USER_CODE_MAX_DELAY`); besides them
only the variables of `OTHER_VARIABLES` may start with `AUTHGATE_`, so a misspelt variable is
refused by name instead of being ignored.

Every key of the file is declared here with its kind (`TOP_LEVEL`, `SECTIONS`): a value is a
duration because its declaration says so, and the declarations are the list of every setting.
An error names where the value came from: the file and its key, or the environment variable.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from authgate.config import (
    ConfigError,
    Setting,
    Table,
    environment_name,
    from_environment,
    read_settings,
    read_toml,
)
from authgate.config.admin import ADMIN_SETTINGS
from authgate.limits import FailMode
from authgate.server.config import (
    DEFAULT_DATABASE_URL,
    DEFAULT_ISSUER,
    AdminSettings,
    AuditSettings,
    ClientMetadataSettings,
    Config,
    DatabaseSettings,
    DPoPSettings,
    FetchSettings,
    HttpSettings,
    KeyPolicy,
    LimitSettings,
    LimitsSettings,
    LockoutSettings,
    PageSettings,
    PushedRequestSettings,
    RegistrationSettings,
    SecuritySettings,
    ThrottleSettings,
    ThrottleStoreSettings,
    TokenExchangeSettings,
    TokenPolicy,
    TracingSettings,
)
from authgate.server.flows.device_codes import DevicePolicy
from authgate.server.flows.refresh_tokens import RefreshPolicy
from authgate.server.flows.sessions import SessionPolicy
from authgate.server.secret_key import load_or_create_secret_key

__all__ = [
    "ENVIRONMENT",
    "OTHER_VARIABLES",
    "SECTIONS",
    "TOP_LEVEL",
    "LoadedConfig",
    "load_config",
    "load_config_sources",
    "settings",
]

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

# `[limits.NAME]` tables: the rate limits, then the lockouts after failed client authentication.
_RATE_LIMITS = (
    "token",
    "registration",
    "authorize",
    "consent",
    "device",
    "device_authorization",
    "introspection",
    "revocation",
)
_LOCKOUTS = ("client_auth", "client_auth_address")
_LIMIT = {
    "rate": _STRING,
    "burst": Setting("integer", positive=True),
    "on_store_failure": _STRING,
    "enabled": Setting("boolean"),
}
_LOCKOUT = {
    "failures": Setting("integer", positive=True),
    "window": _SECONDS,
    "lockout": _SECONDS,
    "max_lockout": _SECONDS,
    "on_store_failure": _STRING,
    "enabled": Setting("boolean"),
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
        "sign_in_threads": _STRING,
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
    "limits": {
        "redis_url": _STRING,  # or AUTHGATE_LIMITS_REDIS_URL (keeps the password out of files)
        "timeout": Setting.duration(),
        "retry_interval": Setting.duration(),
        "namespace": _STRING,
        "headers": _STRING,
    },
    "limits.throttle": {"on_store_failure": _STRING},
    **{f"limits.{name}": _LIMIT for name in _RATE_LIMITS},
    **{f"limits.{name}": _LOCKOUT for name in _LOCKOUTS},
    "pages": {
        # Relative to the configuration file's directory.
        "template_dirs": Setting.strings("directory names"),
        "static_dirs": Setting.strings("directory names"),
        "site_name": _STRING,
    },
    "tracing": {"enabled": Setting("boolean")},
    "audit": {"retention": _SECONDS},
    "admin": ADMIN_SETTINGS,
    "registration": {
        "mode": _STRING,
        "allowed_scopes": Setting.strings("scopes (SCOPE or API#SCOPE)"),
        "unused_client_lifetime": _SECONDS_OR_OFF,
    },
    "fetch": {
        "connect_timeout": Setting.duration(),
        "host_rate": _STRING,
        "allow_loopback": Setting("boolean"),
        "ca_file": _STRING,  # relative to the configuration file's directory
        "max_connections": Setting("integer", positive=True),
    },
    "client_metadata": {
        "policy": _STRING,
        "allowed_hosts": Setting.strings("host names"),
        "cache_min": _SECONDS_OR_OFF,
        "cache_max": _SECONDS,
        "max_bytes": _INTEGER,
        "timeout": Setting.duration(),
    },
    "par": {"lifetime": _SECONDS, "required": Setting("boolean")},
    "security": {"profile": _STRING},
    "token_exchange": {"issuer": _STRING, "jwks_uri": _STRING, "audience": _STRING},
    "dpop": {
        "algorithms": Setting.strings("algorithm names"),
        "max_age": _SECONDS,
        "leeway": _SECONDS_OR_OFF,
        "require_nonce": Setting("boolean"),
        "nonce_lifetime": _SECONDS,
    },
}


def settings() -> Iterator[tuple[str, Setting]]:
    """Every setting as (dotted path, declaration): the top-level keys, then each section's."""
    yield from TOP_LEVEL.items()
    for section, keys in SECTIONS.items():
        for key, setting in keys.items():
            yield f"{section}.{key}", setting


_PREFIX = "AUTHGATE"
# Each setting's environment variable (an empty variable is as if unset).
ENVIRONMENT: Mapping[str, str] = {path: environment_name(_PREFIX, path) for path, _ in settings()}
_SECRET_KEY_VARIABLE = "AUTHGATE_SECRET_KEY"
# `AUTHGATE_` variables that are not settings of the file; any other is refused.
OTHER_VARIABLES: Mapping[str, str] = {
    "AUTHGATE_CONFIG": "the configuration file",
    _SECRET_KEY_VARIABLE: "the secret key itself, instead of a key file",
    # `observability.worker_metrics`: set by `serve` for its worker processes.
    "AUTHGATE_METRICS_DIR": "where worker processes share their metrics",
}
_SETTING_OF = {variable: path for path, variable in ENVIRONMENT.items()}
_DECLARED = dict(settings())
# The sections read with `_section`, and the type that holds each.
_SECTION_TYPES: Mapping[str, type[Any]] = {
    "keys": KeyPolicy,
    "tokens": TokenPolicy,
    "http": HttpSettings,
    "database": DatabaseSettings,
    "refresh_tokens": RefreshPolicy,
    "sessions": SessionPolicy,
    "device": DevicePolicy,
    "tracing": TracingSettings,
    "audit": AuditSettings,
    "admin": AdminSettings,
    "registration": RegistrationSettings,
    "client_metadata": ClientMetadataSettings,
    "par": PushedRequestSettings,
    "token_exchange": TokenExchangeSettings,
    "dpop": DPoPSettings,
    "security": SecuritySettings,
}

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A configuration and where its values came from: `file` (or None), and for each dotted
    path set in the file or the environment, `"file"` or the variable's name (absent: default).
    `secret_key_source` is `AUTHGATE_SECRET_KEY` or the key file's path."""

    config: Config
    file: str | None
    sources: Mapping[str, str]
    secret_key_source: str


def load_config(path: str | Path | None, env: Mapping[str, str]) -> Config:
    """Read the TOML file (`path`, else `AUTHGATE_CONFIG`, else none) and apply the environment.

    The secret key comes from `AUTHGATE_SECRET_KEY`, else from the key file (`secret_key_file`,
    `AUTHGATE_SECRET_KEY_FILE`, default `authgate.secret` in the working directory), which is
    created with mode 0600 when absent.
    """
    return load_config_sources(path, env).config


def load_config_sources(path: str | Path | None, env: Mapping[str, str]) -> LoadedConfig:
    """`load_config`, with where each value came from."""
    source = path if path is not None else env.get("AUTHGATE_CONFIG")
    overrides = _environment(env)
    top = read_toml(source) if source else Table({}, "")
    base = Path(source).resolve().parent if source else Path.cwd()
    sources = {p: "file" for p, _ in settings() if _present(top.data, p)}
    sources.update({p: ENVIRONMENT[p] for p in overrides})
    merged = Table(_merge(top.data, overrides), "", file=top.file)
    try:
        config, secret_source = _load(merged, env, base)
    except ConfigError as exc:
        variable = ENVIRONMENT.get(exc.key or "") if exc.key in overrides else None
        if variable is None:
            raise
        raise ConfigError(exc.reason, key=variable) from None  # the value came from a variable
    return LoadedConfig(config, top.file, sources, secret_source)


def _environment(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings set by `AUTHGATE_*` variables, as TOML values by dotted path."""
    values: dict[str, Any] = {}
    for variable in sorted(env):
        if not variable.startswith(f"{_PREFIX}_") or variable in OTHER_VARIABLES:
            continue
        path = _SETTING_OF.get(variable)
        if path is None:
            raise ConfigError("not a setting's variable (docs/server.md lists them)", key=variable)
        if env[variable]:
            values[path] = from_environment(_DECLARED[path], env[variable], variable)
    return values


def _present(data: Mapping[str, Any], path: str) -> bool:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _merge(data: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The file's data with the overrides set at their dotted paths (tables copied, not changed).
    A path through a value that is not a table is left for the reads to refuse."""
    merged = dict(data)
    for path, value in overrides.items():
        *tables, key = path.split(".")
        node = merged
        for name in tables:
            child = node.get(name, {})
            if not isinstance(child, Mapping):
                break
            node[name] = node = dict(child)
        else:
            node[key] = value
    return merged


def _load(top: Table, env: Mapping[str, str], base: Path) -> tuple[Config, str]:
    # Errors in the file's tables carry the file's name (`Table.error`, `Table.checking`).
    values = _read_top_level(top)
    sections = {name: _section(top, name, cls()) for name, cls in _SECTION_TYPES.items()}
    throttle = _throttle(top)
    pages = _pages(top, base)
    limits = _limits(top)
    fetch = _fetch(top, base)
    top.finish()
    # Where each top-level value came from (file, key), so that an error names the right one.
    origins: dict[str, tuple[str | None, str | None]] = {}
    if env.get(_SECRET_KEY_VARIABLE):
        secret = env[_SECRET_KEY_VARIABLE].encode("utf-8")
        origins["secret_key"] = (None, _SECRET_KEY_VARIABLE)
        secret_source = _SECRET_KEY_VARIABLE
    else:
        key_file = _relative(base, values.get("secret_key_file", "authgate.secret"))
        secret = load_or_create_secret_key(key_file)
        origins["secret_key"] = (str(key_file), None)
        secret_source = str(key_file)
    try:
        config = Config(
            issuer=values.get("issuer", DEFAULT_ISSUER),
            database_url=values.get("database_url", DEFAULT_DATABASE_URL),
            secret_key=secret,
            throttle=throttle,
            pages=pages,
            limits=limits,
            fetch=fetch,
            **sections,
        )
    except ConfigError as exc:
        origin = origins.get(exc.key) if exc.key else None
        if origin is None:  # a value of the file
            raise exc.locate(file=top.file) from None
        raise ConfigError(exc.reason, key=origin[1], file=origin[0]) from None
    return config, secret_source


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


def _limits(top: Table) -> LimitsSettings:
    table = top.table("limits")
    values: dict[str, Any] = {}
    if table is not None:
        # Sub-tables are taken first: read_settings refuses keys not read.
        throttle = table.table("throttle")
        limits = {name: table.table(name) for name in (*_RATE_LIMITS, *_LOCKOUTS)}
        values = read_settings(table, SECTIONS["limits"])
        if throttle is not None:
            mode = read_settings(throttle, SECTIONS["limits.throttle"]).get("on_store_failure")
            if mode is not None:
                values["throttle"] = ThrottleStoreSettings(_fail_mode(throttle, mode))
        defaults = LimitsSettings()
        for name, sub in limits.items():
            if sub is not None:
                values[name] = _limit(sub, getattr(defaults, name))
    try:
        return LimitsSettings(**values)
    except ConfigError as exc:
        raise exc.locate(file=top.file) from None


def _fail_mode(table: Table, value: str) -> FailMode:
    if value not in tuple(FailMode):
        raise table.error('must be "open" or "closed"', "on_store_failure")
    return FailMode(value)


_L = TypeVar("_L", LimitSettings, LockoutSettings)


def _limit(table: Table, default: _L) -> _L:
    """A `[limits.NAME]` table over the limit's (or the lockout's) defaults."""
    values = read_settings(table, SECTIONS[table.where])
    if "on_store_failure" in values:
        values["on_store_failure"] = _fail_mode(table, values["on_store_failure"])
    with table.checking():  # parse_rate's ValueError names the text
        return replace(default, **values)


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


def _fetch(top: Table, base: Path) -> FetchSettings:
    table = top.table("fetch")
    if table is None:
        return FetchSettings()
    values = read_settings(table, SECTIONS["fetch"])
    if "ca_file" in values:
        values["ca_file"] = _relative(base, values["ca_file"])
    with table.checking():
        return FetchSettings(**values)


def _relative(base: Path, value: str) -> Path:
    candidate = Path(value)
    return candidate if candidate.is_absolute() else base / candidate
