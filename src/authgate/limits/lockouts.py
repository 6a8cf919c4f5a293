"""Lockouts after repeated failures, and the two store operations that decide a request under
them in one step each (one Redis call, one lock of the memory store):

- `admit`: after a success, "is any of these keys locked out? If not, count the request against
  these limits, and clear this key's failures if it has any (nothing is written when it has
  none)";
- `fail`: after a failure, "count it against every key (or only against the locked ones while
  any is locked out), start a lockout where the failures ran out, and say how long each key is
  locked out".

A `Lockout` is three GCRA keys per key (`gcra`): the failures (a burst of `failures`, one regained
per `window / failures`), the lockouts remembered (`strikes`, one forgotten per `max_lockout`)
and the lockout itself (a bucket of one whose interval is the lockout's length). A key with
failures left fails freely; the failure that finds none left starts a lockout of `first` seconds;
while lockouts are remembered every failure starts one at once, twice as long as the last, up to
`longest`. A failure while the key is locked out is counted against its failures and changes
nothing else (the lockout neither grows nor restarts). Every key expires by itself.

`apply_admit` and `apply_fail` are the operations over one in-process map of TATs (the memory
store, under its lock); the Redis store runs the same steps in Lua (`redis_store`), and the tests
hold the two to the same answers.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from authgate.limits import gcra
from authgate.limits.rates import FailMode, Limit, Rate

__all__ = [
    "FAIL_COUNTED",
    "FAIL_LOCKED",
    "FAIL_SKIPPED",
    "FAIL_STARTED",
    "LockKeys",
    "Lockout",
    "apply_admit",
    "apply_fail",
]

# What `fail` did with one key: counted (failures left), started a lockout, counted during its
# lockout, or skipped (another key of the request is locked out: nothing more is spent).
FAIL_COUNTED, FAIL_STARTED, FAIL_LOCKED, FAIL_SKIPPED = 0, 1, 2, 3

# One key's lockout for a store: the failures', strikes' and lock's keys; the failures' and
# strikes' interval (us) and burst; the first and longest lockout (us).
LockKeys = tuple[str, str, str, int, int, int, int, int, int]


@dataclass(frozen=True, slots=True)
class Lockout:
    """The lockout of one kind of key, as the three GCRA limits it is built of."""

    failures: Limit  # `failures` per `window`, all at once if they like
    strikes: Limit  # the lockouts remembered: one more doubles the next
    lock: Limit  # a key's lockout (a bucket of one; its policy is the longest lockout)
    first: int  # seconds
    longest: int  # seconds

    @classmethod
    def build(
        cls, name: str, *, failures: int, window: int, first: int, longest: int, mode: FailMode
    ) -> Lockout:
        """`failures` per `window` seconds, then a lockout of `first` seconds doubling to
        `longest`; the limits are named `name`, `name_strikes` and `name_lock`."""
        doublings = 0
        while first << doublings < longest:
            doublings += 1
        return cls(
            failures=Limit(name, Rate(failures, window, failures), mode),
            strikes=Limit(f"{name}_strikes", Rate(1, longest, doublings + 1), mode),
            lock=Limit(f"{name}_lock", Rate(1, longest, 1), mode),
            first=first,
            longest=longest,
        )

    def length(self, strikes: int) -> int:
        """Seconds of the lockout after `strikes` remembered ones."""
        return min(self.first << strikes, self.longest)

    def keys(self, failures: str, strikes: str, lock: str) -> LockKeys:
        """This lockout's numbers with the store keys of one key."""
        f, s = self.failures.rate, self.strikes.rate
        return (
            failures,
            strikes,
            lock,
            f.interval_us,
            f.burst,
            s.interval_us,
            s.burst,
            self.first * 1_000_000,
            self.longest * 1_000_000,
        )


def _locked_for(tats: OrderedDict[str, int], lock: str, now: int) -> int:
    tat = tats.get(lock)
    return tat - now if tat is not None and tat > now else 0


def _hit(tats: OrderedDict[str, int], key: str, now: int, interval: int, burst: int) -> bool:
    outcome, tat = gcra.decide(tats.get(key), now, interval, burst, count=True)
    if tat is not None:
        _put(tats, key, tat)
    return outcome.allowed


def _put(tats: OrderedDict[str, int], key: str, tat: int) -> None:
    tats[key] = tat
    tats.move_to_end(key)  # the most recently used (the memory store forgets from the other end)


def apply_admit(
    tats: OrderedDict[str, int],
    now: int,
    locks: Sequence[str],
    hits: Sequence[tuple[str, int, int]],
    clear: str | None,
) -> tuple[Sequence[int], list[gcra.Outcome]]:
    """`admit` on `tats`: each lock's wait (us, 0: not locked out) when one is locked out (then
    nothing is counted or cleared), else no waits and the hits' outcomes."""
    for lock in locks:
        tat = tats.get(lock)
        if tat is not None and tat > now:
            return [_locked_for(tats, lock, now) for lock in locks], []
    outcomes = []
    for key, interval, burst in hits:
        outcome, tat = gcra.decide(tats.get(key), now, interval, burst, count=True)
        if tat is not None:
            _put(tats, key, tat)
        outcomes.append(outcome)
    if clear is not None and clear in tats:  # only a key with failures is written
        del tats[clear]
    return (), outcomes


def apply_fail(
    tats: OrderedDict[str, int], now: int, lockouts: Sequence[LockKeys]
) -> list[tuple[int, int]]:
    """`fail` on `tats`: for each lockout, what was done (`FAIL_*`) and the wait (us)."""
    waits = [_locked_for(tats, spec[2], now) for spec in lockouts]
    if any(waits):
        out = []
        for spec, wait in zip(lockouts, waits, strict=True):
            if wait:
                _hit(tats, spec[0], now, spec[3], spec[4])
                out.append((FAIL_LOCKED, wait))
            else:
                out.append((FAIL_SKIPPED, 0))
        return out
    out = []
    for failures, strikes, lock, fi, fb, si, sb, first, longest in lockouts:
        remembered, _ = gcra.decide(tats.get(strikes), now, si, sb, count=False)
        if remembered.remaining >= sb and _hit(tats, failures, now, fi, fb):
            out.append((FAIL_COUNTED, 0))
            continue
        strike, tat = gcra.decide(tats.get(strikes), now, si, sb, count=True)
        if tat is not None:
            _put(tats, strikes, tat)
        count = sb - 1 - strike.remaining if strike.allowed else sb - 1
        length = min(first << count, longest)
        _hit(tats, lock, now, length, 1)
        out.append((FAIL_STARTED, length))
    return out
