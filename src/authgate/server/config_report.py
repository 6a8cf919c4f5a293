"""The server's settings described from their declarations (`config_loader.TOP_LEVEL`/`SECTIONS`):
the effective value of each with where it came from, secrets redacted (`authgate config show`),
and the reference table of docs/server.md (`authgate config schema --markdown`), which a test
compares with the documentation so the two cannot drift.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from authgate.config import Setting
from authgate.server.config import Config
from authgate.server.config_loader import ENVIRONMENT, LoadedConfig, settings

__all__ = ["DESCRIPTIONS", "REDACTED", "Entry", "effective_settings", "markdown_table"]

REDACTED = "[redacted]"
_DEFAULT_KEY_FILE = "authgate.secret"
_THROTTLE = {
    "free_attempts": "failures allowed before any delay",
    "base_delay": "the first delay, doubled at each further failure",
    "max_delay": "the longest delay",
    "forget_after": "failures are forgotten this long after the last one",
}
# One line per setting: what it is for (docs/server.md explains the trade-offs).
# `[limits.NAME]`: what each limit counts, and the descriptions of its settings.
_LIMITED = {
    "token": "successful `/token` requests per client",
    "authorize": "`/authorize` requests per client address",
    "consent": "consent answers per client address",
    "device": "`/device` page requests per client address",
    "device_authorization": "`/device_authorization` requests per caller",
    "introspection": "`/introspect` requests per caller",
    "revocation": "`/revoke` requests per caller",
    "registration": "`/register` requests per caller address in open mode",
}
_LIMIT = {
    "rate": "{what}, e.g. `600/minute`",
    "burst": "{what}: how many may come back to back",
    "on_store_failure": "{what}: limit while Redis is down, `open` or `closed`",
    "enabled": "whether {what} are limited",
}
_LOCKED = {
    "client_auth": "failed client-secret authentications per client id",
    "client_auth_address": "failed client authentications per client address",
}
_LOCKOUT = {
    "failures": "{what} within `window` before a lockout",
    "window": "{what}: the span `failures` are counted over",
    "lockout": "{what}: the first lockout; each further one doubles",
    "max_lockout": "{what}: the longest lockout",
    "on_store_failure": "{what}: lockouts while Redis is down, `open` or `closed`",
    "enabled": "whether {what} lead to lockouts",
}

DESCRIPTIONS: Mapping[str, str] = {
    "issuer": "the issuer identifier: https URL (http only on loopback), no trailing /",
    "database_url": "`sqlite:///PATH` or `postgresql://USER:PASSWORD@HOST:PORT/NAME`",
    "secret_key_file": "key file used when `AUTHGATE_SECRET_KEY` is unset (created 0600)",
    "keys.algorithms": "signing algorithms (RS256 must stay)",
    "keys.rotation_period": "how long a signing key signs",
    "keys.publication_lead": "how long a key is published before it signs",
    "keys.retirement_period": "how long a key stays published after it stops signing",
    "keys.jwks_max_age": "Cache-Control max-age of the JWKS",
    "keys.refresh_interval": "how often each process reloads the keys",
    "keys.sign_in_threads": (
        "RSA signatures on a thread pool: `auto` (when the process may use more than one CPU), "
        "`always` or `never`"
    ),
    "tokens.default_access_token_ttl": "access-token lifetime unless the API sets one",
    "tokens.max_access_token_ttl": "longest access-token lifetime an API may set",
    "tokens.client_assertion_max_lifetime": "longest lifetime of a private_key_jwt assertion",
    "tokens.client_assertion_audience": "`issuer-or-endpoint` or `issuer` (stricter)",
    "tokens.authorization_code_ttl": "authorization-code lifetime (at most 60 s)",
    "tokens.id_token_ttl": "ID-token lifetime (unset: the access-token default)",
    "http.host": "address `authgate serve` listens on",
    "http.port": "port `authgate serve` listens on",
    "http.workers": "worker processes",
    "http.max_body_size": "largest request body, in bytes",
    "http.cache_ttl": "how long a process caches clients and APIs (0: off)",
    "http.jwks_fetch_max_bytes": "largest client JWKS fetched from a jwks_uri",
    "http.jwks_fetch_timeout": "time limit of a client JWKS fetch",
    "http.jwks_fetch_cache_ttl": "how long a fetched client JWKS is reused",
    "http.trusted_proxies": "proxies whose X-Forwarded-For is believed (addresses, CIDR)",
    "http.header_timeout": "time to send a whole request head (408 after)",
    "http.body_timeout": "time to send a body after its head (408 after)",
    "http.keep_alive_timeout": "an idle connection is closed after this",
    "database.pool_size": "PostgreSQL connections each process keeps open",
    "database.lock_timeout": "longest wait for a lock",
    "database.statement_timeout": "longest statement (PostgreSQL)",
    "database.pool_timeout": "longest wait for a pooled connection, or to connect",
    "refresh_tokens.idle_lifetime": "a refresh token unused this long expires",
    "refresh_tokens.absolute_lifetime": "a refresh-token family ends this long after sign-in",
    "refresh_tokens.grace_period": "a just-rotated token may be retried this long (0: off)",
    "sessions.idle_timeout": "a sign-in session unused this long ends",
    "sessions.absolute_lifetime": "a sign-in session ends this long after sign-in",
    "sessions.touch_interval": "how often a session's last use is written (0: always)",
    "device.lifetime": "lifetime of a device authorization",
    "device.interval": "the device's initial polling interval",
    **{f"throttle.login_account.{k}": f"sign-ins per account: {v}" for k, v in _THROTTLE.items()},
    **{f"throttle.login_address.{k}": f"sign-ins per address: {v}" for k, v in _THROTTLE.items()},
    **{f"throttle.user_code.{k}": f"device user codes: {v}" for k, v in _THROTTLE.items()},
    "limits.redis_url": "Redis shared by every process for limits and throttles (unset: none)",
    "limits.timeout": "longest wait for Redis before a limit's failure mode answers",
    "limits.retry_interval": "how often a Redis that stopped answering is tried again",
    "limits.namespace": "prefix of every key the limits write to Redis",
    "limits.throttle.on_store_failure": "throttles while Redis is down: `closed` (503) or `open`",
    "limits.headers": "RateLimit fields on `refusals` only (429/503) or on `all` answers",
    **{
        f"limits.{name}.{key}": text.format(what=what)
        for name, what in _LIMITED.items()
        for key, text in _LIMIT.items()
    },
    **{
        f"limits.{name}.{key}": text.format(what=what)
        for name, what in _LOCKED.items()
        for key, text in _LOCKOUT.items()
    },
    "registration.mode": "dynamic client registration: `off`, `token` (initial token) or `open`",
    "registration.allowed_scopes": "API scopes a registered client may request",
    "registration.unused_client_lifetime": "purge registered clients unused this long (0: never)",
    "admin.listen": "`HOST:PORT` serving /healthz, /readyz, /metrics apart (unset: public port)",
    "tracing.enabled": "OpenTelemetry spans (needs `authgate[otel]`; exporter from `OTEL_*`)",
    "audit.retention": "how long audit events are kept",
    "fetch.connect_timeout": "time limit to open a connection for an outbound fetch",
    "fetch.host_rate": "outbound fetches per host name (`COUNT/PERIOD`; the count may go at once)",
    "fetch.allow_loopback": "development only: also fetch from loopback addresses, http allowed",
    "fetch.ca_file": "PEM file of CA certificates trusted besides the system's",
    "fetch.max_connections": "outbound connections open at once",
    "client_metadata.policy": "URL client ids (metadata documents): `off`, `allowlist` or `any`",
    "client_metadata.allowed_hosts": "hosts whose URLs may be client ids under `allowlist`",
    "client_metadata.cache_min": "shortest reuse of a fetched client metadata document",
    "client_metadata.cache_max": "longest reuse of a fetched client metadata document",
    "client_metadata.max_bytes": "largest client metadata document",
    "client_metadata.timeout": "time limit of a client metadata document fetch",
    "par.lifetime": "how long a pushed authorization request's `request_uri` lives (5-599 s)",
    "par.required": "every client must push its authorization requests to `/par` (RFC 9126)",
    "security.profile": "`fapi2`: every client is held to FAPI 2.0 (docs/fapi.md); unset: none",
    "token_exchange.issuer": "the external issuer whose JWTs token exchange accepts (unset: none)",
    "token_exchange.jwks_uri": "its JWKS URL (unset: from its discovery metadata)",
    "token_exchange.audience": "the `aud` its tokens must carry (unset: this server's issuer)",
    "pages.template_dirs": "directories of templates that replace the built-in pages",
    "pages.static_dirs": "directories of static files served before the built-in ones",
    "pages.site_name": "the name the sign-in pages show",
    "dpop.algorithms": "algorithms a DPoP proof may be signed with (asymmetric only)",
    "dpop.max_age": "a DPoP proof is accepted this long after its `iat`",
    "dpop.leeway": "how far in the future a DPoP proof's `iat` may lie (clock skew)",
    "dpop.require_nonce": "every DPoP proof must carry a nonce the server issued (`DPoP-Nonce`)",
    "dpop.nonce_lifetime": "a server DPoP nonce is accepted this long to twice this long",
}


@dataclass(frozen=True, slots=True)
class Entry:
    """One setting's effective value (JSON-ready, secrets redacted) and where it came from:
    `source` is "default", "file" or "environment"; `origin` the file or the variable."""

    path: str
    variable: str
    value: Any
    source: str
    origin: str | None


def effective_settings(loaded: LoadedConfig) -> list[Entry]:
    """Every setting of `loaded`, in declaration order, then the secret key."""
    entries = []
    for path, _ in settings():
        source = loaded.sources.get(path)
        if path == "secret_key_file":
            value: Any = _secret_key_file(loaded)
        else:
            value = _json_value(_attribute(loaded.config, path))
        entries.append(
            Entry(
                path=path,
                variable=ENVIRONMENT[path],
                value=_redact(path, value),
                source="default"
                if source is None
                else "file"
                if source == "file"
                else "environment",
                origin=loaded.file if source == "file" else source,
            )
        )
    from_variable = loaded.secret_key_source == "AUTHGATE_SECRET_KEY"
    entries.append(
        Entry(
            path="secret_key",
            variable="AUTHGATE_SECRET_KEY",
            value=REDACTED,
            source="environment" if from_variable else "file",
            origin=loaded.secret_key_source,
        )
    )
    return entries


def markdown_table() -> str:
    """The settings reference of docs/server.md: key, variable, kind, default, meaning."""
    defaults = Config(secret_key=b"\0" * 32)
    lines = [
        "| Setting | Environment variable | Kind | Default | Meaning |",
        "|---|---|---|---|---|",
    ]
    for path, setting in settings():
        if path == "secret_key_file":
            default: Any = _DEFAULT_KEY_FILE
        else:
            default = _json_value(_attribute(defaults, path))
        shown = "unset" if default is None else f"`{json.dumps(default)}`"
        lines.append(
            f"| `{path}` | `{ENVIRONMENT[path]}` | {_kind(setting)} | {shown} | "
            f"{DESCRIPTIONS.get(path, '')} |"  # a test checks that every setting has one
        )
    return "\n".join(lines) + "\n"


def _kind(setting: Setting) -> str:
    match setting.kind:
        case "duration":
            text = "duration" + (", whole seconds" if setting.whole else "")
            return text + (", 0 allowed" if setting.zero else "")
        case "strings":
            return f"list of {setting.what}"
        case _:
            return setting.kind


_MISSING = "(not held in Config under this path)"


def _attribute(config: Config, path: str) -> Any:
    """The value at `path` in `config` (a test checks that every setting's path resolves)."""
    value: Any = config
    for part in path.split("."):
        value = getattr(value, part, _MISSING)
        if value is _MISSING:
            return _MISSING
    return value


def _json_value(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_json_value(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _secret_key_file(loaded: LoadedConfig) -> str | None:
    if loaded.secret_key_source == "AUTHGATE_SECRET_KEY":
        return None  # not used: the key itself is set
    return loaded.secret_key_source


def _redact(path: str, value: Any) -> Any:
    """Passwords in URLs and any `*secret*` value (but the key file's path) are hidden."""
    name = path.rsplit(".", 1)[-1]
    if "secret" in name and name != "secret_key_file" and value is not None:
        return REDACTED
    if isinstance(value, str) and name.endswith("_url"):
        try:
            return make_url(value).render_as_string(hide_password=True)
        except ArgumentError:
            return REDACTED  # unparsable: it might hold anything
    return value
