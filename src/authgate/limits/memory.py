"""The in-process store: one TAT per key in a bounded, least-recently-used map.

Safe from several threads (WSGI workers) and the event loop at once: each decision holds a lock
for a few dictionary operations. Bounded so that hostile keys cannot grow it: a key whose TAT has
passed is the same as no key and is dropped when reached from the old end, and past `max_keys`
the least recently used key is forgotten. Forgetting a live key gives that key a full bucket, so a
flood of more than `max_keys` distinct keys within one bucket's time weakens per-key limits; a
coarser limit (per address, or global) alongside a per-client one keeps holding.

One-time claims (`claim_once`, DPoP `jti`s) are bounded apart, by `max_claims`, and never
forgotten while live: forgetting one would let its replay pass (RFC 9449 §11.1). Past the bound
a new claim raises `StoreUnavailable` (the caller answers 503) until claims expire.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from authgate.limits import gcra
from authgate.limits.lockouts import LockKeys, apply_admit, apply_fail
from authgate.limits.store import StoreUnavailable

__all__ = ["DEFAULT_MAX_CLAIMS", "DEFAULT_MAX_KEYS", "MemoryStore", "monotonic_us"]

DEFAULT_MAX_KEYS = 100_000
# Live one-time claims: about 6,000 DPoP proofs a second for the default 66 s replay window, at
# roughly 200 bytes each.
DEFAULT_MAX_CLAIMS = 400_000
# Expired keys dropped from the old end per write: more than one, so the map shrinks back to its
# live keys while traffic continues.
_SWEEP = 2


def monotonic_us() -> int:
    """This process's monotonic clock in microseconds."""
    return time.monotonic_ns() // 1000


