"""Server configuration: frozen data, read from a TOML file and the environment at the edge.

Precedence: built-in defaults < TOML file (`--config` or `AUTHGATE_CONFIG`) < environment variables
(`AUTHGATE_ISSUER`, `AUTHGATE_DATABASE_URL`, `AUTHGATE_SECRET_KEY`, `AUTHGATE_SECRET_KEY_FILE`).
The issuer follows RFC 8414 §2 (https, no query or fragment; plain http only on loopback). The key
schedule is checked so that a key is published long enough before it signs (JWKS cache max-age plus
the processes' reload interval) and stays published until every token it signed has expired.

The user-facing flows' sections hold the policies their modules define (`RefreshPolicy`,
`SessionPolicy`, `DevicePolicy`, `ThrottlePolicy`), so each rule is checked in one place.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from authgate.server.flows.codes import MAX_CODE_LIFETIME
from authgate.server.flows.device_codes import DevicePolicy
from authgate.server.flows.refresh_tokens import RefreshPolicy
from authgate.server.flows.sessions import SessionPolicy
from authgate.server.flows.throttle import (
    LOGIN_ACCOUNT_POLICY,
    LOGIN_ADDRESS_POLICY,
    USER_CODE_POLICY,
    ThrottlePolicy,
)
from authgate.server.secret_key import load_or_create_secret_key

__all__ = [
    "SIGNING_ALGORITHMS",
    "Config",
    "ConfigError",
    "DatabaseSettings",
    "HttpSettings",
    "KeyPolicy",
    "PageSettings",
    "ThrottleSettings",
    "TokenPolicy",
    "is_loopback_host",
    "load_config",
    "parse_duration",
]

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
# The algorithms a signing-key chain may use: RS256 (the default), ES256, PS256, EdDSA per API.
SIGNING_ALGORITHMS = ("RS256", "ES256", "PS256", "EdDSA")
DEFAULT_ISSUER = "http://127.0.0.1:8000"
DEFAULT_DATABASE_URL = "sqlite:///authgate.db"
# `tokens.client_assertion_audience`: which `aud` a private_key_jwt assertion may carry.
ISSUER_ONLY = "issuer"
ASSERTION_AUDIENCES = (ISSUER_ONLY, "issuer-or-endpoint")
# Connections each process keeps open to PostgreSQL (`[database] pool_size`). 15 rather than
# SQLAlchemy's 5: a code redemption or a refresh holds several connections in turn, and with 5 the
# user grants waited for connections (benchmarks/server/bench_user_grants.py: ~1.6x codes/s and
# ~1.3x refreshes/s, same CPU per grant).
DEFAULT_POOL_SIZE = 15
# Tokens may be checked by verifiers whose clocks run a little behind ours.
CLOCK_SKEW = 60

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": MINUTE, "h": HOUR, "d": DAY}


class ConfigError(ValueError):
    """The configuration is invalid; the message says which setting and why."""


def parse_duration(value: object, name: str) -> int:
    """Seconds from an int or a string such as `90s`, `5m`, `12h`, `30d`."""
    if isinstance(value, bool):
        raise ConfigError(f"{name}: expected a duration such as '5m', got {value!r}")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ConfigError(f"{name}: expected a duration such as '5m' or '30d', got {value!r}")
    if seconds <= 0:
        raise ConfigError(f"{name}: must be positive")
    return seconds


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    """When signing keys are created, start signing, stop signing and leave the JWKS."""

    algorithms: tuple[str, ...] = SIGNING_ALGORITHMS
    rotation_period: int = 30 * DAY  # how long a key signs
    publication_lead: int = 2 * DAY  # how long a key is published before it signs
    retirement_period: int = 7 * DAY  # how long a key stays published after it stops signing
    jwks_max_age: int = HOUR  # Cache-Control max-age of the JWKS
    refresh_interval: int = MINUTE  # how often each process reloads keys from the database

    def __post_init__(self) -> None:
        unknown = [a for a in self.algorithms if a not in SIGNING_ALGORITHMS]
        if unknown or not self.algorithms:
            raise ConfigError(f"keys.algorithms: choose from {', '.join(SIGNING_ALGORITHMS)}")
        if "RS256" not in self.algorithms:
            raise ConfigError("keys.algorithms: RS256 must stay available (RFC 9068, OIDC)")
        if self.refresh_interval > self.jwks_max_age:
            raise ConfigError("keys.refresh_interval must not exceed keys.jwks_max_age")
        if self.publication_lead < self.activation_delay:
            raise ConfigError(
                "keys.publication_lead must be at least keys.jwks_max_age + keys.refresh_interval"
            )
        if self.rotation_period <= self.publication_lead:
            raise ConfigError("keys.rotation_period must be longer than keys.publication_lead")

    @property
    def activation_delay(self) -> int:
        """The shortest time between storing a key and signing with it.

        Every process serves a new key within `refresh_interval`; every verifier refetches within
        `jwks_max_age` of that. Only then may tokens carry its `kid`.
        """
        return self.jwks_max_age + self.refresh_interval


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """Lifetimes and limits of the tokens the server issues and accepts."""

    default_access_token_ttl: int = 5 * MINUTE
    max_access_token_ttl: int = DAY
    # RFC 7523 §3: a client assertion's exp must be near; longer-lived ones are refused.
    client_assertion_max_lifetime: int = 5 * MINUTE
    # Which `aud` a private_key_jwt assertion may carry: "issuer" (the issuer as its sole value:
    # draft-ietf-oauth-rfc7523bis §4, against audience injection) or "issuer-or-endpoint" (also the
    # token endpoint or the endpoint called, RFC 7523 §3, which Authlib and others send).
    client_assertion_audience: str = "issuer-or-endpoint"
    # RFC 6749 §4.1.2: short-lived; this server allows at most a minute.
    authorization_code_ttl: int = MAX_CODE_LIFETIME
    # None: as long as `default_access_token_ttl`.
    id_token_ttl: int | None = None

    def __post_init__(self) -> None:
        if self.client_assertion_audience not in ASSERTION_AUDIENCES:
            raise ConfigError(
                "tokens.client_assertion_audience: choose " + " or ".join(ASSERTION_AUDIENCES)
            )
        if self.default_access_token_ttl > self.max_access_token_ttl:
            raise ConfigError(
                "tokens.default_access_token_ttl must not exceed tokens.max_access_token_ttl"
            )
        if self.authorization_code_ttl > MAX_CODE_LIFETIME:
            raise ConfigError(f"tokens.authorization_code_ttl must be at most {MAX_CODE_LIFETIME}s")
        # ID tokens are signed by the same keys: they must expire before their key leaves the JWKS.
        if self.id_token_lifetime > self.max_access_token_ttl:
            raise ConfigError("tokens.id_token_ttl must not exceed tokens.max_access_token_ttl")

    @property
    def id_token_lifetime(self) -> int:
        """Seconds an OpenID Connect ID token is valid."""
        return self.id_token_ttl or self.default_access_token_ttl


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """How `authgate serve` listens, and request limits."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_body_size: int = 16 * 1024  # token requests are small; a JWT assertion fits easily
    # Clients and APIs are cached per process this long: a deleted client or a rotated secret
    # stops working everywhere within this many seconds. 0 disables the cache.
    cache_ttl: int = 5
    # Client JWKS fetched from a jwks_uri: size and time limits, and how long they are reused.
    jwks_fetch_max_bytes: int = 64 * 1024
    jwks_fetch_timeout: float = 5.0
    jwks_fetch_cache_ttl: int = 5 * MINUTE
    # Reverse proxies (addresses or CIDR blocks) whose X-Forwarded-For is believed: behind them the
    # client address (throttling) is the right-most untrusted entry (`authgate.http_forwarding`).
    trusted_proxies: tuple[str, ...] = ()
    # Connection deadlines (`server.serve_protocol`): a request head must be complete this long
    # after the connection opened or its first byte came, its body this long after the head
    # (408 and closed otherwise); an idle connection is closed this long after a response.
    header_timeout: int = 10
    body_timeout: int = 30
    keep_alive_timeout: int = 5

    def __post_init__(self) -> None:
        if min(self.header_timeout, self.body_timeout, self.keep_alive_timeout) <= 0:
            raise ConfigError("http: header_timeout, body_timeout, keep_alive_timeout must be > 0")
        for network in self.trusted_proxies:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ConfigError(
                    f"http.trusted_proxies: {network!r} is not an IP address or CIDR block"
                ) from None


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """Each process's PostgreSQL connection pool (SQLite keeps SQLAlchemy's own pool), and how long
    a request may wait on the database before it is answered 503 (seconds)."""

    # Connections kept open; up to 10 more are opened under load. Every process opens its own, so
    # processes x (pool_size + 10) must stay below PostgreSQL's max_connections.
    pool_size: int = DEFAULT_POOL_SIZE
    # A wait for a lock: PostgreSQL's lock_timeout, SQLite's busy timeout, the refresh-family lock.
    lock_timeout: int = 10
    # One statement: PostgreSQL's statement_timeout, and the driver's own limit (a frozen server).
    statement_timeout: int = 30
    # A wait for a pooled connection, or to open a new one.
    pool_timeout: int = 10

    def __post_init__(self) -> None:
        if not 1 <= self.pool_size <= 500:
            raise ConfigError("database.pool_size must be between 1 and 500")
        for name in ("lock_timeout", "statement_timeout", "pool_timeout"):
            if not 1 <= getattr(self, name) <= 3600:
                raise ConfigError(f"database.{name} must be between 1s and 1h")


