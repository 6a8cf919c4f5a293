"""Server configuration as frozen data; `authgate.server.config_loader` reads it from a TOML file
and the environment (or build it in code). Every value is checked when the object is created, and
an error names the setting (`ConfigError.key`, the file's dotted key). Durations are in seconds.

The issuer follows RFC 8414 §2 (https, no query or fragment; plain http only on loopback). The key
schedule is checked so that a key is published long enough before it signs (JWKS cache max-age plus
the processes' reload interval) and stays published until every token it signed has expired.

The user-facing flows' sections hold the policies their modules define (`RefreshPolicy`,
`SessionPolicy`, `DevicePolicy`, `ThrottlePolicy`), so each rule is checked in one place.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from authgate.config import ConfigError
from authgate.config.admin import AdminSettings  # `[admin]`, shared with the gateway
from authgate.http_forwarding import parse_networks
from authgate.limits import FailMode, Limit, Rate, parse_rate
from authgate.limits.keys import check_namespace
from authgate.limits.stores import describe_url
from authgate.server.flows.codes import MAX_CODE_LIFETIME
from authgate.server.flows.device_codes import DevicePolicy
from authgate.server.flows.pushed_requests import MAX_LIFETIME as MAX_PUSHED_LIFETIME
from authgate.server.flows.refresh_tokens import RefreshPolicy
from authgate.server.flows.sessions import SessionPolicy
from authgate.server.flows.throttle import (
    LOGIN_ACCOUNT_POLICY,
    LOGIN_ADDRESS_POLICY,
    USER_CODE_POLICY,
    ThrottlePolicy,
)
from authgate.server.paths import check_issuer_path
from authgate.server.storage.database import DEFAULT_POOL_SIZE
from authgate.verifier.config import IssuerConfig
from authgate.verifier.dpop import DPoPRules

__all__ = [
    "FAPI2_ALGORITHMS",
    "SIGNING_ALGORITHMS",
    "SIGN_IN_THREADS",
    "AdminSettings",
    "AuditSettings",
    "ClientMetadataSettings",
    "Config",
    "DatabaseSettings",
    "FetchSettings",
    "HttpSettings",
    "KeyPolicy",
    "LimitSettings",
    "LimitsSettings",
    "LockoutSettings",
    "PageSettings",
    "PushedRequestSettings",
    "RegistrationSettings",
    "SecuritySettings",
    "ThrottleSettings",
    "ThrottleStoreSettings",
    "TokenExchangeSettings",
    "TokenPolicy",
    "TracingSettings",
    "is_loopback_host",
]

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
# The algorithms a signing-key chain may use: RS256 (the default), ES256, PS256, EdDSA per API.
SIGNING_ALGORITHMS = ("RS256", "ES256", "PS256", "EdDSA")
# FAPI 2.0 Security Profile §5.4.1: PS256, ES256 or EdDSA (Ed25519); never RS256.
FAPI2_ALGORITHMS = ("PS256", "ES256", "EdDSA")
# FAPI 2.0 §5.3.2.1 (clause 13): accept an `iat` up to 10 s ahead, refuse one over 60 s ahead.
FAPI2_FUTURE_IAT = (10, 60)
DEFAULT_ISSUER = "http://127.0.0.1:8000"
DEFAULT_DATABASE_URL = "sqlite:///authgate.db"
# `tokens.client_assertion_audience`: which `aud` a private_key_jwt assertion may carry.
ISSUER_ONLY = "issuer"
ASSERTION_AUDIENCES = (ISSUER_ONLY, "issuer-or-endpoint")
# Tokens may be checked by verifiers whose clocks run a little behind ours.
CLOCK_SKEW = 60


# `KeyPolicy.sign_in_threads`.
SIGN_IN_THREADS = ("auto", "always", "never")


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    """When signing keys are created, start signing, stop signing and leave the JWKS."""

    algorithms: tuple[str, ...] = SIGNING_ALGORITHMS
    rotation_period: int = 30 * DAY  # how long a key signs
    publication_lead: int = 2 * DAY  # how long a key is published before it signs
    retirement_period: int = 7 * DAY  # how long a key stays published after it stops signing
    jwks_max_age: int = HOUR  # Cache-Control max-age of the JWKS
    refresh_interval: int = MINUTE  # how often each process reloads keys from the database
    # RSA signatures (RS256, PS256) on a thread pool: "auto" when the process may run on more than
    # one CPU (`os.sched_getaffinity`), "always" or "never" (on the event loop, which is cheaper
    # when the threads would only take turns with it on one core; `authgate.server.tokens.signing`).
    sign_in_threads: str = "auto"

    def __post_init__(self) -> None:
        if self.sign_in_threads not in SIGN_IN_THREADS:
            raise ConfigError(
                f"choose from {', '.join(SIGN_IN_THREADS)}", key="keys.sign_in_threads"
            )
        unknown = [a for a in self.algorithms if a not in SIGNING_ALGORITHMS]
        if unknown or not self.algorithms:
            raise ConfigError(f"choose from {', '.join(SIGNING_ALGORITHMS)}", key="keys.algorithms")
        if "RS256" not in self.algorithms:
            raise ConfigError("RS256 must stay available (RFC 9068, OIDC)", key="keys.algorithms")
        if self.refresh_interval > self.jwks_max_age:
            raise ConfigError("must not exceed keys.jwks_max_age", key="keys.refresh_interval")
        if self.publication_lead < self.activation_delay:
            raise ConfigError(
                "must be at least keys.jwks_max_age + keys.refresh_interval",
                key="keys.publication_lead",
            )
        if self.rotation_period <= self.publication_lead:
            raise ConfigError(
                "must be longer than keys.publication_lead", key="keys.rotation_period"
            )

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
                "choose " + " or ".join(ASSERTION_AUDIENCES),
                key="tokens.client_assertion_audience",
            )
        if self.default_access_token_ttl > self.max_access_token_ttl:
            raise ConfigError(
                "must not exceed tokens.max_access_token_ttl",
                key="tokens.default_access_token_ttl",
            )
        if self.authorization_code_ttl > MAX_CODE_LIFETIME:
            raise ConfigError(
                f"must be at most {MAX_CODE_LIFETIME}s", key="tokens.authorization_code_ttl"
            )
        # ID tokens are signed by the same keys: they must expire before their key leaves the JWKS.
        if self.id_token_lifetime > self.max_access_token_ttl:
            raise ConfigError(
                "must not exceed tokens.max_access_token_ttl", key="tokens.id_token_ttl"
            )

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
    # Connection deadlines (`server.http.serve_protocol`): a request head must be complete this long
    # after the connection opened or its first byte came, its body this long after the head
    # (408 and closed otherwise); an idle connection is closed this long after a response.
    header_timeout: int = 10
    body_timeout: int = 30
    keep_alive_timeout: int = 5

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:  # a larger number would wrap around in the socket layer
            raise ConfigError("must be between 0 and 65535", key="http.port")
        if self.workers < 1:
            raise ConfigError("must be at least 1", key="http.workers")
        if min(self.header_timeout, self.body_timeout, self.keep_alive_timeout) <= 0:
            raise ConfigError(
                "header_timeout, body_timeout, keep_alive_timeout must be > 0", key="http"
            )
        try:
            parse_networks(self.trusted_proxies)
        except ValueError as exc:
            raise ConfigError(str(exc), key="http.trusted_proxies") from None


@dataclass(frozen=True, slots=True)
class FetchSettings:
    """`[fetch]`: how the server fetches URLs that clients chose (a `jwks_uri`, a client ID
    metadata document; `authgate.server.outbound`). Documents' own size and time limits are set
    where they are used (`http.jwks_fetch_*`, `client_metadata.*`)."""

    # Seconds to open a connection (TCP and TLS), within the document's whole time limit.
    connect_timeout: float = 2.0
    # Fetches per host name, shared by every use (memory, or Redis with `[limits] redis_url`);
    # the whole count may be spent at once, then it refills at this rate.
    host_rate: str = "60/minute"
    # Development only: also fetch from loopback addresses, over http or https.
    allow_loopback: bool = False
    # PEM file of CA certificates trusted besides the system's (a private CA).
    ca_file: Path | None = None
    # Connections open at once (all hosts).
    max_connections: int = 20

    def __post_init__(self) -> None:
        if not 0 < self.connect_timeout <= 60:
            raise ConfigError("must be above 0 and at most 60s", key="fetch.connect_timeout")
        try:
            parse_rate(self.host_rate)
        except ValueError as exc:
            raise ConfigError(str(exc), key="fetch.host_rate") from None
        if self.ca_file is not None and not self.ca_file.is_file():
            raise ConfigError(f"{self.ca_file} is not a file", key="fetch.ca_file")
        if not 1 <= self.max_connections <= 1000:
            raise ConfigError("must be between 1 and 1000", key="fetch.max_connections")


# `client_metadata.policy`: whether an https URL may be a client_id (draft-ietf-oauth-client-id-
# metadata-document): never, only on the hosts of `allowed_hosts`, or on any public host.
CLIENT_METADATA_POLICIES = ("off", "allowlist", "any")


@dataclass(frozen=True, slots=True)
class ClientMetadataSettings:
    """`[client_metadata]`: clients identified by the URL of their metadata document
    (`authgate.server.metadata_clients`). Off by default: the server then fetches
    nothing on a stranger's behalf and admits no client the operator did not register."""

    policy: str = "off"
    # Host names (exact, lower case) whose URLs may be client ids when `policy = "allowlist"`.
    allowed_hosts: tuple[str, ...] = ()
    # A fetched document is reused as its Cache-Control says, but at least `cache_min` seconds
    # (a client cannot make the server refetch on every request) and at most `cache_max`.
    cache_min: int = 5 * MINUTE
    cache_max: int = DAY
    # The draft (§8.7) suggests 5 kB; documents are small.
    max_bytes: int = 5 * 1024
    # Seconds for the whole fetch.
    timeout: float = 5.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_hosts", tuple(self.allowed_hosts))
        if self.policy not in CLIENT_METADATA_POLICIES:
            raise ConfigError(
                "choose " + ", ".join(CLIENT_METADATA_POLICIES), key="client_metadata.policy"
            )
        for host in self.allowed_hosts:
            if not host or host != host.lower() or not host.isascii() or "/" in host:
                raise ConfigError(
                    f"{host!r}: write lower-case ASCII host names",
                    key="client_metadata.allowed_hosts",
                )
        if self.policy == "allowlist" and not self.allowed_hosts:
            raise ConfigError("list the allowed hosts", key="client_metadata.allowed_hosts")
        if not 0 <= self.cache_min <= self.cache_max <= 7 * DAY:
            raise ConfigError(
                "need 0 <= cache_min <= cache_max <= 7 days", key="client_metadata.cache_min"
            )
        if not 256 <= self.max_bytes <= 1024 * 1024:
            raise ConfigError("must be between 256 and 1048576", key="client_metadata.max_bytes")
        if not 0 < self.timeout <= 60:
            raise ConfigError("must be above 0 and at most 60s", key="client_metadata.timeout")

    @property
    def enabled(self) -> bool:
        return self.policy != "off"

    def allows_host(self, host: str) -> bool:
        """Whether a client id on `host` may be looked up under this policy."""
        if self.policy == "any":
            return True
        return self.policy == "allowlist" and host.lower() in self.allowed_hosts


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
            raise ConfigError("must be between 1 and 500", key="database.pool_size")
        for name in ("lock_timeout", "statement_timeout", "pool_timeout"):
            if not 1 <= getattr(self, name) <= 3600:
                raise ConfigError("must be between 1s and 1h", key=f"database.{name}")


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
class LimitSettings:
    """One rate limit of `[limits.NAME]`: `rate` ("600/minute"), `burst` (requests back to back;
    None: a tenth of the count), `on_store_failure` and `enabled`."""

    rate: str
    burst: int | None = None
    on_store_failure: FailMode = FailMode.OPEN
    enabled: bool = True

    def limit(self, name: str) -> Limit | None:
        """The `Limit` named `name`, or None when it is turned off."""
        return Limit(name, self.parsed, self.on_store_failure) if self.enabled else None

    @property
    def parsed(self) -> Rate:
        return parse_rate(self.rate, burst=self.burst)

    def __post_init__(self) -> None:
        self.parsed  # noqa: B018 - raises ValueError naming the text


