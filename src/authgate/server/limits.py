"""The authorization server's rate limits (`[limits]`, docs/limits.md), decided by one
`authgate.limits.Limiter` per process: in this process by default, in Redis with `redis_url`
(then shared by every process and machine on it).

Built: `token`, POST /token per authenticated client (counted after client authentication, so
nobody can spend another client's quota by naming it; a public client, which only names itself,
per id and client address); `registration`, POST /register in open mode per caller address. The
sign-in and user-code throttles are
`flows.throttle` (a growing delay per failure, in Redis or the database; `storage.redis_throttle`).

The counters (`metrics`) are served by the server's `/metrics` (`observability.metrics`).
"""

from __future__ import annotations

from dataclasses import dataclass

from authgate.limits import Decision, Limit, Limiter, LimiterMetrics
from authgate.limits.keys import address_part
from authgate.server.config import LimitsSettings

__all__ = ["ServerLimits"]


@dataclass(slots=True)
class ServerLimits:
    """The limiter and the limits the configuration turns on."""

    limiter: Limiter
    token: Limit | None
    # POST /register in open mode, per caller address (`registration_request`).
    registration: Limit | None = None

    @classmethod
    def for_config(cls, settings: LimitsSettings) -> ServerLimits:
        limiter = Limiter.from_url(
            settings.redis_url or "memory://",
            timeout=settings.timeout,
            namespace=settings.namespace,
            retry_interval=settings.retry_interval,
        )
        return cls(
            limiter,
            settings.token.limit("token"),
            registration=settings.registration.limit("registration"),
        )

    @property
    def metrics(self) -> LimiterMetrics:
        """The counters of every limit and of the store (`LimitsCollector` reads them)."""
        return self.limiter.metrics

    async def token_request(self, client_id: str, public_address: str | None) -> list[Decision]:
        """The decisions for one POST /token of the authenticated `client_id` (empty when its
        limit is off). A public client only names itself, so it is counted per id and address
        (`public_address`): anyone may name it, and must not spend its users' quota."""
        if self.token is None:
            return []
        key: tuple[str, ...] = ("client", client_id)
        if public_address is not None:
            key = ("public", client_id, address_part(public_address))
        decision = self.limiter.hit_nowait(self.token, *key)
        if decision is None:  # a store with I/O (Redis)
            decision = await self.limiter.hit(self.token, *key)
        return [decision]

    async def registration_request(self, address: str) -> list[Decision]:
        """The decisions for one open POST /register from the caller at `address` (empty when
        the limit is off): nobody is authenticated, so the caller's address is the key."""
        if self.registration is None:
            return []
        key = ("address", address_part(address))
        decision = self.limiter.hit_nowait(self.registration, *key)
        if decision is None:  # a store with I/O (Redis)
            decision = await self.limiter.hit(self.registration, *key)
        return [decision]

    async def aclose(self) -> None:
        await self.limiter.aclose()