@dataclass(frozen=True, slots=True)
class ThrottleSettings:
    """Backoff for failed sign-ins per account and per client address, and for wrong device user
    codes (see `flows.throttle`)."""

    login_account: ThrottlePolicy = LOGIN_ACCOUNT_POLICY
    login_address: ThrottlePolicy = LOGIN_ADDRESS_POLICY
    user_code: ThrottlePolicy = USER_CODE_POLICY

    @property
    def longest_memory(self) -> int:
        """How long any counter is remembered after its last failure."""
        return max(p.forget_after for p in (self.login_account, self.login_address, self.user_code))


@dataclass(frozen=True, slots=True)
class PageSettings:
    """The sign-in pages: the operator's template and static-file directories, searched before
    the built-in ones, and the name shown on every page."""

    template_dirs: tuple[Path, ...] = ()
    static_dirs: tuple[Path, ...] = ()
    site_name: str = "authgate"

    def __post_init__(self) -> None:
        for directory in (*self.template_dirs, *self.static_dirs):
            if not directory.is_dir():
                raise ConfigError(f"pages: {directory} is not a directory")
        if not self.site_name.strip() or len(self.site_name) > 100:
            raise ConfigError("pages.site_name must be 1 to 100 characters")


@dataclass(frozen=True, slots=True)
class Config:
    """The whole server configuration. Build it with `load_config` (or directly in tests)."""

    issuer: str = DEFAULT_ISSUER
    database_url: str = DEFAULT_DATABASE_URL
    secret_key: bytes = field(default=b"", repr=False)
    keys: KeyPolicy = field(default_factory=KeyPolicy)
    tokens: TokenPolicy = field(default_factory=TokenPolicy)
    http: HttpSettings = field(default_factory=HttpSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    refresh_tokens: RefreshPolicy = field(default_factory=RefreshPolicy)
    sessions: SessionPolicy = field(default_factory=SessionPolicy)
    device: DevicePolicy = field(default_factory=DevicePolicy)
    throttle: ThrottleSettings = field(default_factory=ThrottleSettings)
    pages: PageSettings = field(default_factory=PageSettings)

    def __post_init__(self) -> None:
        check_issuer(self.issuer)
        if len(self.secret_key) < 32:
            raise ConfigError("secret key: at least 32 bytes are needed")
        if not self.database_url.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ConfigError("database_url: use sqlite:///PATH or postgresql://…")
        # A retired key stays published until every token it signed has expired (RFC 7517 §5).
        needed = self.tokens.max_access_token_ttl + CLOCK_SKEW
        if self.keys.retirement_period < needed:
            raise ConfigError(
                "keys.retirement_period must be at least tokens.max_access_token_ttl + 60s"
            )

    def endpoint(self, path: str) -> str:
        """The absolute URL of one of this server's endpoints (`path` starts with `/`)."""
        return self.issuer + path


def check_issuer(issuer: str) -> None:
    """RFC 8414 §2: an https URL with no query or fragment (http allowed on loopback hosts)."""
    if not issuer.isascii() or any(ch in issuer for ch in ' "\\<>') or not issuer.isprintable():
        raise ConfigError("issuer: only printable ASCII URL characters are allowed")
    parts = urlsplit(issuer)
    if parts.query or parts.fragment or "?" in issuer or "#" in issuer or not parts.hostname:
        raise ConfigError("issuer: an absolute URL without query or fragment is required")
    if issuer.endswith("/"):
        raise ConfigError("issuer: remove the trailing '/'")
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return
    raise ConfigError("issuer: must use https (plain http only on a loopback host)")


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- loading ------------------------------------------------------------------------------------

_TOP = {
    "issuer",
    "database_url",
    "database",
    "secret_key_file",
    "keys",
    "tokens",
    "http",
    "refresh_tokens",
    "sessions",
    "device",
    "throttle",
    "pages",
}


def load_config(path: str | Path | None, env: Mapping[str, str]) -> Config:
    """Read the TOML file (`path`, else `AUTHGATE_CONFIG`, else none) and apply the environment.

    The secret key comes from `AUTHGATE_SECRET_KEY`, else from the key file (`secret_key_file`,
    `AUTHGATE_SECRET_KEY_FILE`, default `authgate.secret` in the working directory), which is
    created with mode 0600 when absent.
    """
    source = path if path is not None else env.get("AUTHGATE_CONFIG")
    data: dict[str, Any] = {}
    base = Path.cwd()
    if source:
        file = Path(source)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {file}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"configuration file {file}: {exc}") from None
        base = file.resolve().parent
    unknown = set(data) - _TOP
    if unknown:
        raise ConfigError(f"unknown configuration settings: {', '.join(sorted(unknown))}")
    issuer = env.get("AUTHGATE_ISSUER") or _str(data, "issuer", DEFAULT_ISSUER)
    database_url = env.get("AUTHGATE_DATABASE_URL") or _str(
        data, "database_url", DEFAULT_DATABASE_URL
    )
    key_file = env.get("AUTHGATE_SECRET_KEY_FILE") or _str(
        data, "secret_key_file", "authgate.secret"
    )
    if env.get("AUTHGATE_SECRET_KEY"):
        secret = env["AUTHGATE_SECRET_KEY"].encode("utf-8")
    else:
        secret = load_or_create_secret_key(_relative(base, key_file))
    return Config(
        issuer=issuer,
        database_url=database_url,
        secret_key=secret,
        keys=_section(data, "keys", KeyPolicy),
        tokens=_section(data, "tokens", TokenPolicy),
        http=_section(data, "http", HttpSettings),
        database=_section(data, "database", DatabaseSettings),
        refresh_tokens=_section(data, "refresh_tokens", RefreshPolicy),
        sessions=_section(data, "sessions", SessionPolicy),
        device=_section(data, "device", DevicePolicy),
        throttle=_throttle(data),
        pages=_pages(data, base),
    )