# POST /token per authenticated client: well above what a client fetching tokens as it should
# asks for (a token per API per token lifetime), low enough that one runaway client cannot take
# the token endpoint for itself. Open on a store failure: tokens are how every client and API
# keeps working, and a Redis outage must not become an authentication outage.
# Per client: 100 tokens a second sustained. A confidential web app refreshes for all its users
# under one client id, so the default stays far above what one app needs (docs/limits.md).
DEFAULT_TOKEN_LIMIT = LimitSettings("6000/minute", burst=600, on_store_failure=FailMode.OPEN)
# The following are open on a store failure (but `device_authorization`): they hold floods back,
# none guards a secret, and a Redis outage must not close the sign-in pages or the client
# endpoints (docs/limits.md).
# Per client address. One sign-in is 1-3 /authorize requests; 300 a minute lets a large NAT's
# users through and stops a script that makes the server build pending requests in a loop.
DEFAULT_AUTHORIZE_LIMIT = LimitSettings("300/minute", burst=100)
# Per client address: one consent answer per sign-in, far fewer than /authorize.
DEFAULT_CONSENT_LIMIT = LimitSettings("120/minute", burst=30)
# Per client address, GET and POST /device together (the user-code throttle counts wrong codes).
DEFAULT_DEVICE_LIMIT = LimitSettings("120/minute", burst=30)
# Per caller (the authenticated client; a public client per id and address): a device asks once
# per sign-in. Closed on a store failure: each request stores a device authorization and spends
# user-code space, so an outage without the limit is a window to fill the database; devices are
# told `Retry-After` and retry.
DEFAULT_DEVICE_AUTHORIZATION_LIMIT = LimitSettings(
    "60/minute", burst=20, on_store_failure=FailMode.CLOSED
)
# Per caller: a resource server may introspect on each API request, so as high as /token.
DEFAULT_INTROSPECTION_LIMIT = LimitSettings("6000/minute", burst=600)
# Per caller: revocation comes at sign-out, rarer than tokens.
DEFAULT_REVOCATION_LIMIT = LimitSettings("600/minute", burst=100)

