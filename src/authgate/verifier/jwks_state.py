"""The JWKS cache's decisions, without I/O: when to fetch, which keys to use, when to give up
(RFC 7517 §5, RFC 9111 §4.2 freshness, RFC 5861 §4 stale-if-error, OpenID Connect Core §10.1.1
rotation by `kid`).

`JWKSState` holds one issuer's key set and its timestamps. Every method takes `now` (seconds, from
the injected clock) and none does I/O; `authgate.verifier.jwks_cache` performs the fetches it asks
for and reports the results back. The states are:

- EMPTY: no key set was ever obtained (readiness is false);
- FRESH: within the lifetime that the response headers gave, clamped by the policy;
- STALE: past that lifetime but within `stale_grace` of it; held keys still verify while refreshes
  fail, and every use is counted as a stale key served;
- EXPIRED: past the grace period; the keys are no longer used and the issuer's tokens get 503.

Unknown `kid`s: a token whose `kid` is not held may cause one refetch, at most once per
`unknown_kid_cooldown`; `kid`s that a fetch started after they were first seen did not contain
are remembered for `unknown_kid_ttl` (at most `max_unknown_kids`), so repeating them never causes
fetches.

Two clocks bound the fetches. The back-off after failures (`retry_at`, `retry_initial` doubling up
to `retry_max`) paces the background task and the foreground fetches of requests that hold no
fresh key. The cooldown (`kid_fetch_at` + `unknown_kid_cooldown`) alone paces the refetches caused
by unknown `kid`s, back-off or not: it is already their rate bound, so during an outage the issuer
sees at most one kid-driven attempt per cooldown besides the backed-off retries, and once it
answers again a new `kid` is fetched at most one cooldown later (not up to `retry_max`).
"""

from __future__ import annotations

from collections import OrderedDict
from enum import StrEnum

from authgate.jose.jwkset import JWKSet
from authgate.verifier.config import JWKSCachePolicy

__all__ = ["JWKSState", "KeyStatus", "KidVerdict"]


class KeyStatus(StrEnum):
    EMPTY = "empty"
    FRESH = "fresh"
    STALE = "stale"
    EXPIRED = "expired"


class KidVerdict(StrEnum):
    """What to do about a `kid` that the held set does not contain."""

    REMEMBERED = "remembered"  # confirmed absent recently: reject without fetching
    FETCH = "fetch"  # refetch now (the caller marks it with `begin_kid_fetch`)
    COOLDOWN = "cooldown"  # a kid-driven fetch happened too recently: cannot decide now


class JWKSState:
    """One issuer's key set and the timestamps that drive its lifecycle."""

    def __init__(self, policy: JWKSCachePolicy) -> None:
        self.policy = policy
        self.keys: JWKSet | None = None
        self.fetched_at: float | None = None  # when the held set was obtained
        self.fresh_until: float = float("-inf")
        self.failures = 0  # consecutive failed fetches
        self.last_error: str | None = None
        self.last_attempt_ok = True
        self.retry_at = float("-inf")  # no fetch attempt before this (back-off after failures)
        self.kid_fetch_at = float("-inf")  # start of the last fetch caused by an unknown kid
        self._last_success_started = float("-inf")
        self._unknown: OrderedDict[str, float] = OrderedDict()  # kid -> remembered until

    # -- status -----------------------------------------------------------------------------

    def status(self, now: float) -> KeyStatus:
        if self.keys is None:
            return KeyStatus.EMPTY
        if now < self.fresh_until:
            return KeyStatus.FRESH
        if now < self.fresh_until + self.policy.stale_grace:
            return KeyStatus.STALE
        return KeyStatus.EXPIRED

    def usable_keys(self, now: float) -> JWKSet | None:
        """The key set to verify with, or None when no held set may decide."""
        return self.keys if self.status(now) in (KeyStatus.FRESH, KeyStatus.STALE) else None

    def key_age(self, now: float) -> float | None:
        return None if self.fetched_at is None else max(0.0, now - self.fetched_at)

    # -- fetch scheduling --------------------------------------------------------------------

    def may_fetch(self, now: float) -> bool:
        """False while backing off after a failure (unknown-`kid` refetches ignore this)."""
        return now >= self.retry_at

    def wants_foreground_fetch(self, now: float) -> bool:
        """Whether a request should wait for a fetch before verifying (no fresh keys held)."""
        return self.status(now) != KeyStatus.FRESH and self.may_fetch(now)

    def next_refresh_at(self) -> float:
        """When the background task should fetch next."""
        if self.failures:
            return self.retry_at
        if self.keys is None or self.fetched_at is None:
            return float("-inf")
        lifetime = self.fresh_until - self.fetched_at
        return self.fetched_at + lifetime * (1.0 - self.policy.refresh_ahead)

    def retry_after(self, now: float) -> float:
        """Seconds until the next fetch may be attempted (0 when one may start now)."""
        return max(0.0, self.retry_at - now)

    # -- fetch results -----------------------------------------------------------------------

    def record_success(self, keys: JWKSet, *, started: float, now: float, lifetime: float) -> None:
        self.keys = keys
        self.fetched_at = now
        self.fresh_until = now + lifetime
        self.failures = 0
        self.last_error = None
        self.last_attempt_ok = True
        self.retry_at = float("-inf")
        self._last_success_started = max(self._last_success_started, started)
        for kid in [k for k in self._unknown if keys.get(k) is not None]:
            del self._unknown[kid]

    def record_failure(self, error: str, *, now: float) -> None:
        self.failures += 1
        self.last_error = error
        self.last_attempt_ok = False
        backoff = self.policy.retry_initial * 2 ** min(self.failures - 1, 30)
        self.retry_at = now + min(self.policy.retry_max, backoff)

    # -- unknown kids ------------------------------------------------------------------------

    def kid_verdict(self, kid: str | None, now: float) -> KidVerdict:
        if kid is not None:
            until = self._unknown.get(kid)
            if until is not None:
                if now < until:
                    return KidVerdict.REMEMBERED
                del self._unknown[kid]
        # The cooldown alone decides, not `may_fetch`: waiting for the back-off as well kept a
        # new key out for up to `retry_max` after its issuer recovered.
        if now - self.kid_fetch_at >= self.policy.unknown_kid_cooldown:
            return KidVerdict.FETCH
        return KidVerdict.COOLDOWN

    def begin_kid_fetch(self, now: float) -> None:
        self.kid_fetch_at = now

    def kid_cooldown_left(self, now: float) -> float:
        """Seconds until an unknown `kid` may be looked up again: the end of the cooldown, or the
        back-off's retry (which fetches the whole set) if that comes first."""
        left = self.kid_fetch_at + self.policy.unknown_kid_cooldown - now
        if self.failures:
            left = min(left, self.retry_at - now)
        return max(left, 0.0)

    def confirm_unknown(self, kid: str | None, *, seen: float, now: float) -> bool:
        """Remember `kid` as absent if a fetch started at or after `seen` succeeded without it.

        Returns whether the absence is confirmed (otherwise the held set is older than the kid).
        """
        if self._last_success_started < seen or not self.last_attempt_ok:
            return False
        if kid is None or self.policy.max_unknown_kids == 0:
            return True
        self._unknown[kid] = now + self.policy.unknown_kid_ttl
        self._unknown.move_to_end(kid)
        while len(self._unknown) > self.policy.max_unknown_kids:
            self._unknown.popitem(last=False)
        return True

    @property
    def remembered_unknown(self) -> int:
        return len(self._unknown)