def _relative(base: Path, value: str) -> Path:
    candidate = Path(value)
    return candidate if candidate.is_absolute() else base / candidate


def _str(data: Mapping[str, Any], name: str, default: str) -> str:
    value = data.get(name, default)
    if not isinstance(value, str):
        raise ConfigError(f"{name}: expected a string")
    return value


_DURATIONS = {
    "rotation_period",
    "publication_lead",
    "retirement_period",
    "jwks_max_age",
    "refresh_interval",
    "default_access_token_ttl",
    "max_access_token_ttl",
    "client_assertion_max_lifetime",
    "authorization_code_ttl",
    "id_token_ttl",
    "cache_ttl",
    "jwks_fetch_cache_ttl",
    "header_timeout",
    "body_timeout",
    "keep_alive_timeout",
    "grace_period",
    "idle_lifetime",
    "absolute_lifetime",
    "idle_timeout",
    "touch_interval",
    "lifetime",
    "interval",
    "base_delay",
    "max_delay",
    "forget_after",
    "lock_timeout",
    "statement_timeout",
    "pool_timeout",
}
# Lists of strings, and what their items are.
_LISTS = {"algorithms": "algorithm names", "trusted_proxies": "addresses or CIDR blocks"}
# Durations for which 0 means "off".
_MAY_BE_ZERO = {"cache_ttl", "grace_period", "touch_interval"}