# The longest lockout and the longest failure window a setting may name: a day.
MAX_LOCKOUT = 86400


@dataclass(frozen=True, slots=True)
class LockoutSettings:
    """A lockout after failed client authentication (`[limits.client_auth]` per client id,
    `[limits.client_auth_address]` per address): `failures` failures within `window` seconds
    lock the key out for `lockout` seconds; each further failure while its lockouts are
    remembered locks it out twice as long, up to `max_lockout`. Every lockout ends by itself
    (see `authgate.server.lockouts`)."""

    failures: int
    window: int
    lockout: int
    max_lockout: int
    on_store_failure: FailMode = FailMode.OPEN
    enabled: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.failures <= 10_000:
            raise ValueError("failures must be 1..10000")
        if not 1 <= self.window <= MAX_LOCKOUT:
            raise ValueError(f"window must be 1..{MAX_LOCKOUT} seconds")
        if not 1 <= self.lockout <= self.max_lockout <= MAX_LOCKOUT:
            raise ValueError(f"need 1 <= lockout <= max_lockout <= {MAX_LOCKOUT} seconds")


# Per client id, for client secrets only (a `private_key_jwt` assertion or a public client has
# nothing to guess). Ten wrong secrets in ten minutes is no working client; a lockout doubles from
# a minute to the sign-in throttle's longest wait. Anyone who knows a client id (ids are not
# secret) can lock its secret out this way: the price of RFC 6749 §2.3.1 brute-force protection.
DEFAULT_CLIENT_AUTH_LOCKOUT = LockoutSettings(failures=10, window=600, lockout=60, max_lockout=900)
# Per client address, every method: an address may carry many clients (a NAT, one host running
# several apps), so it gets more failures before a lockout.
DEFAULT_CLIENT_AUTH_ADDRESS_LOCKOUT = LockoutSettings(
    failures=30, window=600, lockout=60, max_lockout=900
)


