"""Lockouts after failed client authentication (RFC 6749 §2.3.1: the server "MUST protect any
endpoint utilizing it against brute force attacks"), per client id and per client address.

A key (a client id, an address) that fails `failures` times within `window` is locked out for
`lockout` seconds; each failure while its past lockouts are remembered locks it out at once for
twice as long as the last, up to `max_lockout`. A lockout ends by itself; the memory of lockouts
fades, one per `max_lockout` without a new one, and then the key has its `failures` again.

While a key is locked out, every client authentication it applies to is refused with 429 before
the credentials are looked at: a right secret too. If a right secret went through, a guesser
would keep guessing at full speed through the lockout (wrong: 429, right: 200), so the lockout
would protect nothing. The price is that anyone can lock a client id out by sending wrong secrets
with it (client ids are not secret); that is why the per-client-id lockout counts and refuses only
client secrets (`client_secret_basic`, `client_secret_post`): a `private_key_jwt` assertion or a
public client has nothing to guess and is never locked out by its id. The per-address lockout
counts every failed method and refuses every method from the address.

A successful authentication clears the client id's failure count (never the address's, or one
valid client would reset an attacker's address); it cannot happen during a lockout, and it leaves
the memory of past lockouts, so an attacker interleaving with a working client is locked out
again after one failure.

Everything lives in the limiter's store as three GCRA keys per key (`authgate.limits.gcra`), so in
Redis it is shared by every process, and every key expires by itself: the failures (a burst of
`failures`, one regained per `window / failures`), the lockouts remembered (one forgotten per
`max_lockout`), and the lockout (a bucket of one, full again when the lockout ends). The steps of
one failure are atomic each, not together: two processes that see one key's last allowed failure
at once may both start a lockout, and the second doubles the first (erring towards locking).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from authgate.limits import (
    Decision,
    FailMode,
    Limit,
    Limiter,
    Rate,
    Refusal,
    StoreUnavailable,
    refusal,
)
from authgate.limits.keys import KeyPart, address_part
from authgate.server.config import LockoutSettings

__all__ = ["ClientAuthLimits", "Lockout", "LockoutCheck", "decide_all"]

Ask = tuple[Limit, tuple[KeyPart, ...]]


async def decide_all(limiter: Limiter, asks: Sequence[Ask], *, count: bool) -> list[Decision]:
    """The decisions for `asks` (counted, or peeks): without I/O when the store allows, else
    together, so that a Redis store answers them in one call."""
    decided = [
        limiter.hit_nowait(limit, *key) if count else limiter.peek_nowait(limit, *key)
        for limit, key in asks
    ]
    missing = [i for i, d in enumerate(decided) if d is None]
    if missing:
        decide = limiter.hit if count else limiter.peek
        found = await asyncio.gather(*(decide(asks[i][0], *asks[i][1]) for i in missing))
        for i, decision in zip(missing, found, strict=True):
            decided[i] = decision
    return [d for d in decided if d is not None]


@dataclass(frozen=True, slots=True)
class Lockout:
    """The lockout of one kind of key, as the three GCRA limits it is built of."""

    failures: Limit  # `failures` per `window`, all at once if they like
    strikes: Limit  # the lockouts remembered: one more doubles the next
    lock: Limit  # peeks at a key's lockout (a bucket of one)
    first: int
    longest: int

    @classmethod
    def for_settings(cls, name: str, settings: LockoutSettings) -> Lockout | None:
        """The lockout named `name` (its failures' limit; the others add a suffix), or None when
        the settings turn it off."""
        if not settings.enabled:
            return None
        mode = settings.on_store_failure
        doublings = 0
        while settings.lockout << doublings < settings.max_lockout:
            doublings += 1
        return cls(
            failures=Limit(name, Rate(settings.failures, settings.window, settings.failures), mode),
            strikes=Limit(f"{name}_strikes", Rate(1, settings.max_lockout, doublings + 1), mode),
            lock=_lock(name, settings.max_lockout, mode),
            first=settings.lockout,
            longest=settings.max_lockout,
        )

    def length(self, strikes: int) -> int:
        """Seconds of the lockout after `strikes` remembered ones."""
        return min(self.first << strikes, self.longest)


def _lock(name: str, seconds: int, mode: FailMode) -> Limit:
    return Limit(f"{name}_lock", Rate(1, seconds, 1), mode)


@dataclass(slots=True)
class LockoutCheck:
    """The keys one client authentication is counted against (`ClientAuthLimits.check`):
    `refusal` when a key is locked out; `clear`: the client id's key holds failures that a
    success takes back."""

    keys: list[tuple[Lockout, tuple[KeyPart, ...]]] = field(default_factory=list)
    refusal: Refusal | None = None
    clear: tuple[Lockout, tuple[KeyPart, ...]] | None = None


@dataclass(slots=True)
class ClientAuthLimits:
    """Both lockouts (per client id for client secrets, per address for every method)."""

    limiter: Limiter
    client: Lockout | None
    address: Lockout | None

    async def check(self, client_id: str | None, address: str) -> LockoutCheck:
        """Before the credentials are checked: refused when a key is locked out. `client_id` is
        the id a request authenticating with a client secret names (None for other methods)."""
        check = LockoutCheck()
        keys = check.keys
        if self.address is not None:
            keys.append((self.address, ("address", address_part(address))))
        client = self.client if client_id is not None else None
        if client is not None and client_id is not None:
            keys.append((client, ("client", client_id)))
        if not keys:
            return check
        # One call to a Redis store: the locks, and the client id's failures (to clear them).
        asks: list[Ask] = [(lockout.lock, key) for lockout, key in keys]
        if client is not None:
            asks.append((client.failures, keys[-1][1]))
        decided = await decide_all(self.limiter, asks, count=False)
        locks = decided[: len(keys)]
        if not all(d.allowed for d in locks):
            shown = [_shown(k[0], d) for k, d in zip(keys, locks, strict=True) if not d.allowed]
            check.refusal = refusal(shown)
        if client is not None:
            failures = decided[-1]
            if not failures.store_failed and failures.remaining < client.failures.rate.burst:
                check.clear = keys[-1]
        return check

    async def failed(self, check: LockoutCheck) -> Refusal | None:
        """After a failed client authentication: count it against every key; the refusal (429)
        when this failure starts a lockout, else None (the caller answers 401)."""
        started: list[Decision] = []
        for lockout, key in check.keys:
            length = await self._count(lockout, key)
            if length is not None:
                started.append(Decision(lockout.failures, False, 0, length, length, length))
        return refusal(started)

    async def _count(self, lockout: Lockout, key: tuple[KeyPart, ...]) -> int | None:
        """Count one failure of `key`: the seconds of the lockout it starts, or None."""
        limiter = self.limiter
        remembered = await limiter.peek(lockout.strikes, *key)
        if remembered.store_failed:
            return None  # nothing can be counted; the failure is answered as it is
        if remembered.remaining >= lockout.strikes.rate.burst:  # no lockout remembered
            failure = await limiter.hit(lockout.failures, *key)
            if failure.allowed or failure.store_failed:
                return None
        strike = await limiter.hit(lockout.strikes, *key)
        burst = lockout.strikes.rate.burst
        strikes = burst - 1 - strike.remaining if strike.allowed else burst - 1
        length = lockout.length(strikes)
        name = lockout.failures.name
        await limiter.hit(_lock(name, length, lockout.lock.on_store_failure), *key)
        return length

    async def succeeded(self, check: LockoutCheck) -> None:
        """After a successful client authentication: clear the client id's failures (never the
        address's; the lockouts remembered stay and fade)."""
        if check.clear is None:
            return
        lockout, key = check.clear
        with contextlib.suppress(StoreUnavailable):  # else the count stays and fades
            await self.limiter.reset(lockout.failures, *key)


def _shown(lockout: Lockout, lock: Decision) -> Decision:
    """A refusing lock's peek as the decision the answer shows: the failures' policy (`q`
    failures per `w` seconds) with the lockout's wait."""
    if lock.store_failed:  # a fail-closed lockout that could not be checked: 503
        return Decision(lockout.failures, False, 0, lock.retry_after, 0.0, 0.0, True)
    wait = lock.retry_after
    return Decision(lockout.failures, False, 0, wait, wait, wait)
