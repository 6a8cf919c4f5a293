"""The JWKS cache's I/O shell: fetches one issuer's key set when `JWKSState` says so (RFC 7517 §5,
RFC 8414 §3 discovery, RFC 9111 §4.2 freshness, RFC 5861 §4 stale-if-error).

`JWKSCache.keys_for(kid)` is what a verification awaits. It returns the key set to verify with, or
raises `TokenRejected` (the `kid` is confirmed unknown) or `VerifierUnavailable` (503: no held key
can decide and none can be fetched now). All fetches of one issuer, foreground, background or caused
by an unknown `kid`, share one single-flight call. `start()` fetches once and then keeps a
background task that refreshes before expiry and retries with back-off after failures.

Remote key sets may hold only asymmetric signature keys: `oct` members and `use: enc` members are
dropped before import, so a JWKS can never supply an HMAC secret (RFC 8725 §3.2).
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from typing import Any, Protocol

from authgate.jose.errors import InvalidKey
from authgate.jose.jwk import JWK
from authgate.jose.jwkset import JWKSet
from authgate.verifier.config import IssuerConfig
from authgate.verifier.discovery import discover
from authgate.verifier.errors import Reason, TokenRejected, VerifierUnavailable
from authgate.verifier.http_caching import freshness_lifetime
from authgate.verifier.http_fetch import FetchError, HttpFetcher
from authgate.verifier.jwks_state import JWKSState, KeyStatus, KidVerdict
from authgate.verifier.metrics import IssuerMetrics
from authgate.verifier.single_flight import SingleFlight

__all__ = ["Clock", "IssuerStatus", "JWKSCache", "KeySource", "StaticKeys", "parse_jwks"]

logger = logging.getLogger("authgate.verifier")

_MIN_LOOP_SLEEP = 0.05


class Clock(Protocol):
    def __call__(self) -> float: ...


@dataclass(frozen=True, slots=True)
class IssuerStatus:
    """A snapshot of one issuer's keys, for readiness checks, logs and metrics."""

    issuer: str
    status: KeyStatus
    ready: bool
    keys: int
    key_age: float | None
    fresh_until: float | None
    failures: int
    last_error: str | None
    jwks_uri: str | None


class KeySource(Protocol):
    """Where an issuer's verification keys come from."""

    async def keys_for(self, kid: str | None) -> JWK | JWKSet: ...
    async def start(self, *, background: bool = True) -> None: ...
    async def aclose(self) -> None: ...
    def snapshot(self) -> IssuerStatus: ...


def parse_jwks(document: dict[str, Any]) -> JWKSet:
    """Import a fetched JWKS: asymmetric signature keys only; at least one must be usable."""
    members = document.get("keys")
    if not isinstance(members, list):
        raise FetchError('a JWKS must be an object with a "keys" array')
    wanted = [
        m
        for m in members
        if isinstance(m, dict) and m.get("kty") != "oct" and m.get("use", "sig") == "sig"
    ]
    try:
        keys = JWKSet.from_dict({"keys": wanted})
    except InvalidKey as exc:
        raise FetchError(f"unusable JWKS: {exc}") from None
    if len(keys) == 0:
        raise FetchError("the JWKS holds no usable signature key")
    return keys


class StaticKeys:
    """One configured key (an HMAC secret): always ready, never fetched. The token's `kid`, if
    any, is not compared: there is only one key, and it is bound to the issuer's algorithms."""

    def __init__(self, issuer: str, key: JWK) -> None:
        self._issuer = issuer
        self._key = key

    async def keys_for(self, kid: str | None) -> JWK:
        return self._key

    async def start(self, *, background: bool = True) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def snapshot(self) -> IssuerStatus:
        return IssuerStatus(self._issuer, KeyStatus.FRESH, True, 1, None, None, 0, None, None)


