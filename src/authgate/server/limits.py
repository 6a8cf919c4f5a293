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

from authgate.limits import Decision, Limit, Limiter, LimiterMetrics, Refusal, rate_limit_headers
from authgate.limits.keys import KeyPart, address_part
from authgate.limits.limiter import AdmitPlan, Ask
from authgate.server.config import LimitsSettings
from authgate.server.lockouts import ClientAuthLimits, admitted, lockout_for_settings

__all__ = ["ADDRESS_LIMITS", "CALLER_LIMITS", "ServerLimits"]

# Plans of `client_succeeded` kept per (limit, ids, address, public): bounded in count and, since
# only short values are kept, in size (as the limiter's key cache).
_PLAN_CACHE_SIZE = 4096
_PLAN_CACHE_MAX_CHARS = 512
_PlanKey = tuple[str | None, str | None, str, str, bool]

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
    _plans: dict[_PlanKey, AdmitPlan | None] = field(default_factory=dict, repr=False)

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

    async def client_succeeded(
        self,
        limit: str | None,
        secret_client_id: str | None,
        client_id: str,
        address: str,
        *,
        public: bool = False,
    ) -> tuple[Refusal | None, list[Decision]]:
        """After a successful client authentication: `ClientAuthLimits.succeeded` with the
        per-caller limit `limit` (`caller_limit`; None: none), in one store operation.
        `secret_client_id` is the id named with a client secret (None for other methods). The
        store keys are built once per caller and address and kept (a client comes back from
        the same address request after request)."""
        cache_key = (limit, secret_client_id, client_id, address, public)
        plans = self._plans
        if cache_key in plans:
            plan = plans[cache_key]
        else:
            hits = self.caller_limit(limit, client_id, address, public=public) if limit else []
            plan = self.client_auth.plan(secret_client_id, address, hits)
            if len(client_id) + len(secret_client_id or "") + len(address) <= _PLAN_CACHE_MAX_CHARS:
                if len(plans) >= _PLAN_CACHE_SIZE:
                    plans.clear()
                plans[cache_key] = plan
        if plan is None:
            return None, []
        # `ClientAuthLimits.admit` inline: no coroutine of its own when memory answers at once.
        answer = self.limiter.admit_planned_nowait(plan)
        if answer is None:  # a store with I/O (Redis): one call
            answer = await self.limiter.admit_planned(plan)
        return admitted(answer)

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
