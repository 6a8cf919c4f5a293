"""`AuthServer`: the parts of a running authorization server, wired together once per process
and shared by the endpoints: storage, the server secret and the signing keys, client
authentication, the token issuer and inspector, the grants, and what the sign-in pages need.

Startup checks the schema (SQLite is upgraded in place; PostgreSQL must be upgraded with `authgate
db upgrade`), checks that the secret key is the one the database was set up with, and brings the
signing keys on schedule before the first request. Each purpose (token hashes, CSRF tokens,
tickets, sealed refresh responses, sealed signing keys) uses its own key derived from the secret
key (`ServerSecret`), so no key serves two purposes and every process derives the same ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from authgate.http_forwarding import TrustedProxies
from authgate.limits import LimiterMetrics
from authgate.server.clients.assertions import ClientAssertionVerifier
from authgate.server.clients.authentication import ClientAuthenticator
from authgate.server.clients.jwks import ClientKeys
from authgate.server.config import Config, LimitsSettings
from authgate.server.flows.pages import PageRenderer
from authgate.server.flows.pending_requests import PendingRequests
from authgate.server.flows.sessions import CsrfTokens, SessionCookie, session_cookie
from authgate.server.flows.throttle import Throttle
from authgate.server.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    DeviceCodeGrant,
    GrantHandler,
    RefreshTokenGrant,
    TokenExchangeGrant,
    UserTokens,
)
from authgate.server.keys import KeyManager
from authgate.server.limits import ServerLimits
from authgate.server.metadata_clients import ClientMetadataDocuments
from authgate.server.models import AUTH_METHODS, TokenFormat
from authgate.server.observability.counters import SecurityCounters
from authgate.server.outbound import OutboundFetcher
from authgate.server.paths import ENDPOINT_PATHS, STATIC_PATH
from authgate.server.secret_key import ServerSecret
from authgate.server.storage import Database, SqlStorage, Storage
from authgate.server.storage.errors import check_sqlite_file, database_errors
from authgate.server.storage.migrate import check_schema, upgrade
from authgate.server.storage.registry_cache import RegistryCache
from authgate.server.storage.retention import Retention
from authgate.server.targets.user_targets import UserTargets
from authgate.server.tokens.dpop import DatabaseClaims, TokenEndpointDPoP
from authgate.server.tokens.exchange_tokens import ExchangeTokenReader
from authgate.server.tokens.formats import AccessTokenFormat
from authgate.server.tokens.inspection import TokenInspector
from authgate.server.tokens.issuer import TokenIssuer
from authgate.server.tokens.jwt_format import JwtAccessTokens
from authgate.server.tokens.opaque_format import OpaqueAccessTokens
from authgate.server.tokens.signing import JwtSigner
from authgate.verifier import Verifier, VerifierConfig
from authgate.verifier.dpop import ClaimStore

if TYPE_CHECKING:
    from authgate.server.storage.redis_throttle import RedisThrottleStore

__all__ = [
    "AuthServer",
    "BrowserPages",
    "SecretKeyMismatchError",
    "open_storage",
    "retention_for",
]

_CHECK_SETTING = "secret_key_check"


class SecretKeyMismatchError(RuntimeError):
    """The database was set up with another secret key; its signing keys cannot be opened."""


async def open_storage(config: Config, *, migrate_sqlite: bool = True) -> SqlStorage:
    """Connect to the configured database and check (or, for SQLite, bring) its schema."""
    settings = config.database
    if config.database_url.startswith("sqlite"):
        check_sqlite_file(config.database_url)
    db = Database(
        config.database_url,
        pool_size=settings.pool_size,
        lock_timeout=settings.lock_timeout,
        statement_timeout=settings.statement_timeout,
        pool_timeout=settings.pool_timeout,
    )
    try:
        async with database_errors(config.database_url):
            if db.is_sqlite and migrate_sqlite:
                await upgrade(db)
            await check_schema(db)
    except BaseException:
        await db.close()
        raise
    return SqlStorage(db, retention=retention_for(config))


def retention_for(config: Config) -> Retention:
    """How long the stores keep records, from `config`'s refresh, session, throttle and audit
    settings."""
    return Retention(
        refresh_idle=config.refresh_tokens.idle_lifetime,
        refresh_absolute=config.refresh_tokens.absolute_lifetime,
        session_idle=config.sessions.idle_timeout,
        session_absolute=config.sessions.absolute_lifetime,
        throttle_memory=config.throttle.longest_memory,
        audit=config.audit.retention,
        unused_registered_client=config.registration.unused_client_lifetime,
    )


async def check_secret_key(storage: Storage, secret: ServerSecret) -> None:
    """Raise `SecretKeyMismatchError` unless `secret` is the key this database knows."""
    stored = await storage.get_or_set_setting(_CHECK_SETTING, secret.check_value)
    if stored != secret.check_value:
        raise SecretKeyMismatchError(
            "AUTHGATE_SECRET_KEY (or the key file) differs from the one this database was set up "
            "with; use the same secret key for every process"
        )


@dataclass(frozen=True, slots=True)
class BrowserPages:
    """What the sign-in pages need to talk to a browser: page rendering with the security headers,
    the session cookie, CSRF tokens, the sealed tickets that carry a waiting request through a
    form, and the client's address behind trusted proxies."""

    renderer: PageRenderer
    cookie: SessionCookie
    csrf: CsrfTokens
    tickets: PendingRequests
    # `http.trusted_proxies`: whose X-Forwarded-For names the client address.
    proxies: TrustedProxies

    @classmethod
    def for_config(cls, config: Config, secret: ServerSecret) -> BrowserPages:
        """The pages of `config`'s issuer, with keys derived from `secret`."""
        return cls(
            renderer=PageRenderer(
                static_url=config.endpoint(STATIC_PATH),
                template_dirs=config.pages.template_dirs,
                site_name=config.pages.site_name,
            ),
            cookie=session_cookie(config.issuer),
            csrf=CsrfTokens(secret.csrf_key),
            tickets=PendingRequests(secret.ticket_key),
            proxies=TrustedProxies(config.http.trusted_proxies),
        )


