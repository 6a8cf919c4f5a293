"""Loading the gate configuration from TOML (see docs/gate.md for every key).

```toml
listen = "127.0.0.1:8080"
realm = "orders-api"
resource = "https://api.example.com"          # RFC 9728: enables the metadata document
[[issuers]]
issuer = "https://idp.example.com"            # discovery; or jwks_uri = "…"
audiences = ["https://api.example.com"]
[[routes]]
path = "/orders"                              # prefix; or pattern = "/orders/*/items"
methods = ["GET"]
upstream = "http://127.0.0.1:9000"
scopes = ["orders:read"]
```

Files and the environment are read here and nowhere else: `secret_env`/`client_secret_env` name an
environment variable, `secret_file`/`client_secret_file` a file (relative to the configuration
file) whose content, minus one trailing newline, is the secret; secrets are never written in the
TOML itself. Unknown keys are errors that name the key's location, e.g. `routes[2].scope`.

`mode = "dependencies"` lets the application's FastAPI dependencies or Flask decorators decide the
requests that no route matches (see `GateMode`); without it, a file with no `[[routes]]` refuses
every request, and loading it logs a warning saying so.

Routes are case-sensitive unless `case_insensitive = true`; when the key is left out, a protected
route whose other-case spelling (`/ADMIN` for `/admin`) another route would judge differently is
logged as a warning, since an application that ignores case would serve that spelling as the
protected path (an explicit `case_insensitive = false` silences it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from authgate.config import ConfigError, Setting, Table, parse_toml, read_settings, read_toml
from authgate.gate.config import ConfigExtension, GateConfig, GateMode, RouteConfig
from authgate.gate.credentials import CredentialRules
from authgate.gate.dpop import DPoPSettings, read_dpop
from authgate.gate.rate_limit_config import read_limits, read_route_limit
from authgate.gate.resource_metadata import ResourceMetadata
from authgate.limits import FailMode
from authgate.policy.engine import Policy
from authgate.policy.rules import ClaimCondition, Route
from authgate.verifier.api_keys import parse_key_hash
from authgate.verifier.config import (
    ApiKeyConfig,
    ApiKeyEntry,
    IntrospectionConfig,
    IssuerConfig,
    JWKSCachePolicy,
    TokenCacheConfig,
    VerifierConfig,
)
from authgate.verifier.http_fetch import FetchLimits
from authgate.verifier.principal import ClaimMapping, ClaimPath

__all__ = ["load_gate_config", "parse_gate_config", "read_secret_file"]

logger = logging.getLogger("authgate.gate")

_TOP_LEVEL = frozenset({
    "listen", "realm", "resource", "resource_metadata", "bearer_methods", "max_token_bytes",
    "issuers", "introspection", "api_keys", "token_cache", "routes", "case_insensitive", "mode",
    "limits", "dpop",
})  # fmt: skip
# `[limits]` holds the rate limits' store settings; an extension may add its own keys there.
_SHARED = "limits"
# `[issuers.jwks]`, declared: which keys are durations (0 allowed where it means "none").
_JWKS = {
    "min_ttl": Setting.duration(),
    "max_ttl": Setting.duration(),
    "default_ttl": Setting.duration(),
    "refresh_ahead": Setting("number"),  # a fraction of the lifetime, not a duration
    "unknown_kid_cooldown": Setting.duration(zero=True),
    "unknown_kid_ttl": Setting.duration(zero=True),
    "max_unknown_kids": Setting("integer"),
    "stale_grace": Setting.duration(zero=True),
    "retry_initial": Setting.duration(),
    "retry_max": Setting.duration(),
    "timeout": Setting.duration(),
    "max_bytes": Setting("integer"),
}


def load_gate_config(
    path: str | os.PathLike[str],
    *,
    extension: ConfigExtension | None = None,
    environ: Mapping[str, str] | None = None,
) -> GateConfig:
    """Read and validate a TOML file; raise `ConfigError` naming the file and the key."""
    return _load(read_toml(path), extension, environ, Path(path).parent)


def parse_gate_config(
    text: str,
    *,
    extension: ConfigExtension | None = None,
    environ: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
    source: str | None = None,
) -> GateConfig:
    """Validate TOML text (see `load_gate_config`); `source` names the file in errors."""
    return _load(parse_toml(text, source), extension, environ, base_dir or Path.cwd())


def _load(
    top: Table,
    extension: ConfigExtension | None,
    environ: Mapping[str, str] | None,
    base_dir: Path,
) -> GateConfig:
    secrets = _Secrets(os.environ if environ is None else environ, base_dir)
    with top.checking():
        return _build(top, extension or ConfigExtension(), secrets, top.file)


class _Secrets:
    """Reads secrets from the environment or from files, by the names the TOML gives."""

    def __init__(self, environ: Mapping[str, str], base_dir: Path) -> None:
        self._environ = environ
        self._base_dir = base_dir

    @property
    def environ(self) -> Mapping[str, str]:
        return self._environ

    def read(self, table: Table, name: str, *, required: bool) -> bytes | None:
        env_name: str | None = table.string(f"{name}_env", None)
        file_name: str | None = table.string(f"{name}_file", None)
        if env_name is not None and file_name is not None:
            raise table.error(f"give {name}_env or {name}_file, not both")
        if env_name is not None:
            value = self._environ.get(env_name)
            if not value:
                raise table.error(f"${env_name} is not set", f"{name}_env")
            return value.encode("utf-8")
        if file_name is not None:
            where = table.key_path(f"{name}_file")
            content = read_secret_file(self._base_dir / file_name, where)
            content = content.removesuffix(b"\n").removesuffix(b"\r")
            if not content:
                raise table.error("the file is empty", f"{name}_file")
            return content
        if required:
            raise table.error(f"{name}_env or {name}_file is required")
        return None


def read_secret_file(path: Path, where: str) -> bytes:
    """The content of a file that holds a secret or a private key; `ConfigError` if unreadable.

    A file that other users may read is used, with a warning (the server's key file is treated
    the same way): refusing it would stop a running service at its next reload.
    """
    try:
        mode = path.stat().st_mode
        content = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", key=where) from None
    if mode & 0o077:
        logger.warning("%s: %s is readable by other users; chmod 600 it", where, path)
    return content


def _build(top: Table, ext: ConfigExtension, secrets: _Secrets, source: str | None) -> GateConfig:
    issuers = tuple(_issuer(t, secrets) for t in top.tables("issuers"))
    introspection_table = top.table("introspection")
    api_keys_table = top.table("api_keys")
    cache_table = top.table("token_cache")
    verifier = VerifierConfig(
        issuers=issuers,
        introspection=_introspection(introspection_table, secrets) if introspection_table else None,
        api_keys=_api_keys(api_keys_table) if api_keys_table else None,
        token_cache=_token_cache(cache_table) if cache_table else TokenCacheConfig(),
        max_token_bytes=top.integer("max_token_bytes", 16 * 1024),
    )
    if not issuers and verifier.introspection is None and verifier.api_keys is None:
        raise ConfigError("configure at least one of [[issuers]], [introspection], [api_keys]")
    shared = _SHARED in ext.top_level
    limits, fail_mode, ext_limits = read_limits(
        top.table(_SHARED), secrets, secrets.environ, shared=shared
    )
    routes = tuple(_route(t, ext, i, fail_mode) for i, t in enumerate(top.tables("routes")))
    _check_limit_names(routes)
    methods = frozenset(top.strings("bearer_methods", ("header",)))
    credentials = CredentialRules(bearer_methods=methods)
    dpop = read_dpop(top.table("dpop"), required=any(r.require_dpop for r in routes))
    resource = _resource(top, verifier, routes, credentials, dpop)
    listen = top.string("listen", None)
    if listen is not None:
        _check_listen(listen)
    realm = top.string("realm", "authgate")
    case_insensitive = top.boolean("case_insensitive", False)
    mode = GateMode(top.choice("mode", tuple(GateMode), GateMode.ROUTES.value))
    if not routes and mode is GateMode.ROUTES:
        # Reject by default: a missing routes table may be a typo, so it opens nothing.
        logger.warning(
            "%sno [[routes]]: every request will be refused (403 access_denied); set "
            'mode = "dependencies" to let FastAPI dependencies or Flask decorators decide',
            f"{source}: " if source else "",
        )
    parsers = {k: v for k, v in ext.top_level.items() if k != _SHARED}
    extensions = _extensions(top, parsers, ext.defaults, _TOP_LEVEL)
    if shared and ext_limits:
        where = top.key_path(_SHARED)
        try:
            extensions[_SHARED] = ext.top_level[_SHARED](ext_limits, where)
        except ConfigError as exc:
            raise exc.locate(file=top.file, key=where) from None
        except (ValueError, TypeError) as exc:
            raise top.error(str(exc), _SHARED) from None
    # An explicit `case_insensitive = false` says the application is case-sensitive too: no warning.
    if "case_insensitive" not in top.data:
        for warning in case_risks([r.route for r in routes]):
            logger.warning("%s", warning)
    return GateConfig(
        verifier,
        routes,
        realm,
        credentials,
        resource,
        listen,
        extensions,
        source,
        case_insensitive=case_insensitive,
        limits=limits,
        mode=mode,
        dpop=dpop,
    )


def _check_limit_names(routes: tuple[RouteConfig, ...]) -> None:
    """Each route's limits have names of their own (a shared name would share one count)."""
    owner: dict[str, int] = {}
    for index, route in enumerate(routes):
        for limit in route.rate_limit.limits if route.rate_limit is not None else ():
            first = owner.setdefault(limit.name, index)
            if first != index:
                raise ConfigError(
                    f"the rate limit name {limit.name!r} is also used by routes[{first}]; give "
                    "the routes (or the tiers) different names",
                    key=f"routes[{index}]",
                )


