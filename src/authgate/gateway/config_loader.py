"""`gateway.toml`: the gate's file (issuers, routes… see docs/gate.md) plus the gateway's own keys,
added through the gate loader's `ConfigExtension` (every key is documented in docs/gateway.md).

Top level: `trusted_proxies`, `forward_auth_path`, `health_path`, `ready_path`, `metrics_path`,
`access_log`, `log_level`, and the tables `[limits]`, `[upstream]`, `[identity_token]`,
`[tracing]`, `[token_exchange]` and `[admin]` (the server's table: `authgate.config.admin`).
In `[[routes]]`: `forward_authorization`, `preserve_host`, `strip_prefix`, `identity_token`,
`audience`, `token_exchange`. Files (the identity key, the exchange client's secret) are read
here, at the edge, relative to the config file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from authgate.config import ConfigError, Setting, Table, read_settings
from authgate.config.admin import ADMIN_SETTINGS, AdminSettings
from authgate.gate.config import ConfigExtension, GateConfig, GateMode, ValueParser
from authgate.gate.loader import load_gate_config, read_secret_file
from authgate.gateway.config import (
    ClientLimits,
    GatewayConfig,
    GatewaySettings,
    IdentityTokenSettings,
    RouteUpstream,
    TokenExchangeSettings,
    TokenExchangeTarget,
    UpstreamTimeouts,
)
from authgate.gateway.upstream_pool import Origin
from authgate.http_forwarding import parse_networks
from authgate.jose import JWK, JoseError
from authgate.policy.paths import PathPattern
from authgate.verifier.http_fetch import check_fetch_url

__all__ = ["gateway_config_from", "gateway_extension", "load_gateway_config", "parse_upstream"]

_ASYMMETRIC_SIGNING = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 §3.3 scope-token
_COUNT = Setting("integer", positive=True)
# `[limits]` and `[upstream]`, declared: every value must be greater than zero.
_CLIENT_LIMITS = {
    "max_request_line": _COUNT,
    "max_header_bytes": _COUNT,
    "max_headers": _COUNT,
    "header_timeout": Setting.duration(),
    "body_timeout": Setting.duration(),
    "keepalive_timeout": Setting.duration(),
    "max_pipeline": _COUNT,
}
_UPSTREAM_TIMEOUTS = {
    "connect": Setting.duration(),
    "read": Setting.duration(),
    "idle": Setting.duration(),
    "max_idle": _COUNT,
}


def _path(value: Any, where: str) -> str | None:
    if value is False:
        return None  # disabled
    if not isinstance(value, str) or not value.startswith("/") or "?" in value or "#" in value:
        raise ValueError("must be an absolute path such as '/healthz' (or false to disable)")
    return value.rstrip("/") or "/"


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")  # noqa: TRY004 - becomes a ConfigError
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string")
    return value


def _networks(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("must be an array of addresses or CIDR blocks")
    parse_networks(value)  # the same check as the server's `http.trusted_proxies`
    return tuple(value)


def _section(schema: Mapping[str, Setting], cls: type[Any]) -> ValueParser:
    """A parser for a table of the declared `schema` onto the dataclass `cls`."""

    def parse(value: Any, where: str) -> Any:
        table = Table(value, where)
        values = read_settings(table, schema)
        with table.checking():
            return cls(**values)

    return parse


def _tracing(value: Any, where: str) -> bool:
    """`[tracing]`: `enabled` (OpenTelemetry, the `otel` extra; see docs/tracing.md)."""
    table = Table(value, where)
    values = read_settings(table, {"enabled": Setting("boolean")})
    return bool(values.get("enabled", False))


def _strip_prefix(value: Any, where: str) -> bool | str:
    if isinstance(value, bool):
        return value
    path = _path(value, where)
    if not path:
        return False
    PathPattern.prefix(path)  # stripped segment by segment: each must be a literal segment
    return path


class _IdentityParser:
    """`[identity_token]`: `key_file` (a private JWK in JSON; omitted: a key generated at start),
    `alg` (default ES256), `issuer`, `audience`, `ttl`, `jwks_path`, `header`."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir

    def __call__(self, value: Any, where: str) -> IdentityTokenSettings:
        table = Table(value, where)
        alg = table.string("alg", "ES256")
        if alg not in _ASYMMETRIC_SIGNING:
            raise table.error("must be an asymmetric JWS algorithm", "alg")
        key_file = table.string("key_file", None)
        key = self._key(key_file, alg, table) if key_file else _generated_key(alg)
        issuer = table.string("issuer")
        settings = IdentityTokenSettings(
            key=key,
            alg=alg,
            issuer=issuer,
            audience=table.string("audience", issuer),
            ttl=table.duration("ttl", 60.0),
            jwks_path=_path(table.string("jwks_path", "/.well-known/authgate/jwks.json"), where)
            or "/.well-known/authgate/jwks.json",
            header=table.string("header", "X-Auth-Token"),
        )
        table.finish()
        if not 0 < settings.ttl <= 3600:
            raise table.error("must be between 0 and 3600 seconds", "ttl")
        if not settings.header.lower().replace("_", "-").startswith("x-auth-"):
            raise table.error("must start with X-Auth- (so clients cannot forge it)", "header")
        return settings

    def _key(self, key_file: str, alg: str, table: Table) -> JWK:
        where = table.key_path("key_file")
        content = read_secret_file(self.base_dir / key_file, where)
        try:
            data = json.loads(content.decode("utf-8"))
            if isinstance(data, dict) and "alg" not in data:
                data = {**data, "alg": alg}
            key = JWK.from_dict(data)
            key.check(alg, "sign", private=True)
        except (ValueError, JoseError) as exc:
            raise ConfigError(f"not a private JWK usable with {alg} ({exc})", key=where) from None
        return key