# POST /register per caller address in open mode: a person or a deployment registers a client or
# two, not hundreds; closed on a store failure (an uncounted registration writes to the database).
DEFAULT_REGISTRATION_LIMIT = LimitSettings("20/hour", burst=5, on_store_failure=FailMode.CLOSED)


@dataclass(frozen=True, slots=True)
class ThrottleStoreSettings:
    """`[limits.throttle]`: what the sign-in and user-code throttles do while Redis does not
    answer (closed by default: a guess is never checked uncounted)."""

    on_store_failure: FailMode = FailMode.CLOSED


@dataclass(frozen=True, slots=True)
class LimitsSettings:
    """`[limits]`: where the limits' state lives (see docs/limits.md).

    With `redis_url`, the sign-in and user-code throttles count in Redis, shared by every process
    and machine on it; without it they stay in the database (shared by every process on one
    PostgreSQL database, as before). `throttle`: what the throttles do while Redis does not answer.
    """

    redis_url: str | None = field(default=None, repr=False)  # may hold a password
    timeout: float = 0.1
    retry_interval: float = 1.0
    namespace: str = "authgate"
    throttle: ThrottleStoreSettings = ThrottleStoreSettings()
    # "refusals": RateLimit fields on 429/503 answers only (as the gate); "all": on every answer
    # a limit admitted too, which costs each admitted request the fields' building.
    headers: str = "refusals"
    token: LimitSettings = DEFAULT_TOKEN_LIMIT
    authorize: LimitSettings = DEFAULT_AUTHORIZE_LIMIT
    consent: LimitSettings = DEFAULT_CONSENT_LIMIT
    device: LimitSettings = DEFAULT_DEVICE_LIMIT
    device_authorization: LimitSettings = DEFAULT_DEVICE_AUTHORIZATION_LIMIT
    introspection: LimitSettings = DEFAULT_INTROSPECTION_LIMIT
    revocation: LimitSettings = DEFAULT_REVOCATION_LIMIT
    client_auth: LockoutSettings = DEFAULT_CLIENT_AUTH_LOCKOUT
    client_auth_address: LockoutSettings = DEFAULT_CLIENT_AUTH_ADDRESS_LOCKOUT
    registration: LimitSettings = DEFAULT_REGISTRATION_LIMIT

    def __post_init__(self) -> None:
        if self.redis_url is not None:
            scheme = urlsplit(self.redis_url).scheme.lower()
            if scheme not in ("redis", "rediss", "unix"):
                raise ConfigError(
                    f"{describe_url(self.redis_url)!r}: expected redis://, rediss:// or unix://",
                    key="limits.redis_url",
                )
        if not 0 < self.timeout <= 10:
            raise ConfigError("must be above 0 and at most 10s", key="limits.timeout")
        if not 0 < self.retry_interval <= 300:
            raise ConfigError("must be above 0 and at most 5 minutes", key="limits.retry_interval")
        try:
            check_namespace(self.namespace)
        except ValueError as exc:
            raise ConfigError(str(exc), key="limits.namespace") from None
        if self.headers not in ("refusals", "all"):
            raise ConfigError('must be "refusals" or "all"', key="limits.headers")


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
                raise ConfigError(f"{directory} is not a directory", key="pages")
        if not self.site_name.strip() or len(self.site_name) > 100:
            raise ConfigError("must be 1 to 100 characters", key="pages.site_name")


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """The audit trail (`authgate.server.audit`): how long events are kept (seconds)."""

    retention: int = 365 * DAY

    def __post_init__(self) -> None:
        if not DAY <= self.retention <= 100 * 365 * DAY:
            raise ConfigError("must be between 1 day and 100 years", key="audit.retention")


