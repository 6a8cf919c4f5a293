"""The parts the user-facing flows share, built once per process: the flow stores, page rendering,
browser sessions and CSRF tokens, throttling and the client address behind trusted proxies,
pending-request tickets, sealing of refresh replays (`ServerSecret.refresh_replays`), and the
configuration with the flows' policies.

Keys: each purpose (CSRF tokens, tickets, sealed refresh responses) gets its own key derived from
the server's secret key (`secret_key.derive_key`, HKDF), so no key serves two purposes and every
process sharing a database derives the same ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from authgate.http_forwarding import TrustedProxies
from authgate.server.config import Config
from authgate.server.flows.pages import PageRenderer
from authgate.server.flows.pending_requests import PendingRequests
from authgate.server.flows.sessions import CsrfTokens, SessionCookie, session_cookie
from authgate.server.flows.throttle import Throttle
from authgate.server.paths import ENDPOINT_PATHS, STATIC_PATH
from authgate.server.secret_key import Sealer, ServerSecret, derive_key
from authgate.server.storage.protocols import FlowStorage, UserStore
from authgate.server.storage.registry_cache import RegistryCache
from authgate.server.targets.user_targets import UserTargets

__all__ = ["FlowServices"]


@dataclass(slots=True)
class FlowServices:
    """Everything the browser endpoints and the user grants share."""

    config: Config
    stores: FlowStorage
    users: UserStore
    # Clients, APIs and users by id, cached for `http.cache_ttl` (`RegistryCache`).
    registry: RegistryCache
    renderer: PageRenderer
    csrf: CsrfTokens
    cookie: SessionCookie
    throttle: Throttle
    pending: PendingRequests
    # `ServerSecret.refresh_replays`: seals the token response kept for a refresh replay.
    replays: Sealer
    targets: UserTargets
    # `http.trusted_proxies`: whose X-Forwarded-For names the client address.
    proxies: TrustedProxies
    # The server's keyed hash of codes, tokens, session ids and user codes (`ServerSecret`).
    hash_token: Callable[[str], str]
    clock: Callable[[], float]

    @classmethod
    def build(
        cls,
        config: Config,
        *,
        stores: FlowStorage,
        users: UserStore,
        registry: RegistryCache,
        secret: ServerSecret,
        clock: Callable[[], float],
    ) -> FlowServices:
        """Wire the services for `config`."""
        return cls(
            config=config,
            stores=stores,
            users=users,
            registry=registry,
            renderer=PageRenderer(
                static_url=config.endpoint(STATIC_PATH),
                template_dirs=config.pages.template_dirs,
                site_name=config.pages.site_name,
            ),
            csrf=CsrfTokens(secret.csrf_key),
            cookie=session_cookie(config.issuer),
            throttle=Throttle(stores),
            pending=PendingRequests(derive_key(config.secret_key, b"authgate pending request v1")),
            replays=secret.refresh_replays,
            targets=UserTargets(
                registry,
                userinfo_url=config.endpoint(ENDPOINT_PATHS["userinfo"]),
                access_token_ttl=config.tokens.default_access_token_ttl,
            ),
            proxies=TrustedProxies(config.http.trusted_proxies),
            hash_token=secret.hash_token,
            clock=clock,
        )

    def endpoint(self, path: str) -> str:
        """The absolute URL of one of this server's endpoints or pages."""
        return self.config.endpoint(path)

    def now(self) -> int:
        """The current time in whole seconds."""
        return int(self.clock())