@dataclass(slots=True)
class AuthServer:
    """Everything the endpoints need, wired together."""

    config: Config
    storage: Storage
    secret: ServerSecret
    keys: KeyManager
    # Clients, APIs and users by id, cached for `http.cache_ttl`.
    registry: RegistryCache
    # The API and scopes of a user-facing request.
    targets: UserTargets
    client_keys: ClientKeys
    # Fetches URLs that clients chose (closed with the server).
    fetcher: OutboundFetcher
    # Clients named by the URL of their metadata document (`[client_metadata]`), cached here.
    client_metadata: ClientMetadataDocuments
    client_auth: ClientAuthenticator
    issuer: TokenIssuer
    inspector: TokenInspector
    grants: dict[str, GrantHandler]
    # Counts sign-in and user-code attempts (the policies are in `config.throttle`).
    throttle: Throttle
    pages: BrowserPages
    clock: Callable[[], float]
    owns_storage: bool = True
    # The throttle's Redis store when `[limits] redis_url` is set (closed with the server).
    throttle_redis: RedisThrottleStore | None = None
    # The rate limits of `[limits]` (closed with the server).
    limits: ServerLimits = field(default_factory=lambda: ServerLimits.for_config(LimitsSettings()))
    # Security events counted for the metrics (`observability.counters`).
    counters: SecurityCounters = field(default_factory=SecurityCounters)
    # Verifies the `[token_exchange] issuer`'s tokens (closed with the server); None when unset.
    exchange_verifier: Verifier | None = None
    # DPoP proofs at the token endpoint (RFC 9449); built by `start`.
    dpop: TokenEndpointDPoP | None = None

    @classmethod
    async def start(
        cls,
        config: Config,
        *,
        storage: Storage | None = None,
        clock: Callable[[], float] = time.time,
    ) -> AuthServer:
        """Open storage (unless given), check the secret key, and put the keys on schedule."""
        store: Storage = storage if storage is not None else await open_storage(config)
        secret = ServerSecret(config.secret_key)
        try:
            await check_secret_key(store, secret)
            keys = KeyManager(store, secret, config.keys, clock, audit_store=store)
            await keys.maintain()
        except BaseException:
            if storage is None:
                await store.close()
            raise
        # The limits decide by the store's clock, unless the server runs under another (a test's).
        limits = ServerLimits.for_config(config.limits, clock=None if clock is time.time else clock)
        throttle_redis = _throttle_redis(config, limits.metrics)
        fetcher = OutboundFetcher(config.fetch, limits.limiter)
        client_metadata = ClientMetadataDocuments(
            config.client_metadata,
            fetcher,
            store,
            clock,
            allow_loopback=config.fetch.allow_loopback,
        )
        registry = RegistryCache(
            store, config.http.cache_ttl, clock, client_metadata, profile=config.security.profile
        )
        client_keys = ClientKeys(config.http, fetcher, clock)
        assertions = ClientAssertionVerifier(
            issuer=config.issuer,
            token_endpoint=config.endpoint(ENDPOINT_PATHS["token"]),
            max_lifetime=config.tokens.client_assertion_max_lifetime,
            audience_rule=config.tokens.client_assertion_audience,
            client_keys=client_keys,
            replay=store,
            clock=clock,
        )
        signer = JwtSigner(keys, threads=config.keys.sign_in_threads)
        formats = _access_token_formats(
            config, keys=keys, signer=signer, store=store, secret=secret, clock=clock
        )
        issuer = TokenIssuer(formats, signer, clock)
        targets = UserTargets(
            registry,
            userinfo_url=config.endpoint(ENDPOINT_PATHS["userinfo"]),
            access_token_ttl=config.tokens.default_access_token_ttl,
        )
        counters = SecurityCounters()
        inspector = TokenInspector(
            formats=formats,
            refresh_tokens=store,
            refresh_lifetimes=config.refresh_tokens,
            hash_token=secret.hash_token,
            clock=clock,
        )
        exchange_verifier = await _exchange_verifier(config, clock)
        handlers = _grant_handlers(
            config,
            counters=counters,
            issuer=issuer,
            registry=registry,
            targets=targets,
            store=store,
            secret=secret,
            clock=clock,
        )
        handlers.append(
            TokenExchangeGrant(
                issuer,
                registry,
                ExchangeTokenReader(
                    inspector=inspector,
                    keys=keys,
                    algorithms=config.keys.algorithms,
                    issuer=config.issuer,
                    clock=clock,
                    external=exchange_verifier,
                ),
            )
        )
        return cls(
            config=config,
            storage=store,
            secret=secret,
            keys=keys,
            registry=registry,
            targets=targets,
            client_keys=client_keys,
            fetcher=fetcher,
            client_metadata=client_metadata,
            client_auth=ClientAuthenticator(
                registry,
                secret,
                assertions,
                clock,
                client_metadata,
                profile=config.security.profile,
            ),
            issuer=issuer,
            inspector=inspector,
            grants={h.grant_type: h for h in handlers},
            throttle=Throttle(throttle_redis or store),
            pages=BrowserPages.for_config(config, secret),
            clock=clock,
            owns_storage=storage is None,
            throttle_redis=throttle_redis,
            limits=limits,
            counters=counters,
            exchange_verifier=exchange_verifier,
            dpop=_token_endpoint_dpop(config, limits, store, clock),
        )

    def now(self) -> int:
        """The current time in whole seconds."""
        return int(self.clock())

    @property
    def auth_methods(self) -> list[str]:
        """Client-authentication methods usable at the token endpoint with the grants present."""
        public = any(h.allows_public_clients for h in self.grants.values())
        return [m for m in AUTH_METHODS if m != "none" or public]

    async def close(self) -> None:
        """Release connections (the storage only if this server opened it)."""
        await self.fetcher.aclose()
        if self.throttle_redis is not None:
            await self.throttle_redis.aclose()
        await self.limits.aclose()
        if self.exchange_verifier is not None:
            await self.exchange_verifier.aclose()
        self.issuer.close()
        if self.owns_storage:
            await self.storage.close()