_T = TypeVar("_T")


def _section(data: Mapping[str, Any], name: str, cls: type[_T]) -> _T:
    raw = data.get(name, {})
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}]: expected a table")
    return _build(raw, name, cls, cls())


def _build(raw: Mapping[str, Any], name: str, cls: type[_T], defaults: _T) -> _T:
    allowed = set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    unknown = set(raw) - allowed
    if unknown:
        raise ConfigError(f"[{name}]: unknown settings {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        label = f"{name}.{key}"
        if key in _DURATIONS:
            zero = key in _MAY_BE_ZERO and not isinstance(value, bool) and value in (0, "0", "0s")
            values[key] = 0 if zero else parse_duration(value, label)
        elif key in _LISTS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{label}: expected a list of {_LISTS[key]}")
            values[key] = tuple(value)
        else:
            default = getattr(defaults, key)
            expected = (int, float) if isinstance(default, float) else type(default)
            if isinstance(value, bool) is not isinstance(default, bool) or not isinstance(
                value, expected
            ):
                raise ConfigError(f"{label}: expected {type(default).__name__}")
            values[key] = value
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:  # the policies' own checks raise ValueError
        raise ConfigError(f"[{name}]: {exc}") from None


def _throttle(data: Mapping[str, Any]) -> ThrottleSettings:
    raw = data.get("throttle", {})
    if not isinstance(raw, dict):
        raise ConfigError("[throttle]: expected a table")
    unknown = set(raw) - set(ThrottleSettings.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"[throttle]: unknown settings {', '.join(sorted(unknown))}")
    policies: dict[str, ThrottlePolicy] = {}
    for key, table in raw.items():
        if not isinstance(table, dict):
            raise ConfigError(f"[throttle.{key}]: expected a table")
        default = getattr(ThrottleSettings(), key)
        # A partial table changes only what it names.
        merged = {**{f: getattr(default, f) for f in ThrottlePolicy.__dataclass_fields__}, **table}
        policies[key] = _build(merged, f"throttle.{key}", ThrottlePolicy, default)
    return ThrottleSettings(**policies)


def _pages(data: Mapping[str, Any], base: Path) -> PageSettings:
    raw = data.get("pages", {})
    if not isinstance(raw, dict):
        raise ConfigError("[pages]: expected a table")
    unknown = set(raw) - set(PageSettings.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"[pages]: unknown settings {', '.join(sorted(unknown))}")
    dirs: dict[str, tuple[Path, ...]] = {}
    for name in ("template_dirs", "static_dirs"):
        value = raw.get(name, [])
        if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
            raise ConfigError(f"pages.{name}: expected a list of directory names")
        dirs[name] = tuple(_relative(base, d) for d in value)
    return PageSettings(**dirs, site_name=_str(raw, "site_name", "authgate"))
