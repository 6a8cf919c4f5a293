"""The limiter's in-process fast paths (`MemoryStore.hit_local` and `admit_local`, used by
`Limiter.hit`, `hit_nowait`, `hit_parts_nowait` and the planned `admit`) give exactly the
decisions of the generic path (`update_nowait`, `lockouts.apply_admit`, `gcra.decide`), step by
step over random traffic on one clock, lockouts included; and they keep the store's bound."""

from __future__ import annotations

import random

import pytest

from authgate.limits import Decision, FailMode, Limit, Limiter, parse_rate
from authgate.limits.lockouts import Lockout
from authgate.limits.memory import MemoryStore
from tests.support.limits import Clock

LIMITS = [
    Limit("burst3", parse_rate("5/minute", burst=3)),
    Limit("burst1", parse_rate("10/second", burst=1)),
    Limit("wide", parse_rate("7/3 seconds", burst=7)),
]
LOCKOUT = Lockout.build("auth", failures=2, window=6, first=1, longest=4, mode=FailMode.OPEN)


class GenericStore(MemoryStore):
    """The memory store without its fast paths: the limiter takes the generic ones."""

    hit_local = None  # type: ignore[assignment]
    admit_local = None  # type: ignore[assignment]


def _pair(clock: Clock, max_keys: int = 1000) -> tuple[Limiter, Limiter, MemoryStore]:
    fast_store = MemoryStore(max_keys=max_keys, clock=clock)
    fast = Limiter(fast_store, namespace="test")
    slow = Limiter(GenericStore(max_keys=max_keys, clock=clock), namespace="test")
    assert fast._hit_local is not None
    assert fast._admit_local is not None
    assert slow._hit_local is None
    assert slow._admit_local is None
    return fast, slow, fast_store


def _figures(decisions: list[Decision]) -> list[tuple[object, ...]]:
    return [
        (d.limit.name, d.allowed, d.remaining, d.retry_after, d.window, d.reset_after, d.status)
        for d in decisions
    ]


@pytest.mark.parametrize("seed", range(6))
async def test_hits_decide_as_the_generic_path(seed: int) -> None:
    rng = random.Random(seed)
    clock = Clock()
    fast, slow, _ = _pair(clock)
    for step in range(3000):
        limit = rng.choice(LIMITS)
        key = ("client", rng.choice("abc"))
        if step % 3 == 0:
            got = await fast.hit(limit, *key)
        elif step % 3 == 1:
            got = fast.hit_parts_nowait(limit, key)  # type: ignore[assignment]
        else:
            got = fast.hit_nowait(limit, *key)  # type: ignore[assignment]
        want = await slow.hit(limit, *key)
        assert got is not None
        assert _figures([got]) == _figures([want]), step
        clock.advance(rng.choice((0, 0, 1, 50_000, 333_333, 2_000_000)))
    assert fast.metrics.decisions == slow.metrics.decisions
    assert fast.metrics.decisions[("burst1", "limited")] > 0  # refusals were compared too


@pytest.mark.parametrize("seed", range(6))
async def test_admit_and_lockouts_decide_as_the_generic_path(seed: int) -> None:
    rng = random.Random(seed)
    clock = Clock()
    fast, slow, _ = _pair(clock)
    seen_locked = 0
    for step in range(3000):
        who = ("client", rng.choice("ab"))
        locks = [(LOCKOUT, who)]
        if rng.random() < 0.4:  # a failure, counted in both
            got_fail = await fast.fail(locks)
            want_fail = await slow.fail(locks)
            assert _figures([d for d in got_fail if d is not None]) == _figures(
                [d for d in want_fail if d is not None]
            ), step
        else:
            hits = [(limit, who) for limit in rng.sample(LIMITS, rng.randint(0, 2))]
            clear = locks[0] if rng.random() < 0.5 else None
            plan = fast.plan(locks, hits, clear)
            got = fast.admit_planned_nowait(plan)
            assert got is not None
            want = await slow.admit(locks, hits, clear)
            assert _figures(got[0]) == _figures(want[0]), step
            assert _figures(got[1]) == _figures(want[1]), step
            seen_locked += bool(want[0])
        clock.advance(rng.choice((0, 1, 100_000, 700_000, 3_000_000)))
    assert fast.metrics.decisions == slow.metrics.decisions
    assert seen_locked > 0  # lockouts were met, not only admissions


def test_the_fast_path_keeps_the_store_bounded() -> None:
    clock = Clock()
    fast, _, store = _pair(clock, max_keys=100)
    limit = LIMITS[0]
    for i in range(1000):
        assert fast.hit_nowait(limit, "client", f"{i}-" + "x" * 5000) is not None
    assert len(store) == 100
    plan = fast.plan([], [(limit, ("client", f"{i}")) for i in range(300)])
    assert fast.admit_planned_nowait(plan) is not None
    assert len(store) == 100
    # Expired keys are dropped as traffic goes on.
    clock.advance(3600 * 1_000_000)
    for _ in range(60):
        fast.hit_nowait(limit, "client", "fresh")
    assert len(store) < 100