def case_risks(routes: list[Route]) -> list[str]:
    """Warnings for case-sensitive routes that an application ignoring case would undo.

    For each protected route, its path is spelt in upper and in lower case (a wildcard segment as
    `x`); when that spelling is judged by another route that is public or demands something else,
    a case-insensitive application (Express's default, ASP.NET, IIS) would serve the protected
    path under the weaker rule.
    """
    policy = Policy.of(routes)
    index = {id(route): i for i, route in enumerate(routes)}
    warnings = []
    for i, route in enumerate(routes):
        if route.public:
            continue
        pattern = route.path
        own = ["x" if s is None else s for s in pattern.segments]
        for spelling in sorted({"/" + "/".join(own).upper(), "/" + "/".join(own).lower()}):
            other = _owner(policy, route, spelling)
            if other is not None:
                j = index[id(other)]
                demand = "public" if other.public else "other requirements"
                warnings.append(
                    f"routes[{i}] ({pattern.source}) is case-sensitive: {spelling} is judged by "
                    f"routes[{j}] ({other.path.source}, {demand}), and an application that "
                    f"ignores case would serve it as {pattern.source}; set case_insensitive = true "
                    f"if it does"
                )
                break
    return warnings


def _owner(policy: Policy[Route], route: Route, spelling: str) -> Route | None:
    """The other route that judges `spelling` under weaker or different demands, if any."""
    for method in sorted(route.methods or {"GET"}):
        matched = policy.match(method, spelling)
        if matched is None:
            continue
        other = matched[0]
        if other is not route and (other.public or other.requirement != route.requirement):
            return other
    return None


