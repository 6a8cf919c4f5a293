"""The authorization server's rate limits (`[limits]`, docs/limits.md), decided by one
`authgate.limits.Limiter` per process: in this process by default, in Redis with `redis_url`
(then shared by every process and machine on it).

Built:
- `token`: POST /token per authenticated client (counted after client authentication, so nobody
  can spend another client's quota by naming it; a public client, which only names itself, per id
  and client address);
- per caller (the same key as `token`): `device_authorization`, `introspection`, `revocation`.
  These and `token` are counted in the store operation that checks the lockouts after client
  authentication (`caller_limit`, `ClientAuthLimits.succeeded`: one Redis call per request);
  `caller_request` counts one alone;
- per client address (`address_request`): `authorize`, `consent`, `device` (the pages), and
  `registration` (POST /register in open mode);
- lockouts after failed client authentication, per client id and per address
  (`client_auth`, `authgate.server.lockouts`).
The sign-in and user-code throttles are `flows.throttle` (a growing delay per failure, in Redis or
the database; `storage.redis_throttle`).

`headers`: the RateLimit fields go on refusals only unless `[limits] headers = "all"` (as the
gate: building them costs every admitted request, and most clients never read them).

The counters (`metrics`) are served by the server's `/metrics` (`observability.metrics`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from authgate.limits import Decision, Limit, Limiter, LimiterMetrics, rate_limit_headers
from authgate.limits.keys import KeyPart, address_part
from authgate.limits.limiter import Ask
from authgate.server.config import LimitsSettings
from authgate.server.lockouts import ClientAuthLimits, lockout_for_settings

__all__ = ["ADDRESS_LIMITS", "CALLER_LIMITS", "ServerLimits"]

# The limits counted per client address, and per caller (`[limits.NAME]`).
ADDRESS_LIMITS = ("authorize", "consent", "device", "registration")
CALLER_LIMITS = ("device_authorization", "introspection", "revocation")


@dataclass(slots=True)
class ServerLimits:
    """The limiter and the limits the configuration turns on."""

    limiter: Limiter
    token: Limit | None
    client_auth: ClientAuthLimits
    limits: dict[str, Limit] = field(default_factory=dict)
    all_headers: bool = False

    @classmethod
    def for_config(
        cls, settings: LimitsSettings, *, clock: Callable[[], float] | None = None
    ) -> ServerLimits:
        """The limits of `settings`. `clock` (seconds): the time the store decides by, for a
        server run under a test's clock; by default the store's own (monotonic, or Redis's)."""
        limiter = Limiter.from_url(
            settings.redis_url or "memory://",
            timeout=settings.timeout,
            namespace=settings.namespace,
            retry_interval=settings.retry_interval,
            clock_us=None if clock is None else (lambda: int(clock() * 1_000_000)),
        )
        limits = {}
        for name in (*ADDRESS_LIMITS, *CALLER_LIMITS):
            limit = getattr(settings, name).limit(name)
            if limit is not None:
                limits[name] = limit
        client_auth = ClientAuthLimits(
            limiter,
            lockout_for_settings("client_auth", settings.client_auth),
            lockout_for_settings("client_auth_address", settings.client_auth_address),
        )
        return cls(
            limiter,
            settings.token.limit("token"),
            client_auth,
            limits,
            all_headers=settings.headers == "all",
        )

    @property
    def metrics(self) -> LimiterMetrics:
        """The counters of every limit and of the store (`LimitsCollector` reads them)."""
        return self.limiter.metrics

    async def caller_request(
        self, name: str, client_id: str | None, address: str, *, public: bool = False
    ) -> list[Decision]:
        """The decisions for one request to the endpoint whose limit (`CALLER_LIMITS`, or another
        configured per caller) is `name`: per authenticated client id, a public client per id and
        address, no client per address. Empty when the limit is off."""
        if client_id is None:
            return await self.address_request(name, address)
        key = _caller(client_id, address if public else None)
        return await self._hit(self.limits.get(name), key)

    def caller_limit(
        self, name: str, client_id: str, address: str, *, public: bool = False
    ) -> list[Ask]:
        """The limit `name` (`token` or one of `limits`) with the key of an authenticated caller
        (`caller_request`), for `ClientAuthLimits.succeeded`: empty when the limit is off."""
        limit = self.token if name == "token" else self.limits.get(name)
        if limit is None:
            return []
        return [(limit, _caller(client_id, address if public else None))]

    async def address_request(self, name: str, address: str) -> list[Decision]:
        """The decisions for one request counted per client address under the limit `name`
        (`ADDRESS_LIMITS`). Empty when the limit is off."""
        return await self._hit(self.limits.get(name), ("address", address_part(address)))

    def admitted_headers(self, decisions: list[Decision]) -> dict[str, str]:
        """The RateLimit fields for an admitted request: none unless `headers = "all"`."""
        if not self.all_headers or not decisions:
            return {}
        return dict(rate_limit_headers(decisions))

    async def _hit(self, limit: Limit | None, key: tuple[KeyPart, ...]) -> list[Decision]:
        if limit is None:
            return []
        decision = self.limiter.hit_nowait(limit, *key)
        if decision is None:  # a store with I/O (Redis)
            decision = await self.limiter.hit(limit, *key)
        return [decision]

    async def aclose(self) -> None:
        await self.limiter.aclose()


def _caller(client_id: str, public_address: str | None) -> tuple[KeyPart, ...]:
    if public_address is None:
        return ("client", client_id)
    return ("public", client_id, address_part(public_address))