REGISTRATION_MODES = ("off", "token", "open")


@dataclass(frozen=True, slots=True)
class RegistrationSettings:
    """`[registration]`: dynamic client registration (RFC 7591, RFC 7592; docs/clients.md).

    `mode`: "off" (no endpoint), "token" (an initial access token from `authgate
    registration-token create` is required) or "open" (anyone, rate-limited per caller address by
    `[limits.registration]`). `allowed_scopes`: the API scopes (`SCOPE` or `API#SCOPE`) a
    registered client may ask for; the identity scopes are always allowed to clients of the
    user-facing flows. `unused_client_lifetime`: a registered client never used this long after
    registration is deleted by the purge (0 keeps them)."""

    mode: str = "off"
    allowed_scopes: tuple[str, ...] = ()
    unused_client_lifetime: int = 30 * DAY

    def __post_init__(self) -> None:
        if self.mode not in REGISTRATION_MODES:
            raise ConfigError('must be "off", "token" or "open"', key="registration.mode")
        if self.unused_client_lifetime < 0:
            raise ConfigError("must be 0 (keep) or more", key="registration.unused_client_lifetime")

    @property
    def enabled(self) -> bool:
        """Whether the registration endpoint is served (and advertised)."""
        return self.mode != "off"


@dataclass(frozen=True, slots=True)
class PushedRequestSettings:
    """Pushed authorization requests (RFC 9126): how long a `request_uri` lives (seconds), and
    whether every client must push its authorization requests (§5; per client: `client create
    --require-par`)."""

    lifetime: int = 60
    required: bool = False

    def __post_init__(self) -> None:
        if not 5 <= self.lifetime <= MAX_PUSHED_LIFETIME:  # RFC 9126 §2.2: short lived
            raise ConfigError(
                f"must be between 5 and {MAX_PUSHED_LIFETIME} seconds", key="par.lifetime"
            )