def _extensions(
    table: Table,
    parsers: Mapping[str, Callable[[Any, str], Any]],
    defaults: Mapping[str, Any],
    core: frozenset[str],
) -> dict[str, Any]:
    out = dict(defaults)
    for key, parser in parsers.items():
        if key in core:
            raise ConfigError(f"extension key {key!r} collides with a core key")
        if key in table.data:
            where = table.key_path(key)
            try:
                out[key] = parser(table.take(key), where)
            except ConfigError as exc:
                raise exc.locate(file=table.file, key=where) from None
            except (ValueError, TypeError) as exc:
                raise table.error(str(exc), key) from None
    table.finish()
    return out


def _check_listen(listen: str) -> None:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{listen!r} must look like 'host:port'", key="listen")


def _claim_path(value: Any, where: str) -> ClaimPath:
    if isinstance(value, str) and value:
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise ConfigError("a claim is a name or an array of names (a path)", key=where)


def _claim_mapping(table: Table) -> ClaimMapping:
    default = ClaimMapping()
    found: dict[str, tuple[ClaimPath, ...]] = {}
    for key, attr in (
        ("scope_claims", "scopes"),
        ("role_claims", "roles"),
        ("client_id_claims", "client_id"),
    ):
        raw = table.array(key, None)
        if raw is not None:
            found[attr] = tuple(
                _claim_path(v, f"{table.key_path(key)}[{i}]") for i, v in enumerate(raw)
            )
    return ClaimMapping(
        scopes=found.get("scopes", default.scopes),
        roles=found.get("roles", default.roles),
        client_id=found.get("client_id", default.client_id),
    )


