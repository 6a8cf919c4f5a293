"""`AuthServer`: the parts of a running authorization server, built once and shared by the
endpoints (and by the user-facing flows that build on it).

Startup checks the schema (SQLite is upgraded in place; PostgreSQL must be upgraded with `authgate
db upgrade`), checks that the secret key is the one the database was set up with, and brings the
signing keys on schedule before the first request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from authgate.server.clients.assertions import ClientAssertionVerifier
from authgate.server.clients.authentication import ClientAuthenticator
from authgate.server.clients.jwks import ClientKeys
from authgate.server.config import Config
from authgate.server.flow_services import FlowServices
from authgate.server.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    DeviceCodeGrant,
    GrantHandler,
    RefreshTokenGrant,
    UserTokens,
)
from authgate.server.keys import KeyManager
from authgate.server.models import AUTH_METHODS, TokenFormat
from authgate.server.paths import ENDPOINT_PATHS
from authgate.server.secret_key import ServerSecret
from authgate.server.storage import Database, SqlStorage, Storage
from authgate.server.storage.migrate import check_schema, upgrade
from authgate.server.storage.registry_cache import RegistryCache
from authgate.server.storage.retention import Retention
from authgate.server.tokens.formats import AccessTokenFormat
from authgate.server.tokens.inspection import TokenInspector
from authgate.server.tokens.issuer import TokenIssuer
from authgate.server.tokens.jwt_format import JwtAccessTokens
from authgate.server.tokens.opaque_format import OpaqueAccessTokens
from authgate.server.tokens.signing import JwtSigner

__all__ = ["AuthServer", "SecretKeyMismatchError", "open_storage", "retention_for"]

_CHECK_SETTING = "secret_key_check"


class SecretKeyMismatchError(RuntimeError):
    """The database was set up with another secret key; its signing keys cannot be opened."""


async def open_storage(config: Config, *, migrate_sqlite: bool = True) -> SqlStorage:
    """Connect to the configured database and check (or, for SQLite, bring) its schema."""
    settings = config.database
    db = Database(
        config.database_url,
        pool_size=settings.pool_size,
        lock_timeout=settings.lock_timeout,
        statement_timeout=settings.statement_timeout,
        pool_timeout=settings.pool_timeout,
    )
    try:
        if db.is_sqlite and migrate_sqlite:
            await upgrade(db)
        await check_schema(db)
    except BaseException:
        await db.close()
        raise
    return SqlStorage(db, retention=retention_for(config))


def retention_for(config: Config) -> Retention:
    """How long the stores keep records, from `config`'s refresh, session and throttle policies."""
    return Retention(
        refresh_idle=config.refresh_tokens.idle_lifetime,
        refresh_absolute=config.refresh_tokens.absolute_lifetime,
        session_idle=config.sessions.idle_timeout,
        session_absolute=config.sessions.absolute_lifetime,
        throttle_memory=config.throttle.longest_memory,
    )


async def check_secret_key(storage: Storage, secret: ServerSecret) -> None:
    """Raise `SecretKeyMismatchError` unless `secret` is the key this database knows."""
    stored = await storage.get_or_set_setting(_CHECK_SETTING, secret.check_value)
    if stored != secret.check_value:
        raise SecretKeyMismatchError(
            "AUTHGATE_SECRET_KEY (or the key file) differs from the one this database was set up "
            "with; use the same secret key for every process"
        )


@dataclass(slots=True)
class AuthServer:
    """Everything the endpoints need, wired together."""

    config: Config
    storage: Storage
    secret: ServerSecret
    keys: KeyManager
    registry: RegistryCache
    client_keys: ClientKeys
    client_auth: ClientAuthenticator
    issuer: TokenIssuer
    inspector: TokenInspector
    grants: dict[str, GrantHandler]
    clock: Callable[[], float]
    flows: FlowServices
    owns_storage: bool = True

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
            keys = KeyManager(store, secret, config.keys, clock)
            await keys.maintain()
        except BaseException:
            if storage is None:
                await store.close()
            raise
        registry = RegistryCache(store, config.http.cache_ttl, clock)
        client_keys = ClientKeys(config.http, clock)
        assertions = ClientAssertionVerifier(
            issuer=config.issuer,
            token_endpoint=config.endpoint(ENDPOINT_PATHS["token"]),
            max_lifetime=config.tokens.client_assertion_max_lifetime,
            audience_rule=config.tokens.client_assertion_audience,
            client_keys=client_keys,
            replay=store,
            clock=clock,
        )
        signer = JwtSigner(keys)
        formats: dict[TokenFormat, AccessTokenFormat] = {
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
        issuer = TokenIssuer(formats, signer, clock)
        flows = FlowServices.build(
            config,
            stores=store,
            users=store,
            registry=registry,
            secret=secret,
            clock=clock,
        )
        tokens = UserTokens(
            issuer,
            flows,
            issuer_url=config.issuer,
            id_token_ttl=config.tokens.id_token_lifetime,
        )
        handlers: list[GrantHandler] = [
            ClientCredentialsGrant(issuer, registry),
            AuthorizationCodeGrant(tokens, flows),
            RefreshTokenGrant(tokens, flows),
            DeviceCodeGrant(tokens, flows),
        ]
        return cls(
            config=config,
            storage=store,
            secret=secret,
            keys=keys,
            registry=registry,
            client_keys=client_keys,
            client_auth=ClientAuthenticator(registry, secret, assertions, clock),
            issuer=issuer,
            inspector=TokenInspector(
                formats=formats,
                refresh_tokens=store,
                refresh_lifetimes=config.refresh_tokens,
                hash_token=secret.hash_token,
                clock=clock,
            ),
            grants={h.grant_type: h for h in handlers},
            clock=clock,
            flows=flows,
            owns_storage=storage is None,
        )

    @property
    def auth_methods(self) -> list[str]:
        """Client-authentication methods usable at the token endpoint with the grants present."""
        public = any(h.allows_public_clients for h in self.grants.values())
        return [m for m in AUTH_METHODS if m != "none" or public]

    async def close(self) -> None:
        """Release connections (the storage only if this server opened it)."""
        await self.client_keys.close()
        self.issuer.close()
        if self.owns_storage:
            await self.storage.close()