@dataclass(frozen=True, slots=True)
class TokenExchangeSettings:
    """Token exchange (RFC 8693): the one external issuer whose JWTs a client allowed to
    (`client create --exchange-external`) may present as subject or actor tokens, the JWKS to
    verify them with (unset: found by discovery from the issuer) and the `aud` they must name
    (unset: this server's issuer URL)."""

    issuer: str | None = None
    jwks_uri: str | None = None
    audience: str | None = None

    def __post_init__(self) -> None:
        if self.issuer is None:
            if self.jwks_uri is not None or self.audience is not None:
                raise ConfigError("set token_exchange.issuer too", key="token_exchange")
            return
        self.external_issuer("https://audience.invalid")  # the verifier's own checks

    def external_issuer(self, own_issuer: str) -> IssuerConfig | None:
        """The external issuer as the verifier core's configuration, or None when unset."""
        if self.issuer is None:
            return None
        try:
            return IssuerConfig(
                issuer=self.issuer,
                audiences=(self.audience or own_issuer,),
                jwks_uri=self.jwks_uri,
                required_claims=("exp", "sub"),
            )
        except ConfigError as exc:
            raise ConfigError(exc.reason, key="token_exchange") from None


@dataclass(frozen=True, slots=True)
class DPoPSettings:
    """DPoP proofs at the token endpoint (RFC 9449; `authgate.server.tokens.dpop`): the accepted
    `algorithms` (asymmetric), `max_age`/`leeway` of a proof's `iat` (seconds), and whether the
    server requires its own nonces (`require_nonce`, §8), each valid for `nonce_lifetime` to twice
    that. The default leeway is FAPI 2.0's floor (10 s), which it chose as costing no security."""

    algorithms: tuple[str, ...] = ("ES256", "PS256", "RS256", "EdDSA", "Ed25519")
    max_age: int = 60
    leeway: int = 10
    require_nonce: bool = False
    nonce_lifetime: int = 300

    def __post_init__(self) -> None:
        object.__setattr__(self, "algorithms", tuple(self.algorithms))
        try:
            self.rules()
        except ValueError as exc:
            raise ConfigError(str(exc), key="dpop") from None
        if not 10 <= self.nonce_lifetime <= DAY:
            raise ConfigError("must be between 10 seconds and 1 day", key="dpop.nonce_lifetime")

    def rules(self) -> DPoPRules:
        """The proof rules (`authgate.verifier.dpop`)."""
        return DPoPRules(algorithms=self.algorithms, max_age=self.max_age, leeway=self.leeway)


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    """The security profile every client without one of its own is held to (`fapi2`: the FAPI
    2.0 Security Profile, docs/fapi.md); unset: none (a client may still have one)."""

    profile: str | None = None

    def __post_init__(self) -> None:
        if self.profile not in (None, "fapi2"):
            raise ConfigError("the one profile is fapi2", key="security.profile")


