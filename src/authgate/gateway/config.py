"""The gateway's configuration as frozen data: `GatewayConfig`, which pairs the gate's
configuration (verifier, routes, challenges, RFC 9728 metadata) with the gateway's own settings
(listening, limits, timeouts, identity token) and each route's upstream.

`authgate.gateway.config_loader` reads one TOML file into all of it (or build it in code). Frozen,
so a reload builds a new one and swaps it in whole. Durations are in seconds, sizes in bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from authgate.config.admin import AdminSettings
from authgate.gate import GateConfig, RouteConfig
from authgate.gateway.upstream_pool import Origin
from authgate.jose import JWK
from authgate.policy.paths import PathPattern, fold_case

__all__ = [
    "ClientLimits",
    "GatewayConfig",
    "GatewaySettings",
    "IdentityTokenSettings",
    "RouteUpstream",
    "TokenExchangeSettings",
    "TokenExchangeTarget",
    "UpstreamTimeouts",
]


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """Bounds on what a client may send, and how long it may take.

    `max_request_line`: bytes in the request target (414 beyond). `max_header_bytes`: bytes in the
    header section (431 beyond). `max_headers`: number of fields (431). `header_timeout`: time to
    send a complete header section (408). `body_timeout`: longest pause while sending a body.
    `keepalive_timeout`: how long an idle connection is kept. `max_pipeline`: pipelined requests
    held while an earlier one is answered.
    """

    max_request_line: int = 8 * 1024
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    keepalive_timeout: float = 75.0
    max_pipeline: int = 16


@dataclass(frozen=True, slots=True)
class UpstreamTimeouts:
    """`connect`: to open a connection (504 beyond). `read`: longest wait for the upstream while a
    response is expected (504 before its head, connection cut after). `idle`: how long an unused
    keep-alive connection is kept (below the upstream's own keep-alive timeout). `max_idle`: idle
    connections kept per upstream."""

    connect: float = 5.0
    read: float = 60.0
    idle: float = 4.0
    max_idle: int = 128


@dataclass(frozen=True, slots=True)
class TokenExchangeTarget:
    """A route's `token_exchange`: the client's token is exchanged (RFC 8693) for one whose
    audience is `audience` (sent as `resource` and `audience`), with `scope` (None: the subject
    token's scopes that the gateway's client holds on that API)."""

    audience: str
    scope: str | None = None


@dataclass(frozen=True, slots=True)
class TokenExchangeSettings:
    """`[token_exchange]`: how the gateway exchanges tokens at the authorization server.

    `token_endpoint`: the AS's token endpoint (empty: from the metadata of `issuer`, RFC 8414,
    found at the first exchange). `client_id`/`client_secret`: the gateway's own
    confidential client (`client_secret_basic`); the secret is read from a file or an environment
    variable, never written inline. `delegation`: send the gateway's own client credentials token
    as `actor_token`, so the issued token names the gateway in `act` (otherwise an impersonation,
    which the client must be allowed). `timeout`: for each call to the AS (503 beyond).
    `cache_size`: exchanged tokens kept (least recently used dropped first). `expiry_margin`: a
    cached token is dropped this long before its `exp`. `retry_after`: the `Retry-After` of a 503.
    """

    token_endpoint: str
    client_id: str
    client_secret: str = field(repr=False)
    delegation: bool = True
    timeout: float = 5.0
    cache_size: int = 10_000
    expiry_margin: float = 10.0
    retry_after: int = 5
    issuer: str | None = None


@dataclass(frozen=True, slots=True)
class RouteUpstream:
    """Where a route's requests go, and how.

    `prefix`: a path prepended to the request path (from the upstream URL). `strip_prefix`: remove
    this leading path (usually the route's) before prepending, segment by segment as routes match
    (matrix parameters ignored; any ASCII case when `case_insensitive`, the gate's setting).
    `forward_authorization`: pass the client's `Authorization` (and API-key header) on; off by
    default, so that credentials stay at the gateway. `preserve_host`: send the client's `Host`
    (otherwise the upstream's authority).
    `identity_token`: attach the gateway-minted `X-Auth-Token` (when the gateway has a key).
    `audience`: the `aud` of that token (default: the upstream URL).
    `token_exchange`: send a token exchanged for this target instead of the client's (RFC 8693).
    """

    origin: Origin
    audience: str
    prefix: str = ""
    strip_prefix: str | None = None
    forward_authorization: bool = False
    preserve_host: bool = True
    identity_token: bool = True
    case_insensitive: bool = False
    token_exchange: TokenExchangeTarget | None = None
    # `strip_prefix` as the segments compared (folded when case is ignored); None: no stripping.
    strip_segments: tuple[str, ...] | None = field(
        init=False, default=None, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.strip_prefix is not None:
            pattern = PathPattern.prefix(self.strip_prefix)
            literals = tuple(s for s in pattern.segments if s is not None)
            if self.case_insensitive:
                literals = tuple(fold_case(s) for s in literals)
            object.__setattr__(self, "strip_segments", literals)


@dataclass(frozen=True, slots=True)
class IdentityTokenSettings:
    """The short-lived JWT (`X-Auth-Token`) that the gateway mints for upstreams.

    `key`: a private asymmetric JWK (bound to `alg`) used for nothing else; its public half is
    served at `jwks_path`. `issuer`: the `iss` of minted tokens. `ttl`: their lifetime (capped by
    the client token's own `exp`). The audience is the route's (its upstream URL by default);
    `audience` is used for forward-auth routes that have no upstream.
    """

    key: JWK
    alg: str
    issuer: str
    audience: str
    ttl: float = 60.0
    jwks_path: str = "/.well-known/authgate/jwks.json"
    header: str = "X-Auth-Token"


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """Everything the gateway needs besides the verifier and the policy."""

    host: str = "127.0.0.1"
    port: int = 8080
    trusted_proxies: tuple[str, ...] = ()
    forward_auth_path: str | None = "/_authgate/check"
    health_path: str = "/healthz"
    ready_path: str = "/readyz"
    metrics_path: str | None = "/metrics"
    # `[admin] listen`: health, readiness and metrics on their own address (read at start).
    admin: AdminSettings = field(default_factory=AdminSettings)
    client: ClientLimits = field(default_factory=ClientLimits)
    upstream: UpstreamTimeouts = field(default_factory=UpstreamTimeouts)
    identity_token: IdentityTokenSettings | None = None
    token_exchange: TokenExchangeSettings | None = None
    access_log: bool = True
    log_level: str = "info"
    tracing: bool = False  # `[tracing] enabled`: OpenTelemetry spans (read at start, not reload)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """`routes` pairs each of the gate's routes (the same `RouteConfig` objects) with its
    upstream (None: forward-auth only), in configuration order."""

    gate: GateConfig
    settings: GatewaySettings
    routes: tuple[tuple[RouteConfig, RouteUpstream | None], ...]