def _secure_url(value: str, table: Table, key: str) -> None:
    # The client secret is sent there: https only, plain http to loopback (RFC 6749 §2.3.1).
    try:
        check_fetch_url(value)
    except ValueError as exc:
        raise table.error(str(exc), key) from None


class _TokenExchangeParser:
    """`[token_exchange]`: `token_endpoint`, `client_id`, `client_secret_file` (relative to the
    config file) or `client_secret_env` (a variable name), `delegation`, `timeout`, `cache_size`,
    `expiry_margin`, `retry_after`. An inline `client_secret` is refused."""

    def __init__(self, base_dir: Path, environ: Mapping[str, str]) -> None:
        self.base_dir = base_dir
        self.environ = environ

    def __call__(self, value: Any, where: str) -> TokenExchangeSettings:
        table = Table(value, where)
        if "client_secret" in table.data:
            raise table.error(
                "secrets are not written inline: use client_secret_file or client_secret_env",
                "client_secret",
            )
        endpoint, issuer = table.string("token_endpoint", None), table.string("issuer", None)
        if (endpoint is None) == (issuer is None):
            raise table.error("give exactly one of token_endpoint and issuer (its metadata)")
        for key, url in (("token_endpoint", endpoint), ("issuer", issuer)):
            if url is not None:
                _secure_url(url, table, key)
        client_id = table.string("client_id")
        secret = self._secret(table)
        settings = TokenExchangeSettings(
            token_endpoint=endpoint or "",
            issuer=issuer,
            client_id=client_id,
            client_secret=secret,
            delegation=table.boolean("delegation", True),
            timeout=table.duration("timeout", 5.0),
            cache_size=table.integer("cache_size", 10_000),
            expiry_margin=table.duration("expiry_margin", 10.0, zero=True),
            retry_after=table.integer("retry_after", 5),
        )
        table.finish()
        if settings.cache_size < 1:
            raise table.error("must be at least 1", "cache_size")
        if not 1 <= settings.retry_after <= 3600:
            raise table.error("must be between 1 and 3600 seconds", "retry_after")
        return settings

    def _secret(self, table: Table) -> str:
        file, env = (
            table.string("client_secret_file", None),
            table.string("client_secret_env", None),
        )
        if (file is None) == (env is None):
            raise table.error("give exactly one of client_secret_file and client_secret_env")
        if file is not None:
            where = table.key_path("client_secret_file")
            raw = read_secret_file(self.base_dir / file, where)
            try:
                secret = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise ConfigError("the secret is not UTF-8 text", key=where) from None
        else:
            secret = self.environ.get(env, "").strip()
            if not secret:
                raise table.error(
                    f"the environment variable {env} is unset or empty", "client_secret_env"
                )
        if not secret:
            raise table.error("the secret file is empty", "client_secret_file")
        return secret


def _exchange_target(value: Any, where: str) -> TokenExchangeTarget:
    """A route's `token_exchange = { audience = "...", scope = "..." }`."""
    table = Table(value, where)
    audience = table.string("audience")
    scope = table.string("scope", None)
    table.finish()
    tokens = scope.split(" ") if scope is not None else []
    if not all(_SCOPE_TOKEN.fullmatch(t) for t in tokens):
        raise table.error(
            "must be scope tokens separated by single spaces (RFC 6749 §3.3)", "scope"
        )
    return TokenExchangeTarget(audience, scope)


_GENERATED: dict[str, JWK] = {}


def _generated_key(alg: str) -> JWK:
    """One key per algorithm per process, so that reloads keep serving the same JWKS."""
    key = _GENERATED.get(alg)
    if key is None:
        kty = {"ES": "EC", "RS": "RSA", "PS": "RSA"}.get(alg[:2], "OKP")
        key = _GENERATED[alg] = JWK.generate(kty, alg=alg)
    return key