def _jwks_policy(table: Table | None) -> JWKSCachePolicy:
    if table is None:
        return JWKSCachePolicy()
    values = read_settings(table, _JWKS)
    with table.checking():
        limits = FetchLimits(values.pop("timeout", 5.0), values.pop("max_bytes", 256 * 1024))
        return JWKSCachePolicy(fetch=limits, **values)


def _issuer(table: Table, secrets: _Secrets) -> IssuerConfig:
    issuer = table.string("issuer")
    values: dict[str, Any] = {
        "audiences": tuple(table.strings("audiences")),
        "jwks_uri": table.string("jwks_uri", None),
        "discovery": table.choice("discovery", ("auto", "oauth", "openid"), "auto"),
        "algorithms": tuple(table.strings("algorithms", ())),
        "secret": secrets.read(table, "secret", required=False),
        "typ": table.string("typ", None),
        "leeway": table.duration("leeway", 30.0, zero=True),
        "required_claims": tuple(table.strings("required_claims", ("exp",))),
        "claims": _claim_mapping(table),
        "jwks": _jwks_policy(table.table("jwks")),
    }
    table.finish()
    with table.checking():
        return IssuerConfig(issuer=issuer, **values)


def _introspection(table: Table, secrets: _Secrets) -> IntrospectionConfig:
    secret = secrets.read(table, "client_secret", required=True) or b""
    values: dict[str, Any] = {
        "endpoint": table.string("endpoint"),
        "client_id": table.string("client_id"),
        "client_secret": secret.decode("utf-8"),
        "auth_method": table.choice(
            "auth_method", ("client_secret_basic", "client_secret_post"), "client_secret_basic"
        ),
        "issuer": table.string("issuer", None),
        "audiences": tuple(table.strings("audiences", ())),
        "any_audience": table.boolean("any_audience", False),
        "cache_ttl": table.duration("cache_ttl", 60.0, zero=True),
        "negative_ttl": table.duration("negative_ttl", 10.0, zero=True),
        "max_entries": table.integer("max_entries", 10_000),
        "claims": _claim_mapping(table),
    }
    timeout = table.duration("timeout", 5.0)
    max_bytes = table.integer("max_bytes", 64 * 1024)
    table.finish()
    with table.checking():
        return IntrospectionConfig(fetch=FetchLimits(timeout, max_bytes), **values)


