"""The gate's configuration as frozen data: verifier settings, routes, challenge and metadata
settings (RFC 6750 §2-§3, RFC 9728). `authgate.gate.loader` builds it from TOML; code can build it
directly.

`mode` says who decides a request that no route matches: the gate ("routes", the default: it is
refused) or the application's FastAPI dependencies / Flask decorators ("dependencies": the gate
verifies a credential if one is sent and passes the request on). Leaving routes out never opens
anything by itself; only the explicit mode does.

Extensible: the gateway adds its own keys (proxy timeouts, identity tokens, forward-auth path…)
through a `ConfigExtension`, which names extra top-level keys and extra route keys with a parser
for each; their parsed values land in `GateConfig.extensions` and `RouteConfig.extensions`. Any
key that neither the core nor an extension knows is an error, so a typo in a security setting
never passes silently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from authgate.gate.credentials import CredentialRules
from authgate.gate.dpop import DPoPSettings
from authgate.gate.rate_limits import KeyKind, LimitsSettings, RouteRateLimit
from authgate.gate.resource_metadata import ResourceMetadata
from authgate.policy.rules import Route
from authgate.verifier.config import VerifierConfig

__all__ = ["ConfigExtension", "GateConfig", "GateMode", "RouteConfig", "ValueParser"]

# Parses one extension value; `where` names the key for messages. Raise ValueError to refuse.
ValueParser = Callable[[Any, str], Any]


def _frozen(mapping: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


class GateMode(StrEnum):
    """Who decides a request that no route matches."""

    ROUTES = "routes"  # the gate: refused (403 access_denied)
    DEPENDENCIES = "dependencies"  # the application, with the verified principal (or none)


@dataclass(frozen=True, slots=True)
class ConfigExtension:
    """Keys a component on top of the gate adds to the TOML file.

    `top_level`: key -> parser, for top-level keys and tables (a table arrives as a dict). The
    `limits` table is shared: the gate reads its rate-limit keys, and a `limits` parser here gets
    the other keys of the table (the gateway's request sizes and timeouts).
    `route`: key -> parser, for keys inside `[[routes]]` entries. `defaults`/`route_defaults`:
    values used when a key is absent (not parsed).
    """

    top_level: Mapping[str, ValueParser] = field(default_factory=_frozen)
    route: Mapping[str, ValueParser] = field(default_factory=_frozen)
    defaults: Mapping[str, Any] = field(default_factory=_frozen)
    route_defaults: Mapping[str, Any] = field(default_factory=_frozen)


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """A policy route plus what other shells need: the `upstream` (gateway), extension values,
    the route's `rate_limit` (None: not limited), and `require_dpop` (only DPoP-bound tokens with
    their proof are accepted, RFC 9449 §7.1)."""

    route: Route
    upstream: str | None = None
    extensions: Mapping[str, Any] = field(default_factory=_frozen)
    rate_limit: RouteRateLimit | None = None
    require_dpop: bool = False

    def __post_init__(self) -> None:
        if self.require_dpop and self.route.public:
            raise ValueError("a public route takes no credential: require_dpop makes no sense")
        limit = self.rate_limit
        if (
            limit is not None
            and self.route.public
            and (limit.key is not KeyKind.ADDRESS or len(limit.tiers) > 1)
        ):
            # No principal on a public route: only the address can be counted, in one tier.
            raise ValueError(
                "a public route's rate limit is counted by address, with one rate (no tiers)"
            )


@dataclass(frozen=True, slots=True)
class GateConfig:
    """Everything one gate (gateway, forward-auth endpoint or middleware) enforces.

    `realm`: the `realm` of challenges. `credentials`: where tokens and API keys may be sent.
    `resource`: the RFC 9728 metadata (None: no metadata, no `resource_metadata` parameter).
    `listen`: the gateway's address ("host:port"); middleware ignores it. `source`: the file the
    configuration came from, if any. `case_insensitive`: routes match paths in any ASCII case.
    `limits`: where the routes' rate limits are counted (see `rate_limits`).
    `mode`: see `GateMode` (a string is accepted). `dpop`: the DPoP scheme (see `gate.dpop`).
    """

    verifier: VerifierConfig
    routes: tuple[RouteConfig, ...] = ()
    realm: str = "authgate"
    credentials: CredentialRules = field(default_factory=CredentialRules)
    resource: ResourceMetadata | None = None
    listen: str | None = None
    extensions: Mapping[str, Any] = field(default_factory=_frozen)
    source: str | None = None
    case_insensitive: bool = False
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    mode: GateMode = GateMode.ROUTES
    dpop: DPoPSettings = field(default_factory=DPoPSettings)

    def __post_init__(self) -> None:
        if self.mode not in tuple(GateMode):
            raise ValueError("mode must be one of: " + ", ".join(GateMode))
        object.__setattr__(self, "mode", GateMode(self.mode))
        routes: object = self.routes  # a list is accepted where a tuple is declared
        if isinstance(routes, list):
            object.__setattr__(self, "routes", tuple(routes))
        # One name, one limit: routes may share a limit (one count), never two rates under one
        # name (they would share a count kept at two intervals).
        named: dict[str, object] = {}
        for route in self.routes:
            for limit in route.rate_limit.limits if route.rate_limit is not None else ():
                if named.setdefault(limit.name, limit) != limit:
                    raise ValueError(f"two different rate limits are named {limit.name!r}")
        # The realm goes into every WWW-Authenticate header: printable ASCII only, or each
        # refusal would fail to encode (RFC 9110 §5.5: field values are octets, not Unicode).
        if not self.realm or not all(" " <= ch <= "~" for ch in self.realm):
            raise ValueError("realm must be a non-empty string of printable ASCII characters")
        # The API-key header and the token size limit are the verifier's; keep one source.
        api_key_header = self.verifier.api_keys.header.lower() if self.verifier.api_keys else None
        if not self.dpop.enabled and any(r.require_dpop for r in self.routes):
            raise ValueError("a route has require_dpop = true but [dpop] enabled = false")
        rules = CredentialRules(
            self.credentials.bearer_methods,
            api_key_header,
            self.verifier.max_token_bytes,
            self.dpop.enabled,
        )
        object.__setattr__(self, "credentials", rules)

    @property
    def rate_limited(self) -> bool:
        """Whether any route has a rate limit."""
        return any(route.rate_limit is not None for route in self.routes)

    @property
    def uses_store(self) -> bool:
        """Whether the gate needs the `[limits]` store (then it has a limiter): for rate limits,
        or for the single use of DPoP proofs."""
        return self.dpop.enabled or self.rate_limited

    @classmethod
    def simple(
        cls,
        verifier: VerifierConfig,
        routes: tuple[Route, ...] = (),
        **kwargs: Any,
    ) -> GateConfig:
        """A configuration from plain `Route`s (no upstreams), for middleware built in code."""
        return cls(verifier, tuple(RouteConfig(r) for r in routes), **kwargs)