async def _exchange_verifier(config: Config, clock: Callable[[], float]) -> Verifier | None:
    """The verifier of `[token_exchange] issuer`'s JWTs (its keys fetched now, then refreshed in
    the background; a failed fetch leaves it not ready and is logged), or None when unset."""
    external = config.token_exchange.external_issuer(config.issuer)
    if external is None:
        return None
    verifier = Verifier(VerifierConfig(issuers=(external,)), clock=clock)
    await verifier.start()
    return verifier


def _token_endpoint_dpop(
    config: Config, limits: ServerLimits, store: Storage, clock: Callable[[], float]
) -> TokenEndpointDPoP:
    """The token endpoint's DPoP check; proofs' `jti`s are claimed in Redis when `[limits]` has
    one, else in the database (either way shared by every process)."""
    replay: ClaimStore = DatabaseClaims(store, clock)
    if config.limits.redis_url is not None:
        replay = limits.limiter.store
    return TokenEndpointDPoP(
        config.dpop,
        token_endpoint=config.endpoint(ENDPOINT_PATHS["token"]),
        par_endpoint=config.endpoint(ENDPOINT_PATHS["pushed_authorization_request"]),
        replay=replay,
        secret_key=config.secret_key,
        clock=clock,
        namespace=config.limits.namespace,
    )