@dataclass(frozen=True, slots=True)
class TracingSettings:
    """OpenTelemetry tracing (the `otel` extra); the exporter is configured by the standard
    `OTEL_*` environment variables (see `authgate.tracing`)."""

    enabled: bool = False


@dataclass(frozen=True, slots=True)
class Config:
    """The whole server configuration. Build it with `config_loader.load_config` (or directly in
    code and tests)."""

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
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    tracing: TracingSettings = field(default_factory=TracingSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    registration: RegistrationSettings = field(default_factory=RegistrationSettings)
    fetch: FetchSettings = field(default_factory=FetchSettings)
    client_metadata: ClientMetadataSettings = field(default_factory=ClientMetadataSettings)
    par: PushedRequestSettings = field(default_factory=PushedRequestSettings)
    token_exchange: TokenExchangeSettings = field(default_factory=TokenExchangeSettings)
    dpop: DPoPSettings = field(default_factory=DPoPSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)

    def __post_init__(self) -> None:
        check_issuer(self.issuer)
        if len(self.secret_key) < 32:
            raise ConfigError("the secret key needs at least 32 bytes", key="secret_key")
        if not self.database_url.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ConfigError("use sqlite:///PATH or postgresql://…", key="database_url")
        # A retired key stays published until every token it signed has expired (RFC 7517 §5).
        needed = self.tokens.max_access_token_ttl + CLOCK_SKEW
        if self.keys.retirement_period < needed:
            raise ConfigError(
                "must be at least tokens.max_access_token_ttl + 60s", key="keys.retirement_period"
            )

        if self.security.profile == "fapi2":
            self._check_fapi2()

    def _check_fapi2(self) -> None:
        """The server-wide rules of the FAPI 2.0 Security Profile that settings decide."""
        if not set(FAPI2_ALGORITHMS) & set(self.keys.algorithms):
            # §5.4.1: else no client could be created (ID tokens, access tokens).
            raise ConfigError(
                f"security.profile = fapi2 needs one of {', '.join(FAPI2_ALGORITHMS)}",
                key="keys.algorithms",
            )
        if self.refresh_tokens.grace_period == 0:
            # §5.3.2.1: with rotation, a retry with the previous refresh token must succeed.
            raise ConfigError(
                "security.profile = fapi2 needs a retry window for rotated refresh tokens (> 0)",
                key="refresh_tokens.grace_period",
            )

    def endpoint(self, path: str) -> str:
        """The absolute URL of one of this server's endpoints (`path` starts with `/`)."""
        return self.issuer + path


def check_issuer(issuer: str) -> None:
    """RFC 8414 §2: an https URL with no query or fragment (http allowed on loopback hosts)."""
    if not issuer.isascii() or any(ch in issuer for ch in ' "\\<>') or not issuer.isprintable():
        raise ConfigError("only printable ASCII URL characters are allowed", key="issuer")
    parts = urlsplit(issuer)
    if parts.query or parts.fragment or "?" in issuer or "#" in issuer or not parts.hostname:
        raise ConfigError("an absolute URL without query or fragment is required", key="issuer")
    if issuer.endswith("/"):
        raise ConfigError("remove the trailing '/'", key="issuer")
    problem = check_issuer_path(issuer)
    if problem:
        raise ConfigError(problem, key="issuer")
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return
    raise ConfigError("must use https (plain http only on a loopback host)", key="issuer")


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