class JWKSCache:
    """One issuer's remote key set, fetched from its configured or discovered `jwks_uri`."""

    def __init__(
        self,
        config: IssuerConfig,
        fetcher: HttpFetcher,
        *,
        clock: Clock,
        metrics: IssuerMetrics,
    ) -> None:
        self.config = config
        self.state = JWKSState(config.jwks)
        self._fetcher = fetcher
        self._clock = clock
        self._metrics = metrics
        self._jwks_uri = config.jwks_uri
        self._flight: SingleFlight[str, bool] = SingleFlight()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, *, background: bool = True) -> None:
        """Fetch once (failures are logged, not raised), then refresh in the background."""
        if self.state.keys is None:
            await self.refresh()
        if background and self._task is None:
            self._task = asyncio.create_task(
                self._refresh_loop(), name=f"jwks:{self.config.issuer}"
            )

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._flight.cancel_all()

    async def _refresh_loop(self) -> None:
        while True:
            delay = self.state.next_refresh_at() - self._clock()
            await asyncio.sleep(max(delay, _MIN_LOOP_SLEEP))
            if self.state.next_refresh_at() <= self._clock():
                await self.refresh()

    def snapshot(self) -> IssuerStatus:
        now = self._clock()
        state = self.state
        status = state.status(now)
        return IssuerStatus(
            issuer=self.config.issuer,
            status=status,
            ready=state.usable_keys(now) is not None,
            keys=len(state.keys) if state.keys is not None else 0,
            key_age=state.key_age(now),
            fresh_until=state.fresh_until if state.keys is not None else None,
            failures=state.failures,
            last_error=state.last_error,
            jwks_uri=self._jwks_uri,
        )

    # -- fetching ----------------------------------------------------------------------------

    async def refresh(self) -> bool:
        """Fetch now, or join the fetch in flight. Returns whether it succeeded."""
        return await self._flight.run("jwks", self._fetch)

    async def _fetch(self) -> bool:
        started = self._clock()
        self._metrics.jwks_fetches += 1
        try:
            uri = await self._resolve_jwks_uri()
            response = await self._fetcher.get_json(uri, self.config.jwks.fetch)
            keys = parse_jwks(response.body)
        except Exception as exc:  # noqa: BLE001 - every failure must leave the held keys in place
            self._fail(exc if isinstance(exc, FetchError) else FetchError(type(exc).__name__))
            return False
        now = self._clock()
        policy = self.config.jwks
        lifetime = freshness_lifetime(
            response.headers,
            now,
            floor=policy.min_ttl,
            ceiling=policy.max_ttl,
            default=policy.default_ttl,
        )
        recovered = self.state.failures > 0
        self.state.record_success(keys, started=started, now=now, lifetime=lifetime)
        if recovered:
            logger.info("jwks fetch recovered", extra={"issuer": self.config.issuer})
        return True

    async def _resolve_jwks_uri(self) -> str:
        """The configured `jwks_uri`, or the one in the issuer's metadata (discovered once)."""
        if self._jwks_uri is None:
            config = self.config
            metadata = await discover(
                self._fetcher, config.issuer, config.jwks.fetch, config.discovery
            )
            if metadata.jwks_uri is None:
                raise FetchError("the issuer's metadata has no jwks_uri")
            self._jwks_uri = metadata.jwks_uri
        return self._jwks_uri

    def _fail(self, exc: FetchError) -> None:
        now = self._clock()
        self.state.record_failure(str(exc), now=now)
        self._metrics.jwks_fetch_failures += 1
        status = self.state.status(now)
        detail = {
            KeyStatus.FRESH: "held keys are still fresh",
            KeyStatus.STALE: "serving stale keys (stale-if-error) until "
            f"{self.state.fresh_until + self.config.jwks.stale_grace:.0f}",
            KeyStatus.EXPIRED: "no usable keys: tokens from this issuer get 503",
            KeyStatus.EMPTY: "no keys yet: tokens from this issuer get 503",
        }[status]
        logger.warning(
            "jwks fetch failed: %s; %s",
            exc,
            detail,
            extra={
                "issuer": self.config.issuer,
                "key_status": str(status),
                "failures": self.state.failures,
            },
        )

    # -- lookups -----------------------------------------------------------------------------

    async def keys_for(self, kid: str | None) -> JWKSet:
        """The key set that should hold `kid` (any held set when the token has no `kid`)."""
        state = self.state
        now = self._clock()
        if state.wants_foreground_fetch(now):
            await self.refresh()
            now = self._clock()
        keys = state.usable_keys(now)
        if keys is None:
            raise VerifierUnavailable(
                self.config.issuer,
                retry_after=_ceil(state.retry_after(now)),
                debug=f"no usable keys: {state.last_error}",
            )
        if kid is None or keys.get(kid) is not None:
            self._count_stale(now)
            return keys
        return await self._unknown_kid(kid, now)

    async def _unknown_kid(self, kid: str, seen: float) -> JWKSet:
        self._metrics.unknown_kids += 1
        state = self.state
        now = seen
        for _ in range(2):
            verdict = state.kid_verdict(kid, now)
            if verdict is KidVerdict.REMEMBERED:
                raise TokenRejected(Reason.UNKNOWN_KID, debug="kid recently confirmed absent")
            if self._flight.in_flight("jwks"):
                await self.refresh()
            elif verdict is KidVerdict.FETCH:
                state.begin_kid_fetch(now)
                self._metrics.unknown_kid_fetches += 1
                await self.refresh()
            else:
                raise VerifierUnavailable(
                    self.config.issuer,
                    retry_after=_ceil(state.kid_cooldown_left(now)),
                    debug="unknown kid during the refetch cooldown",
                )
            now = self._clock()
            keys = state.usable_keys(now)
            if keys is not None and keys.get(kid) is not None:
                self._count_stale(now)
                return keys
            if not state.last_attempt_ok:
                raise VerifierUnavailable(
                    self.config.issuer,
                    retry_after=_ceil(state.kid_cooldown_left(now)),
                    debug=f"refetch for an unknown kid failed: {state.last_error}",
                )
            if state.confirm_unknown(kid, seen=seen, now=now):
                break
        raise TokenRejected(Reason.UNKNOWN_KID, debug="kid not in the issuer's JWKS")

    def _count_stale(self, now: float) -> None:
        if self.state.status(now) is KeyStatus.STALE:
            self._metrics.stale_keys_served += 1


def _ceil(seconds: float) -> int:
    return max(1, math.ceil(seconds))