def gateway_extension(base_dir: Path, environ: Mapping[str, str] | None = None) -> ConfigExtension:
    """The gateway's keys for the gate loader (`environ`: where `client_secret_env` is read)."""
    return ConfigExtension(
        top_level={
            "trusted_proxies": _networks,
            "forward_auth_path": _path,
            "health_path": _path,
            "ready_path": _path,
            "metrics_path": _path,
            "access_log": _boolean,
            "log_level": lambda v, w: _string(v, w).lower(),
            "limits": _section(_CLIENT_LIMITS, ClientLimits),
            "upstream": _section(_UPSTREAM_TIMEOUTS, UpstreamTimeouts),
            "identity_token": _IdentityParser(base_dir),
            "token_exchange": _TokenExchangeParser(
                base_dir, os.environ if environ is None else environ
            ),
            "tracing": _tracing,
            "admin": _section(ADMIN_SETTINGS, AdminSettings),
        },
        route={
            "forward_authorization": _boolean,
            "preserve_host": _boolean,
            "strip_prefix": _strip_prefix,
            "identity_token": _boolean,
            "audience": _string,
            "token_exchange": _exchange_target,
        },
    )


def load_gateway_config(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> GatewayConfig:
    """Read `gateway.toml`; raise `ConfigError` (a `ValueError`) naming the file and the key."""
    base_dir = Path(path).resolve().parent
    gate = load_gate_config(path, extension=gateway_extension(base_dir, environ), environ=environ)
    return gateway_config_from(gate)


def gateway_config_from(gate: GateConfig) -> GatewayConfig:
    """Combine the gate configuration and the gateway's extension values; `ConfigError` names
    the file and the key."""
    try:
        return _combine(gate)
    except ConfigError as exc:
        raise exc.locate(file=gate.source) from None


def _combine(gate: GateConfig) -> GatewayConfig:
    if gate.mode is not GateMode.ROUTES:
        # Nothing behind the gateway would decide what the routes leave open.
        raise ConfigError(
            'the gateway decides by routes only: leave out mode or set "routes"', key="mode"
        )
    ext = gate.extensions
    host, port = "127.0.0.1", 8080
    if gate.listen is not None:
        host, _, port_text = gate.listen.rpartition(":")
        host, port = host.strip("[]"), int(port_text)
    defaults = GatewaySettings()
    paths = {
        name: ext.get(name, getattr(defaults, name))
        for name in ("forward_auth_path", "health_path", "ready_path", "metrics_path")
    }
    settings = GatewaySettings(
        host=host,
        port=port,
        trusted_proxies=ext.get("trusted_proxies", ()),
        client=ext.get("limits", ClientLimits()),
        upstream=ext.get("upstream", UpstreamTimeouts()),
        identity_token=ext.get("identity_token"),
        token_exchange=ext.get("token_exchange"),
        access_log=ext.get("access_log", True),
        log_level=ext.get("log_level", "info"),
        tracing=ext.get("tracing", False),
        admin=ext.get("admin", AdminSettings()),
        **paths,
    )
    routes = []
    for index, entry in enumerate(gate.routes):
        where = f"routes[{index}]"
        upstream = None
        if entry.upstream is None and "token_exchange" in entry.extensions:
            # Forward-auth answers identity fields only: there is no request to put a token in.
            raise ConfigError(
                "needs an upstream to send the token to", key=f"{where}.token_exchange"
            )
        if entry.upstream is not None:
            origin, prefix = parse_upstream(entry.upstream, where)
            strip = entry.extensions.get("strip_prefix", False)
            if strip is True:
                pattern = entry.route.path
                if None in pattern.segments:
                    raise ConfigError("give the prefix to strip", key=f"{where}.strip_prefix")
                strip = pattern.source.rstrip("/") or None
            exchange = entry.extensions.get("token_exchange")
            if exchange is not None:
                _check_exchange_route(entry.extensions, settings, where)
            upstream = RouteUpstream(
                origin=origin,
                audience=entry.extensions.get("audience", entry.upstream.rstrip("/")),
                prefix=prefix,
                strip_prefix=strip or None,
                forward_authorization=entry.extensions.get("forward_authorization", False),
                preserve_host=entry.extensions.get("preserve_host", True),
                identity_token=entry.extensions.get("identity_token", True),
                case_insensitive=gate.case_insensitive,
                token_exchange=exchange,
            )
        routes.append((entry, upstream))
    return GatewayConfig(gate, settings, tuple(routes))


def _check_exchange_route(
    extensions: Mapping[str, Any], settings: GatewaySettings, where: str
) -> None:
    if settings.token_exchange is None:
        raise ConfigError(
            "needs the gateway's [token_exchange] table (token endpoint and client)",
            key=f"{where}.token_exchange",
        )
    if extensions.get("forward_authorization", False):
        # The point of the exchange is that the client's own token stays at the gateway.
        raise ConfigError(
            "cannot be combined with forward_authorization = true", key=f"{where}.token_exchange"
        )


def parse_upstream(url: str, where: str) -> tuple[Origin, str]:
    """`http(s)://host[:port][/prefix]` → (origin, path prefix without a trailing slash)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"upstream {url!r} is not a valid URL ({exc})", key=where) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("upstream must be an http:// or https:// URL", key=where)
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError("upstream URL may not carry a query, fragment or user", key=where)
    origin = Origin(parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80))
    return origin, parts.path.rstrip("/")