def _throttle_redis(config: Config, metrics: LimiterMetrics) -> RedisThrottleStore | None:
    """The throttle's Redis store when `[limits] redis_url` is set; else None (the database)."""
    limits = config.limits
    if limits.redis_url is None:
        return None
    # redis (and what it pulls in, OpenTelemetry among it) loads only when Redis is configured.
    from authgate.server.storage.redis_throttle import RedisThrottleStore  # noqa: PLC0415

    return RedisThrottleStore(
        limits.redis_url,
        ttl=config.throttle.longest_memory,
        namespace=limits.namespace,
        timeout=limits.timeout,
        retry_interval=limits.retry_interval,
        on_store_failure=limits.throttle.on_store_failure,
        metrics=metrics,  # one set of counters for the server's limits and its Redis
    )


def _access_token_formats(
    config: Config,
    *,
    keys: KeyManager,
    signer: JwtSigner,
    store: Storage,
    secret: ServerSecret,
    clock: Callable[[], float],
) -> dict[TokenFormat, AccessTokenFormat]:
    """Both access-token formats, shared by the issuer and the inspector."""
    return {
        "jwt": JwtAccessTokens(
            issuer=config.issuer,
            algorithms=config.keys.algorithms,
            keys=keys,
            signer=signer,
            revocations=store,
            grant_tokens=store,
            clock=clock,
        ),
        "opaque": OpaqueAccessTokens(store, hash_token=secret.hash_token, clock=clock),
    }


def _grant_handlers(
    config: Config,
    *,
    issuer: TokenIssuer,
    registry: RegistryCache,
    targets: UserTargets,
    store: Storage,
    secret: ServerSecret,
    clock: Callable[[], float],
    counters: SecurityCounters,
) -> list[GrantHandler]:
    """One handler per grant type the server implements."""

    def now() -> int:
        return int(clock())

    hash_token = secret.hash_token
    tokens = UserTokens(
        issuer,
        users=registry,
        targets=targets,
        families=store,
        hash_token=hash_token,
        now=now,
        issuer_url=config.issuer,
        id_token_ttl=config.tokens.id_token_lifetime,
    )
    return [
        ClientCredentialsGrant(issuer, registry),
        AuthorizationCodeGrant(tokens, codes=store, revoker=store, hash_token=hash_token, now=now),
        RefreshTokenGrant(
            tokens,
            families=store,
            revoker=store,
            replays=secret.refresh_replays,
            policy=config.refresh_tokens,
            hash_token=hash_token,
            now=now,
            audit_store=store,
            counters=counters,
        ),
        DeviceCodeGrant(tokens, devices=store, hash_token=hash_token, now=now),
    ]
