"""The generic cell rate algorithm (GCRA, ITU-T I.371), the one algorithm behind every store.

One number per key, the theoretical arrival time (TAT): when the key's bucket would be empty if
requests had come exactly at the rate. With the emission interval T = period / count and the
tolerance tau = (burst - 1) * T, a request at `now` conforms when `now >= TAT - tau`; an admitted
request moves TAT to `max(TAT, now) + T`.

What it guarantees, for any interval of length L: at most `burst + ceil(L / T) - 1` requests are
admitted. So there is no window edge at which two windows' worth can pass together, as with
fixed windows: never more than `burst` at once, and in any span of one period at most
`count + burst - 1` (exactly `count` with burst 1). In the long run the rate is count/period.

A key whose TAT is not after `now` is the same as no key: the store may forget it (Redis expires
it at that moment). Times are integer microseconds; the Redis script (`redis_store`) computes
exactly this function and the tests hold the two to the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Outcome", "decide"]


@dataclass(slots=True)  # not frozen: one is built per request, and frozen ones build slower
class Outcome:
    """One decision, in microseconds.

    `remaining`: requests that would be admitted right now after this one; `retry_after_us`: wait
    before the next one is admitted (0 while `remaining` > 0); `window_us`: time within which no
    more than `remaining` can be admitted (until the bucket gains one); `reset_after_us`: time
    until the bucket is full again.
    """

    allowed: bool
    remaining: int
    retry_after_us: int
    window_us: int
    reset_after_us: int


def decide(
    tat: int | None, now: int, interval: int, burst: int, *, count: bool
) -> tuple[Outcome, int | None]:
    """The outcome of a request at `now` and the TAT to store (None: leave the store as it is).

    `count=False` asks without counting (a peek): `allowed` says whether a request would be
    admitted and `remaining` how many would be, counting this one.
    """
    tolerance = (burst - 1) * interval
    state = now if tat is None or tat < now else tat
    allowed = now >= state - tolerance
    store: int | None = None
    if allowed and count:
        state += interval
        store = state
    # From the state after the decision: x >= 0 means x // T + 1 more conform now, and one more
    # is gained in T - x % T; x < 0 means none conforms before -x.
    x = now + tolerance - state
    if x >= 0:
        remaining, retry_after, window = x // interval + 1, 0, interval - x % interval
    else:
        remaining, retry_after, window = 0, -x, -x
    return Outcome(allowed, remaining, retry_after, window, state - now), store
