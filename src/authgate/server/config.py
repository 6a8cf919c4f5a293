"""Server configuration: frozen data, read from a TOML file and the environment at the edge.

Precedence: built-in defaults < TOML file (`--config` or `AUTHGATE_CONFIG`) < environment variables
(`AUTHGATE_ISSUER`, `AUTHGATE_DATABASE_URL`, `AUTHGATE_SECRET_KEY`, `AUTHGATE_SECRET_KEY_FILE`).
The issuer follows RFC 8414 §2 (https, no query or fragment; plain http only on loopback). The key
schedule is checked so that a key is published long enough before it signs (JWKS cache max-age plus
the processes' reload interval) and stays published until every token it signed has expired.
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

from authgate.server.secret_key import load_or_create_secret_key

__all__ = [
    "SIGNING_ALGORITHMS",
    "Config",
    "ConfigError",
    "HttpSettings",
    "KeyPolicy",
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

    def __post_init__(self) -> None:
        if self.default_access_token_ttl > self.max_access_token_ttl:
            raise ConfigError(
                "tokens.default_access_token_ttl must not exceed tokens.max_access_token_ttl"
            )


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


@dataclass(frozen=True, slots=True)
class Config:
    """The whole server configuration. Build it with `load_config` (or directly in tests)."""

    issuer: str = DEFAULT_ISSUER
    database_url: str = DEFAULT_DATABASE_URL
    secret_key: bytes = field(default=b"", repr=False)
    keys: KeyPolicy = field(default_factory=KeyPolicy)
    tokens: TokenPolicy = field(default_factory=TokenPolicy)
    http: HttpSettings = field(default_factory=HttpSettings)

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

_TOP = {"issuer", "database_url", "secret_key_file", "keys", "tokens", "http"}


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
    "cache_ttl",
    "jwks_fetch_cache_ttl",
}


_T = TypeVar("_T")


def _section(data: Mapping[str, Any], name: str, cls: type[_T]) -> _T:
    raw = data.get(name, {})
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}]: expected a table")
    allowed = set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    unknown = set(raw) - allowed
    if unknown:
        raise ConfigError(f"[{name}]: unknown settings {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        label = f"{name}.{key}"
        if key in _DURATIONS:
            values[key] = 0 if key == "cache_ttl" and value == 0 else parse_duration(value, label)
        elif key == "algorithms":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{label}: expected a list of algorithm names")
            values[key] = tuple(value)
        else:
            default = getattr(cls(), key)
            expected = (int, float) if isinstance(default, float) else type(default)
            if isinstance(value, bool) is not isinstance(default, bool) or not isinstance(
                value, expected
            ):
                raise ConfigError(f"{label}: expected {type(default).__name__}")
            values[key] = value
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"[{name}]: {exc}") from None