def _api_keys(table: Table) -> ApiKeyConfig:
    entries = []
    for entry in table.tables("keys"):
        with entry.checking():
            entries.append(ApiKeyEntry(
                digest=parse_key_hash(entry.string("hash")),
                subject=entry.string("subject"),
                scopes=frozenset(entry.strings("scopes", ())),
                roles=frozenset(entry.strings("roles", ())),
                client_id=entry.string("client_id", None),
            ))  # fmt: skip
        entry.finish()
    if not entries:
        raise table.error("at least one [[api_keys.keys]] entry is required")
    header = table.string("header", "X-API-Key")
    table.finish()
    with table.checking():
        return ApiKeyConfig(tuple(entries), header)


def _token_cache(table: Table) -> TokenCacheConfig:
    max_entries = table.integer("max_entries", 10_000)
    max_ttl = table.duration("max_ttl", 300.0, zero=True)
    table.finish()
    with table.checking():
        return TokenCacheConfig(max_entries, max_ttl)


def _route(table: Table, ext: ConfigExtension, index: int, fail_mode: FailMode) -> RouteConfig:
    claims = []
    for condition in table.tables("claims"):
        path = _claim_path(condition.take("claim"), condition.key_path("claim"))
        kwargs = {k: condition.take(k) for k in ("equals", "contains") if k in condition.data}
        with condition.checking():
            claims.append(ClaimCondition(path, **kwargs))
        condition.finish()
    values: dict[str, Any] = {
        "path": table.string("path", None),
        "pattern": table.string("pattern", None),
        "methods": table.strings("methods", None),
        "public": table.boolean("public", False),
        "scopes": table.strings("scopes", ()),
        "scopes_match": table.choice("scopes_match", ("all", "any"), "all"),
        "roles": table.strings("roles", ()),
        "roles_match": table.choice("roles_match", ("all", "any"), "all"),
        "name": table.string("name", None),
    }
    with table.checking():
        route = Route.build(claims=claims, **values)
    upstream = table.string("upstream", None)
    if upstream is not None:
        parts = urlsplit(upstream)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise table.error("must be an http(s) URL", "upstream")
    rate_limit = read_route_limit(
        table, index, name=route.name, public=route.public, default_mode=fail_mode
    )
    require_dpop = table.boolean("require_dpop", False)
    core = frozenset(table.consumed)
    extensions = _extensions(table, ext.route, ext.route_defaults, core)
    with table.checking():
        return RouteConfig(route, upstream, extensions, rate_limit, require_dpop)


def _resource(
    top: Table,
    verifier: VerifierConfig,
    routes: tuple[RouteConfig, ...],
    credentials: CredentialRules,
    dpop: DPoPSettings,
) -> ResourceMetadata | None:
    resource = top.string("resource", None)
    table = top.table("resource_metadata")
    if resource is None:
        if table is not None:
            raise table.error("needs a top-level 'resource'")
        return None
    servers = [i.issuer for i in verifier.issuers]
    if verifier.introspection is not None and verifier.introspection.issuer:
        servers.append(verifier.introspection.issuer)
    scopes = sorted({s for r in routes for s in r.route.requirement.scopes})
    name = documentation = None
    extra: dict[str, Any] = {}
    if dpop.enabled:  # RFC 9728 §2; a [resource_metadata] member of the same name wins
        extra["dpop_signing_alg_values_supported"] = list(dpop.rules.algorithms)
        if routes and all(r.require_dpop or r.route.public for r in routes):
            extra["dpop_bound_access_tokens_required"] = True
    if table is not None:
        servers = table.strings("authorization_servers", servers)
        scopes = table.strings("scopes_supported", scopes)
        name = table.string("resource_name", None)
        documentation = table.string("resource_documentation", None)
        extra |= {key: table.take(key) for key in list(table.data) if key not in table.consumed}
        table.finish()
    return ResourceMetadata(
        resource=resource,
        authorization_servers=tuple(dict.fromkeys(servers)),
        scopes_supported=tuple(scopes),
        bearer_methods_supported=tuple(sorted(credentials.bearer_methods)),
        resource_name=name,
        resource_documentation=documentation,
        extra=extra,
    )
