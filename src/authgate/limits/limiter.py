"""The limiter: a limit and a key in, a `Decision` out, whichever store holds the counts.

```python
limiter = Limiter.from_url(settings.redis_url)        # "memory://" by default
TOKEN = Limit("token", parse_rate("60/minute", burst=20), FailMode.CLOSED)

decision = await limiter.hit(TOKEN, "client", client_id)
if (answer := refusal([decision])) is not None:
    ...  # answer.status (429 or 503), answer.headers, answer.error.to_dict()
```

Keys are built here from the parts (`keys.store_key`), so a store never sees client input.

When the store does not answer (`StoreUnavailable`: Redis down, hung past the timeout, refusing),
each limit answers by its failure mode: `FailMode.OPEN` allows without counting, `FailMode.CLOSED`
refuses with 503 and a `Retry-After`. The first failure logs one warning and starts an outage;
for `retry_interval` seconds no request waits on the store, then the next request tries it again
(one at a time; the others keep the failure answer meanwhile). The first success logs one line and
ends the outage: recovery needs no restart. The counters are in `metrics` (`LimiterMetrics`).

Synchronous callers (WSGI) use `hit_nowait`, which decides without I/O when it can (the memory
store, or during an outage's quiet time) and returns None otherwise; they then run `hit` on their
event loop thread (`authgate.middleware._loop_thread.LoopThread`), where the Redis connections
live. A limiter with a Redis store belongs to one event loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from authgate.limits.decisions import Decision
from authgate.limits.gcra import Outcome
from authgate.limits.keys import KeyPart, check_namespace, store_key
from authgate.limits.lockouts import FAIL_COUNTED, FAIL_LOCKED, FAIL_STARTED, LockKeys, Lockout
from authgate.limits.metrics import LimiterMetrics
from authgate.limits.rates import FailMode, Limit
from authgate.limits.store import DEFAULT_TIMEOUT, Store, StoreUnavailable
from authgate.limits.stores import open_store

__all__ = ["DEFAULT_RETRY_INTERVAL", "AdmitPlan", "Ask", "Limiter"]

# A limit and the parts of a key under it; a lockout and the parts of a key under it.
Ask = tuple[Limit, tuple[KeyPart, ...]]
LockAsk = tuple[Lockout, tuple[KeyPart, ...]]
# `MemoryStore.admit_local`.
_AdmitLocal = Callable[
    [Sequence[str], Sequence[tuple[str, int, int]], str | None],
    tuple[list[int], int, list[tuple[bool, int]]],
]

logger = logging.getLogger("authgate.limits")

# Seconds between tries of a store that stopped answering.
DEFAULT_RETRY_INTERVAL = 1.0
# Keys already hashed, for values that come back (a client's id); bounded in count and, since
# only short values are kept, in size.
_KEY_CACHE_SIZE = 4096
_KEY_CACHE_MAX_CHARS = 512


@dataclass(frozen=True, slots=True)
class AdmitPlan:
    """The asks of one `admit` with their store keys built (`Limiter.plan`). A caller that asks
    the same again (one client from one address, request after request) keeps the plan and
    saves building the keys: hashing a key's parts and looking it up cost more than the store's
    decision in memory."""

    locks: tuple[LockAsk, ...]
    hits: tuple[Ask, ...]
    lock_keys: tuple[str, ...]
    hit_keys: tuple[tuple[str, int, int], ...]  # key, interval, burst (the store's `admit`)
    clear: str | None
    local_hits: tuple[tuple[str, int, int], ...]  # key, interval, tolerance (`admit_local`)


class Limiter:
    """Decides requests against limits, counting in `store` (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        namespace: str = "authgate",
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        metrics: LimiterMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not retry_interval > 0:
            raise ValueError(f"retry_interval must be > 0 seconds, not {retry_interval!r}")
        self.store = store
        self.namespace = check_namespace(namespace)
        self.retry_interval = retry_interval
        self.metrics = metrics if metrics is not None else LimiterMetrics()
        self._clock = clock
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._probing = False
        self._failed_decisions = 0
        self._keys: dict[tuple[str, tuple[KeyPart, ...]], str] = {}
        # An in-process store's one-step count (`MemoryStore.hit_local`): `hit` and `hit_nowait`
        # then decide without the generic layers. Such a store never fails, so no outage state
        # is involved.
        self._hit_local: Callable[[str, int, int], tuple[bool, int, int]] | None = getattr(
            store, "hit_local", None
        )
        self._admit_local: _AdmitLocal | None = getattr(store, "admit_local", None)

    @classmethod
    def from_url(
        cls,
        url: str = "memory://",
        *,
        timeout: float = DEFAULT_TIMEOUT,
        namespace: str = "authgate",
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        metrics: LimiterMetrics | None = None,
        clock_us: Callable[[], int] | None = None,
    ) -> Limiter:
        """A limiter on the store `url` names (`stores.open_store`, which `clock_us` goes to);
        ValueError when it is bad."""
        return cls(
            open_store(url, timeout=timeout, clock_us=clock_us),
            namespace=namespace,
            retry_interval=retry_interval,
            metrics=metrics,
        )

    @property
    def store_available(self) -> bool:
        """False during an outage (from the first failure to the next success)."""
        return self._down_since is None

    def key(self, limit: Limit, *key: KeyPart) -> str:
        """The store key for `key` under `limit`."""
        return self._key(limit.name, key)

    def _key(self, name: str, parts: tuple[KeyPart, ...]) -> str:
        cached = self._keys.get((name, parts))
        if cached is not None:
            return cached
        key = store_key(self.namespace, name, parts)
        if sum(map(len, parts)) <= _KEY_CACHE_MAX_CHARS:
            if len(self._keys) >= _KEY_CACHE_SIZE:
                self._keys.clear()
            self._keys[(name, parts)] = key
        return key

    async def hit(self, limit: Limit, *key: KeyPart) -> Decision:
        """Count one request for `key` (its parts: "client", client_id…) and decide it."""
        if self._hit_local is not None:  # in this process: nothing to wait for
            decided = self.hit_parts_nowait(limit, key)
            if decided is not None:
                return decided
        return await self._decide(limit, key, count=True)

    async def peek(self, limit: Limit, *key: KeyPart) -> Decision:
        """Whether a request would be admitted, without counting it."""
        return await self._decide(limit, key, count=False)

    def hit_nowait(self, limit: Limit, *key: KeyPart) -> Decision | None:
        """`hit` when it needs no I/O; None when the caller must await `hit`."""
        return self.hit_parts_nowait(limit, key)

    def hit_parts_nowait(self, limit: Limit, key: tuple[KeyPart, ...]) -> Decision | None:
        """`hit_nowait` with the key's parts as one tuple (a caller that holds them so saves
        building another)."""
        hit = self._hit_local
        if hit is None:
            return self._decide_nowait(limit, key, count=True)
        # In an in-process store: `_decide_nowait` without its layers (the store's `Outcome`, the
        # keyword call), the figures derived from the store's time and TAT as `_decision_at`
        # (and `gcra.decide`) derive them, inline: this is the hottest path (the tests hold the
        # two equal).
        name = limit.name
        store_key = self._keys.get((name, key))
        if store_key is None:
            store_key = self._key(name, key)
        rate = limit.rate
        interval, tolerance = rate.interval_us, rate.tolerance_us
        allowed, now, state = hit(store_key, interval, tolerance)
        self.metrics.decisions[limit.allowed_label if allowed else limit.limited_label] += 1
        x = now + tolerance - state
        if x >= 0:
            remaining, window = x // interval + 1, (interval - x % interval) / 1e6
            return Decision(limit, allowed, remaining, 0.0, window, (state - now) / 1e6)
        return Decision(limit, allowed, 0, -x / 1e6, -x / 1e6, (state - now) / 1e6)

    def peek_nowait(self, limit: Limit, *key: KeyPart) -> Decision | None:
        """`peek` when it needs no I/O; None when the caller must await `peek`."""
        return self._decide_nowait(limit, key, count=False)

    def plan(
        self, locks: Sequence[LockAsk], hits: Sequence[Ask], clear: LockAsk | None = None
    ) -> AdmitPlan:
        """The arguments of `admit` with their store keys built, for `admit_planned`."""
        key = self._key
        hit_keys = tuple(
            (key(limit.name, parts), limit.rate.interval_us, limit.rate.burst)
            for limit, parts in hits
        )
        return AdmitPlan(
            tuple(locks),
            tuple(hits),
            tuple(key(lockout.lock.name, parts) for lockout, parts in locks),
            hit_keys,
            None if clear is None else key(clear[0].failures.name, clear[1]),
            tuple(
                (store_key, limit.rate.interval_us, limit.rate.tolerance_us)
                for (store_key, _, _), (limit, _) in zip(hit_keys, hits, strict=True)
            ),
        )

    def admit_nowait(
        self, locks: Sequence[LockAsk], hits: Sequence[Ask], clear: LockAsk | None = None
    ) -> tuple[list[Decision], list[Decision]] | None:
        """`admit` when it needs no I/O; None when the caller must await `admit`."""
        return self.admit_planned_nowait(self.plan(locks, hits, clear))

    async def admit(
        self, locks: Sequence[LockAsk], hits: Sequence[Ask], clear: LockAsk | None = None
    ) -> tuple[list[Decision], list[Decision]]:
        """After a success, in one store operation: the refusals of the keys of `locks` that are
        locked out (each shown as its lockout's failures' policy with the wait; a fail-closed one
        the store could not check refuses with 503); when there are none, `hits` counted and
        decided, and the failures of `clear` forgotten if it has any."""
        return await self.admit_planned(self.plan(locks, hits, clear))

    def admit_planned_nowait(self, plan: AdmitPlan) -> tuple[list[Decision], list[Decision]] | None:
        """`admit_nowait` of a plan (`plan`)."""
        local = self._admit_local
        if local is not None:  # in this process: decided without the generic layers
            waits, now, states = local(plan.lock_keys, plan.local_hits, plan.clear)
            if waits:
                return self._admitted(plan.locks, plan.hits, waits, [])
            counted = self.metrics.decisions
            decisions = []
            for (limit, _), (allowed, state) in zip(plan.hits, states, strict=True):
                counted[limit.allowed_label if allowed else limit.limited_label] += 1
                decisions.append(_decision_at(limit, allowed, now, state))
            return [], decisions
        if self._quiet():
            return self._admit_without_store(plan.locks, plan.hits)
        answer = self.store.admit_nowait(plan.lock_keys, plan.hit_keys, plan.clear)
        if answer is None:
            return None
        return self._admitted(plan.locks, plan.hits, *answer)

    async def admit_planned(self, plan: AdmitPlan) -> tuple[list[Decision], list[Decision]]:
        """`admit` of a plan (`plan`)."""
        if self._quiet():
            return self._admit_without_store(plan.locks, plan.hits)
        probing = self._down_since is not None
        if probing:
            self._probing = True
        try:
            waits, outcomes = await self.store.admit(plan.lock_keys, plan.hit_keys, plan.clear)
        except StoreUnavailable as exc:
            self._store_failed(exc)
            return self._admit_without_store(plan.locks, plan.hits)
        finally:
            if probing:
                self._probing = False
        if self._down_since is not None:
            self._store_recovered()
        return self._admitted(plan.locks, plan.hits, waits, outcomes)

    def fail_nowait(self, lockouts: Sequence[LockAsk]) -> list[Decision | None] | None:
        """`fail` when it needs no I/O; None when the caller must await `fail`."""
        if self._quiet():
            return self._fail_without_store(lockouts)
        answer = self.store.fail_nowait(self._lock_keys(lockouts))
        if answer is None:
            return None
        return self._failed(lockouts, answer)

    async def fail(self, lockouts: Sequence[LockAsk]) -> list[Decision | None]:
        """After a failure, in one store operation: the failure counted against the keys of
        `lockouts` (`lockouts.apply_fail`); per lockout, the refusal (the failures' policy with
        the lockout's wait) when the key is locked out, else None. Without the store: None for a
        fail-open lockout, a 503 refusal for a fail-closed one."""
        if self._quiet():
            return self._fail_without_store(lockouts)
        keys = self._lock_keys(lockouts)
        probing = self._down_since is not None
        if probing:
            self._probing = True
        try:
            answer = await self.store.fail(keys)
        except StoreUnavailable as exc:
            self._store_failed(exc)
            return self._fail_without_store(lockouts)
        finally:
            if probing:
                self._probing = False
        if self._down_since is not None:
            self._store_recovered()
        return self._failed(lockouts, answer)

    def _quiet(self) -> bool:
        """During an outage's quiet time (or while another request probes): no store call."""
        return self._down_since is not None and (self._probing or self._clock() < self._retry_at)

    def _admitted(
        self,
        locks: Sequence[LockAsk],
        hits: Sequence[Ask],
        waits: Sequence[int],
        outcomes: list[Outcome],
    ) -> tuple[list[Decision], list[Decision]]:
        if waits:  # a key is locked out
            shown = [
                _lockout_refusal(lockout, wait / 1e6)
                for (lockout, _), wait in zip(locks, waits, strict=True)
                if wait
            ]
            return shown, []
        return [], [
            self._decision(limit, outcome, True)
            for (limit, _), outcome in zip(hits, outcomes, strict=True)
        ]

    def _admit_without_store(
        self, locks: Sequence[LockAsk], hits: Sequence[Ask]
    ) -> tuple[list[Decision], list[Decision]]:
        shown = []
        for lockout, _ in locks:
            lock = self._without_store(lockout.lock, False)
            if not lock.allowed:  # a fail-closed lockout that could not be checked: 503
                shown.append(Decision(lockout.failures, False, 0, lock.retry_after, 0.0, 0.0, True))
        if shown:
            return shown, []
        return [], [self._without_store(limit, True) for limit, _ in hits]

    def _lock_keys(self, lockouts: Sequence[LockAsk]) -> list[LockKeys]:
        key = self._key
        return [
            lockout.keys(
                key(lockout.failures.name, parts),
                key(lockout.strikes.name, parts),
                key(lockout.lock.name, parts),
            )
            for lockout, parts in lockouts
        ]

    def _failed(
        self, lockouts: Sequence[LockAsk], answer: list[tuple[int, int]]
    ) -> list[Decision | None]:
        counted = self.metrics.decisions
        shown: list[Decision | None] = []
        for (lockout, _), (done, wait) in zip(lockouts, answer, strict=True):
            name = lockout.failures.name
            if done == FAIL_COUNTED:
                counted[(name, "allowed")] += 1
                shown.append(None)
            elif done in (FAIL_STARTED, FAIL_LOCKED):
                counted[(name, "limited")] += 1
                if done == FAIL_STARTED:
                    counted[(lockout.lock.name, "allowed")] += 1  # a lockout started
                shown.append(_lockout_refusal(lockout, wait / 1e6))
            else:  # skipped: another key is locked out
                shown.append(None)
        return shown

    def _fail_without_store(self, lockouts: Sequence[LockAsk]) -> list[Decision | None]:
        shown: list[Decision | None] = []
        for lockout, _ in lockouts:
            lock = self._without_store(lockout.lock, False)
            shown.append(
                None
                if lock.allowed  # fail open: nothing counted, the failure answered as it is
                else Decision(lockout.failures, False, 0, lock.retry_after, 0.0, 0.0, True)
            )
        return shown

    async def reset(self, limit: Limit, *key: KeyPart) -> None:
        """Forget what `key` used of `limit`; StoreUnavailable when the store does not answer."""
        await self.store.delete(self._key(limit.name, key))

    async def aclose(self) -> None:
        await self.store.aclose()

    def _decide_nowait(
        self, limit: Limit, key: tuple[KeyPart, ...], count: bool
    ) -> Decision | None:
        if self._down_since is not None and (self._probing or self._clock() < self._retry_at):
            return self._without_store(limit, count)
        rate = limit.rate
        outcome = self.store.update_nowait(
            self._key(limit.name, key), rate.interval_us, rate.burst, count=count
        )
        if outcome is None:
            return None
        return self._decision(limit, outcome, count)

    async def _decide(self, limit: Limit, key: tuple[KeyPart, ...], count: bool) -> Decision:
        probing = self._down_since is not None
        if probing and (self._probing or self._clock() < self._retry_at):
            return self._without_store(limit, count)
        rate = limit.rate
        if probing:
            self._probing = True
        try:
            outcome = await self.store.update(
                self._key(limit.name, key), rate.interval_us, rate.burst, count=count
            )
        except StoreUnavailable as exc:
            self._store_failed(exc)
            return self._without_store(limit, count)
        finally:
            if probing:
                self._probing = False
        if self._down_since is not None:
            self._store_recovered()
        return self._decision(limit, outcome, count)

    def _decision(self, limit: Limit, outcome: Outcome, count: bool) -> Decision:
        if count:
            allowed = outcome.allowed
            self.metrics.decisions[limit.allowed_label if allowed else limit.limited_label] += 1
        return Decision(
            limit,
            outcome.allowed,
            outcome.remaining,
            outcome.retry_after_us / 1e6,
            outcome.window_us / 1e6,
            outcome.reset_after_us / 1e6,
        )

    def _without_store(self, limit: Limit, count: bool) -> Decision:
        allowed = limit.on_store_failure is FailMode.OPEN
        if count:
            self._failed_decisions += 1
            self.metrics.decisions[(limit.name, "fail_open" if allowed else "fail_closed")] += 1
        wait = 0.0 if allowed else max(self._retry_at - self._clock(), 0.0)
        return Decision(limit, allowed, 0, wait, 0.0, 0.0, store_failed=True)

    def _store_failed(self, exc: StoreUnavailable) -> None:
        now = self._clock()
        self.metrics.store_errors += 1
        self._retry_at = now + self.retry_interval
        if self._down_since is None:
            self._down_since = now
            self._failed_decisions = 0
            self.metrics.outages += 1
            self.metrics.store_up = False
            logger.warning(
                "rate-limit store unavailable (%s); each limit now answers by its failure mode "
                "(fail_open: allowed uncounted, fail_closed: 503) until the store answers again",
                exc,
            )

    def _store_recovered(self) -> None:
        down_for = self._clock() - (self._down_since or 0.0)
        self._down_since = None
        self.metrics.store_up = True
        logger.warning(
            "rate-limit store %s answers again after %.1fs; %d decisions were made without it",
            self.store.description,
            down_for,
            self._failed_decisions,
        )


def _decision_at(limit: Limit, allowed: bool, now: int, state: int) -> Decision:
    """The decision of `limit` from the time of a count and the key's TAT after it: the figures
    of `gcra.decide`, from its state after the decision. x >= 0 means x // T + 1 more conform
    now and one more is gained in T - x % T; x < 0 means none conforms before -x."""
    rate = limit.rate
    interval = rate.interval_us
    x = now + rate.tolerance_us - state
    if x >= 0:
        remaining, window = x // interval + 1, (interval - x % interval) / 1e6
        return Decision(limit, allowed, remaining, 0.0, window, (state - now) / 1e6)
    return Decision(limit, allowed, 0, -x / 1e6, -x / 1e6, (state - now) / 1e6)


def _lockout_refusal(lockout: Lockout, wait: float) -> Decision:
    """A key locked out for `wait` seconds, as the refusal shows it: the failures' policy (`q`
    failures per `w` seconds) with the lockout's wait."""
    return Decision(lockout.failures, False, 0, wait, wait, wait)