class MemoryStore:
    """GCRA state in this process (see `stores.Store`)."""

    description = "memory://"

    def __init__(
        self,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        max_claims: int = DEFAULT_MAX_CLAIMS,
        clock: Callable[[], int] = monotonic_us,
    ) -> None:
        if max_keys < 1 or max_claims < 1:
            raise ValueError("max_keys and max_claims must be at least 1")
        self.max_keys = max_keys
        self.max_claims = max_claims
        self._clock = clock
        # The default clock read without its Python wrapper on the fast paths (a test's clock
        # is called as given).
        self._monotonic = clock is monotonic_us
        self._tats: OrderedDict[str, int] = OrderedDict()
        # Keys claimed once (`claim_once`): their expiry (us), oldest claim first.
        self._claimed: OrderedDict[str, int] = OrderedDict()
        self._first_claim = 0  # the expiry of the oldest claim (when there is one)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tats)

    def update_nowait(self, key: str, interval: int, burst: int, *, count: bool) -> gcra.Outcome:
        tats = self._tats
        with self._lock:
            now = self._clock()
            outcome, tat = gcra.decide(tats.get(key), now, interval, burst, count=count)
            if tat is not None:
                tats[key] = tat
                tats.move_to_end(key)
                if tats[next(iter(tats))] <= now:  # the oldest has expired (checked once: hot)
                    self._sweep(now)
                if len(tats) > self.max_keys:
                    tats.popitem(last=False)
        return outcome

    def hit_local(self, key: str, interval: int, tolerance: int) -> tuple[bool, int, int]:
        """`update_nowait(key, interval, burst, count=True)` for the limiter's fast path, with
        the rate's tolerance ((burst - 1) * interval) given: whether the request is admitted,
        the time of the decision and the key's TAT after it (`Limiter` derives the figures
        from the two, as `gcra.decide` does). The same steps as `gcra.decide` and
        `update_nowait`, inline: no `Outcome` is built, and an admitted request on a limited
        route is the most frequent call of this store (tests hold the two to equal answers)."""
        tats = self._tats
        with self._lock:
            now = time.monotonic_ns() // 1000 if self._monotonic else self._clock()
            tat = tats.get(key)
            state = now if tat is None or tat < now else tat
            if now < state - tolerance:  # refused: nothing is written
                return False, now, state
            state += interval
            tats[key] = state
            tats.move_to_end(key)
            if tats[next(iter(tats))] <= now:  # the oldest has expired (checked once: hot)
                self._sweep(now)
            if len(tats) > self.max_keys:
                tats.popitem(last=False)
        return True, now, state

    def admit_local(
        self, locks: Sequence[str], hits: Sequence[tuple[str, int, int]], clear: str | None
    ) -> tuple[list[int], int, list[tuple[bool, int]]]:
        """`admit_nowait` for the limiter's fast path, with each hit's tolerance instead of its
        burst (key, interval, tolerance): the locks' waits (us; empty when none is locked out),
        the time of the decision, and per hit whether it was admitted and its TAT after it
        (`hit_local`'s answer). The same steps as `lockouts.apply_admit`, inline, without an
        `Outcome` per hit (the tests hold the two to equal answers)."""
        tats = self._tats
        with self._lock:
            now = time.monotonic_ns() // 1000 if self._monotonic else self._clock()
            for lock in locks:
                tat = tats.get(lock)
                if tat is not None and tat > now:  # locked out: nothing counted or cleared
                    waits = []
                    for each in locks:
                        tat = tats.get(each)
                        waits.append(tat - now if tat is not None and tat > now else 0)
                    return waits, now, []
            states = []
            for key, interval, tolerance in hits:
                tat = tats.get(key)
                state = now if tat is None or tat < now else tat
                if now < state - tolerance:
                    states.append((False, state))
                    continue
                state += interval
                tats[key] = state
                tats.move_to_end(key)
                states.append((True, state))
            if clear is not None and clear in tats:  # only a key with failures is written
                del tats[clear]
            self._bound(now)
        return [], now, states

    def admit_nowait(
        self, locks: Sequence[str], hits: Sequence[tuple[str, int, int]], clear: str | None
    ) -> tuple[Sequence[int], list[gcra.Outcome]]:
        with self._lock:
            now = self._clock()
            answer = apply_admit(self._tats, now, locks, hits, clear)
            self._bound(now)
        return answer

    async def admit(
        self, locks: Sequence[str], hits: Sequence[tuple[str, int, int]], clear: str | None
    ) -> tuple[Sequence[int], list[gcra.Outcome]]:
        return self.admit_nowait(locks, hits, clear)

    def fail_nowait(self, lockouts: Sequence[LockKeys]) -> list[tuple[int, int]]:
        with self._lock:
            now = self._clock()
            answer = apply_fail(self._tats, now, lockouts)
            self._bound(now)
        return answer

    async def fail(self, lockouts: Sequence[LockKeys]) -> list[tuple[int, int]]:
        return self.fail_nowait(lockouts)

    def _bound(self, now: int) -> None:
        """After writes of several keys (the lock is held): sweep, and keep `max_keys`."""
        tats = self._tats
        if tats and tats[next(iter(tats))] <= now:
            self._sweep(now)
        while len(tats) > self.max_keys:
            tats.popitem(last=False)

    def _sweep(self, now: int) -> None:
        """Drop up to `_SWEEP` expired keys from the old end (the lock is held)."""
        tats = self._tats
        for _ in range(_SWEEP):
            if not tats:
                break
            oldest = next(iter(tats))
            if tats[oldest] > now:
                break
            del tats[oldest]

    async def update(self, key: str, interval: int, burst: int, *, count: bool) -> gcra.Outcome:
        return self.update_nowait(key, interval, burst, count=count)

    async def delete(self, key: str) -> None:
        with self._lock:
            self._tats.pop(key, None)

    def claim_once_nowait(self, key: str, ttl: float) -> bool:
        """`claim_once` without an event loop (WSGI workers)."""
        if not ttl > 0:
            raise ValueError("ttl must be > 0 seconds")
        claimed = self._claimed
        with self._lock:
            now = time.monotonic_ns() // 1000 if self._monotonic else self._clock()
            expiry = claimed.get(key)
            if expiry is None:  # the usual claim: a new key, which goes to the end
                if len(claimed) >= self.max_claims and not self._make_room(now):
                    raise StoreUnavailable(f"{self.description}: too many live one-time claims")
                if not claimed:
                    self._first_claim = now + int(ttl * 1_000_000)
                claimed[key] = now + int(ttl * 1_000_000)
            elif expiry > now:
                return False
            else:  # claimed before and expired, not swept yet: claimed anew, at the end
                claimed[key] = now + int(ttl * 1_000_000)
                claimed.move_to_end(key)
                self._first_claim = claimed[next(iter(claimed))]
            # Claims share one ttl per caller, so the oldest expire first: drop those that have.
            # The oldest claim's expiry is kept aside, so that a claim that sweeps nothing does
            # not look the oldest key up.
            if self._first_claim <= now:
                self._sweep_claims(now)
        return True

    def _make_room(self, now: int) -> bool:
        """Drop every expired claim (the lock is held); whether one fits now. A live claim is
        never dropped: its replay would pass."""
        claimed = self._claimed
        while claimed:
            oldest = next(iter(claimed))
            if claimed[oldest] > now:
                break
            del claimed[oldest]
        if claimed:
            self._first_claim = claimed[next(iter(claimed))]
        return len(claimed) < self.max_claims

    def _sweep_claims(self, now: int) -> None:
        """Drop up to `_SWEEP` expired claims from the old end (the lock is held; the claim just
        made, which has not expired, stays)."""
        claimed = self._claimed
        for _ in range(_SWEEP):
            oldest = next(iter(claimed))
            if claimed[oldest] > now:
                break
            del claimed[oldest]
        self._first_claim = claimed[next(iter(claimed))]

    async def claim_once(self, key: str, ttl: float) -> bool:
        return self.claim_once_nowait(key, ttl)

    async def aclose(self) -> None:
        with self._lock:
            self._tats.clear()
            self._claimed.clear()
