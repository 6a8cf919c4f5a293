"""Verifier configuration as frozen data (RFC 8414 §3, RFC 7517 §5, RFC 7662 §2, RFC 9068 §4).

Nothing here reads files or the environment: `authgate.gate.loader` loads TOML at the edge and
builds these objects; code that embeds the verifier builds them directly. Every value is checked
when the object is created, so a `Verifier` never starts with a configuration it cannot honour.

- `IssuerConfig`: one token issuer. Keys come only from its `jwks_uri` (configured, or discovered
  from the issuer's metadata) or, for HMAC, from a configured secret. The allowed algorithms default
  to the asymmetric ones; HMAC is allowed only when a secret is configured (RFC 8725 §3.1-3.2).
- `JWKSCachePolicy`: the key-set lifecycle (floor and ceiling on lifetimes, refresh ahead of expiry,
  unknown-`kid` cooldown and memory, stale-if-error grace, fetch limits).
- `IntrospectionConfig`, `ApiKeyConfig`, `TokenCacheConfig` and `VerifierConfig`, which holds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from authgate.config import ConfigError
from authgate.jose import JWK, AlgorithmNotAllowed, JoseError
from authgate.jose.jwk import key_requirement
from authgate.verifier.http_fetch import FetchLimits, check_fetch_url
from authgate.verifier.principal import ClaimMapping

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "HMAC_ALGORITHMS",
    "ApiKeyConfig",
    "ApiKeyEntry",
    "IntrospectionConfig",
    "IssuerConfig",
    "JWKSCachePolicy",
    "TokenCacheConfig",
    "VerifierConfig",
]

# The default allow-list: every asymmetric JWS algorithm in common issuer use (RFC 7518 §3.1,
# RFC 8037, RFC 9864). ES256K and Ed448 are supported but must be listed explicitly.
ASYMMETRIC_ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
    "Ed25519",
)  # fmt: skip
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")


def _as_tuple(config: object, name: str) -> None:
    """Accept a list where a tuple is declared (frozen data keeps tuples)."""
    value = getattr(config, name)
    if isinstance(value, list):
        object.__setattr__(config, name, tuple(value))


def _is_jws_algorithm(alg: str) -> bool:
    try:
        return key_requirement(alg).use == "sig"
    except AlgorithmNotAllowed:
        return False


def _positive(name: str, value: float, *, zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{name} must be a non-negative number")
    if not zero and value == 0:
        raise ConfigError(f"{name} must be greater than zero")


@dataclass(frozen=True, slots=True)
class JWKSCachePolicy:
    """How a JWKS is cached and refreshed. Durations are in seconds.

    - `min_ttl`/`max_ttl`: floor and ceiling applied to the lifetime that the response's
      `Cache-Control: max-age` or `Expires` gives (RFC 9111 §4.2.1); `default_ttl` when it gives
      none.
    - `refresh_ahead`: the fraction of the lifetime, before expiry, at which the background task
      refreshes (0.2: a 10-minute lifetime is refreshed after 8 minutes).
    - `unknown_kid_cooldown`: at most one fetch caused by unknown `kid`s per this period. Only
      this paces those fetches, not the back-off below, so after an outage a new `kid` is fetched
      at most this long after the issuer answers again. 0 removes the bound.
    - `unknown_kid_ttl`/`max_unknown_kids`: how long, and how many, `kid`s confirmed absent by a
      fetch are remembered, so that repeating an invented `kid` never causes a fetch.
    - `stale_grace`: when refreshing fails, held keys keep verifying for this long after they
      expired (stale-if-error, RFC 5861 §4); then the issuer's tokens get 503 until a fetch
      succeeds.
    - `retry_initial`/`retry_max`: back-off between attempts after a failed fetch (background
      refreshes and requests holding no fresh key; unknown-`kid` refetches follow the cooldown).
    - `fetch`: time and size limits on every request to the issuer.
    """

    min_ttl: float = 60.0
    max_ttl: float = 86400.0
    default_ttl: float = 600.0
    refresh_ahead: float = 0.2
    unknown_kid_cooldown: float = 30.0
    unknown_kid_ttl: float = 300.0
    max_unknown_kids: int = 1024
    stale_grace: float = 3600.0
    retry_initial: float = 1.0
    retry_max: float = 60.0
    fetch: FetchLimits = field(default_factory=FetchLimits)

    def __post_init__(self) -> None:
        for name in ("min_ttl", "max_ttl", "default_ttl", "retry_initial", "retry_max"):
            _positive(f"jwks.{name}", getattr(self, name))
        for name in ("unknown_kid_cooldown", "unknown_kid_ttl", "stale_grace"):
            _positive(f"jwks.{name}", getattr(self, name), zero=True)
        if self.min_ttl > self.max_ttl:
            raise ConfigError("jwks.min_ttl must not exceed jwks.max_ttl")
        if not 0 <= self.refresh_ahead < 1:
            raise ConfigError("jwks.refresh_ahead must be in [0, 1)")
        if self.retry_initial > self.retry_max:
            raise ConfigError("jwks.retry_initial must not exceed jwks.retry_max")
        if isinstance(self.max_unknown_kids, bool) or not isinstance(self.max_unknown_kids, int):
            raise ConfigError("jwks.max_unknown_kids must be an integer")
        if self.max_unknown_kids < 0:
            raise ConfigError("jwks.max_unknown_kids must not be negative")


@dataclass(frozen=True, slots=True)
class IssuerConfig:
    """One trusted token issuer.

    `issuer` must equal the tokens' `iss` exactly. Keys come from `jwks_uri` when given, otherwise
    from the `jwks_uri` of the issuer's metadata (`discovery`: "auto" tries RFC 8414 then OpenID
    Connect Discovery 1.0; "oauth" or "openid" tries one). `secret` configures an HMAC issuer
    instead (no key fetching; `algorithms` then defaults to HS256). `audiences` is required: a
    token must name one of them in `aud` (RFC 9068 §4, RFC 8725 §3.9). `typ`, when set, is the
    required header type (for RFC 9068 access tokens: "at+jwt"). `leeway` is the clock skew
    allowed on `exp`, `nbf` and `iat`. `required_claims` must be present (default: `exp`, so that
    no token is valid forever). `claims` says where scopes, roles and the client id are read.
    """

    issuer: str
    audiences: tuple[str, ...]
    jwks_uri: str | None = None
    discovery: Literal["auto", "oauth", "openid"] = "auto"
    algorithms: tuple[str, ...] = ()
    secret: bytes | None = field(default=None, repr=False)
    typ: str | None = None
    leeway: float = 30.0
    required_claims: tuple[str, ...] = ("exp",)
    claims: ClaimMapping = field(default_factory=ClaimMapping)
    jwks: JWKSCachePolicy = field(default_factory=JWKSCachePolicy)

    def __post_init__(self) -> None:
        for name in ("audiences", "algorithms", "required_claims"):
            _as_tuple(self, name)
        where = f"issuer {self.issuer!r}"
        if not isinstance(self.issuer, str) or not self.issuer:
            raise ConfigError("issuer must be a non-empty string")
        if not isinstance(self.audiences, tuple) or not self.audiences:
            raise ConfigError(f"{where}: audiences must be a non-empty list of strings")
        if not all(isinstance(a, str) and a for a in self.audiences):
            raise ConfigError(f"{where}: audiences must be non-empty strings")
        if self.discovery not in ("auto", "oauth", "openid"):
            raise ConfigError(f"{where}: discovery must be 'auto', 'oauth' or 'openid'")
        _positive(f"{where}: leeway", self.leeway, zero=True)
        if self.secret is not None:
            self._check_hmac(where)
        else:
            self._check_asymmetric(where)

    def _check_hmac(self, where: str) -> None:
        if self.jwks_uri is not None:
            raise ConfigError(f"{where}: configure either a secret or a jwks_uri, not both")
        if not isinstance(self.secret, bytes) or len(self.secret) < 32:
            raise ConfigError(f"{where}: an HMAC secret must be at least 32 bytes")
        try:
            # RFC 8725 §2.1: refused here, at load and on reload, not later when keys are built.
            JWK.from_secret(self.secret)
        except JoseError as exc:
            raise ConfigError(f"{where}: unusable HMAC secret: {exc}") from None
        algorithms = self.algorithms or ("HS256",)
        if not set(algorithms) <= set(HMAC_ALGORITHMS):
            raise ConfigError(f"{where}: with a secret, algorithms must be HMAC (HS256/384/512)")
        for alg in algorithms:
            needed = key_requirement(alg).min_secret_bytes  # RFC 7518 §3.2: the hash size
            if len(self.secret) < needed:
                raise ConfigError(f"{where}: {alg} needs a secret of at least {needed} bytes")
        object.__setattr__(self, "algorithms", tuple(algorithms))

    def _check_asymmetric(self, where: str) -> None:
        algorithms = self.algorithms or ASYMMETRIC_ALGORITHMS
        for alg in algorithms:
            if alg in HMAC_ALGORITHMS:
                # RFC 8725 §3.2: an HMAC algorithm over a public key is the classic confusion.
                raise ConfigError(f"{where}: {alg} needs a configured secret")
            if not _is_jws_algorithm(alg):
                raise ConfigError(f"{where}: unsupported algorithm {alg!r}")
        object.__setattr__(self, "algorithms", tuple(algorithms))
        try:
            if self.jwks_uri is not None:
                check_fetch_url(self.jwks_uri)
            else:
                check_fetch_url(self.issuer)  # discovery fetches from the issuer URL
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None


@dataclass(frozen=True, slots=True)
class IntrospectionConfig:
    """RFC 7662 token introspection for opaque tokens (and JWTs from issuers not configured).

    The gate authenticates to `endpoint` as `client_id` with `client_secret` (`auth_method`:
    "client_secret_basic" per RFC 6749 §2.3.1, or "client_secret_post"). Active answers are cached
    for `cache_ttl` seconds and never past the token's `exp`; inactive ones for `negative_ttl`.
    When `issuer` is set, an answer's `iss` must equal it. An answer's `aud` must name one of
    `audiences` (an answer without `aud` is then refused): without that check, an active token
    issued for another API of the same server would pass here. `any_audience=True` waives it, for
    introspection endpoints that themselves answer `active` only for this resource server's tokens
    (authgate's own server does, for a client registered with `--introspect API`).
    """

    endpoint: str
    client_id: str
    client_secret: str = field(repr=False)
    auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    issuer: str | None = None
    audiences: tuple[str, ...] = ()
    any_audience: bool = False
    cache_ttl: float = 60.0
    negative_ttl: float = 10.0
    max_entries: int = 10_000
    claims: ClaimMapping = field(default_factory=ClaimMapping)
    fetch: FetchLimits = field(default_factory=lambda: FetchLimits(max_bytes=64 * 1024))

    def __post_init__(self) -> None:
        _as_tuple(self, "audiences")
        try:
            check_fetch_url(self.endpoint)
        except ValueError as exc:
            raise ConfigError(f"introspection.endpoint: {exc}") from None
        if not self.client_id or not self.client_secret:
            raise ConfigError("introspection needs client_id and client_secret (RFC 7662 §2.1)")
        if self.auth_method not in ("client_secret_basic", "client_secret_post"):
            raise ConfigError("introspection.auth_method must be client_secret_basic or _post")
        if not self.audiences and not self.any_audience:
            raise ConfigError(
                "introspection.audiences is required: without it a token issued for another API "
                "would pass (set any_audience = true only if the endpoint limits its answers)"
            )
        if self.audiences and self.any_audience:
            raise ConfigError("introspection: set audiences or any_audience, not both")
        _positive("introspection.cache_ttl", self.cache_ttl, zero=True)
        _positive("introspection.negative_ttl", self.negative_ttl, zero=True)
        _positive("introspection.max_entries", self.max_entries)


@dataclass(frozen=True, slots=True)
class ApiKeyEntry:
    """One API key, known only by its SHA-256 digest, and the principal it stands for."""

    digest: bytes = field(repr=False)
    subject: str
    scopes: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    client_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.digest, bytes) or len(self.digest) != 32:
            raise ConfigError(f"api key {self.subject!r}: the digest must be 32 bytes (SHA-256)")
        if not self.subject:
            raise ConfigError("every api key needs a subject")


@dataclass(frozen=True, slots=True)
class ApiKeyConfig:
    """API keys accepted in the `header` request field (never `Authorization`)."""

    keys: tuple[ApiKeyEntry, ...]
    header: str = "X-API-Key"

    def __post_init__(self) -> None:
        _as_tuple(self, "keys")
        name = self.header.lower()
        if name in ("authorization", "cookie", "host") or not name.isascii() or " " in name:
            raise ConfigError(f"api_keys.header {self.header!r} cannot carry API keys")
        digests = [k.digest for k in self.keys]
        if len(set(digests)) != len(digests):
            raise ConfigError("api_keys: the same key hash is configured twice")


@dataclass(frozen=True, slots=True)
class TokenCacheConfig:
    """The verified-token cache: at most `max_entries`, each kept at most `max_ttl` seconds and
    never past the token's `exp`. `max_ttl = 0` disables it. The ceiling bounds how long a token
    signed with a key the issuer has since withdrawn can still pass without a signature check."""

    max_entries: int = 10_000
    max_ttl: float = 300.0

    def __post_init__(self) -> None:
        _positive("token_cache.max_entries", self.max_entries)
        _positive("token_cache.max_ttl", self.max_ttl, zero=True)


@dataclass(frozen=True, slots=True)
class VerifierConfig:
    """Everything the verifier accepts. `max_token_bytes` bounds a presented token's size."""

    issuers: tuple[IssuerConfig, ...] = ()
    introspection: IntrospectionConfig | None = None
    api_keys: ApiKeyConfig | None = None
    token_cache: TokenCacheConfig = field(default_factory=TokenCacheConfig)
    max_token_bytes: int = 16 * 1024

    def __post_init__(self) -> None:
        _as_tuple(self, "issuers")
        names = [i.issuer for i in self.issuers]
        if len(set(names)) != len(names):
            raise ConfigError("the same issuer is configured twice")
        _positive("max_token_bytes", self.max_token_bytes)
