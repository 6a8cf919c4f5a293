"""The lockout operations (`authgate.limits.lockouts`): the memory store and the Redis script give
the same answers step by step on the test's clock; `admit` counts nothing while a key is locked
out and writes nothing to clear when there are no failures; and every key it writes expires."""

from __future__ import annotations

import redis

from authgate.limits import FailMode
from authgate.limits.lockouts import (
    FAIL_COUNTED,
    FAIL_LOCKED,
    FAIL_SKIPPED,
    FAIL_STARTED,
    Lockout,
)
from authgate.limits.memory import MemoryStore
from authgate.limits.redis_store import RedisStore
from tests.support.limits import Clock

SECOND = 1_000_000
LOCKOUT = Lockout.build("t", failures=2, window=60, first=10, longest=40, mode=FailMode.OPEN)


def _specs(namespace: str, *names: str) -> list[tuple[str, str, str, int, int, int, int, int, int]]:
    return [
        LOCKOUT.keys(f"{namespace}:{n}:f", f"{namespace}:{n}:s", f"{namespace}:{n}:l")
        for n in names
    ]


async def test_memory_and_redis_answer_alike(
    clock: Clock, clocked_redis_store: RedisStore, namespace: str
) -> None:
    memory = MemoryStore(clock=clock)
    a, b = _specs(namespace, "a", "b")
    hit = (f"{namespace}:hit", SECOND, 3)
    steps: list[tuple[str, int]] = [
        ("fail_a", 0),
        ("fail_a", 0),
        ("fail_a", 0),  # the third failure starts a lockout of 10 s
        ("fail_ab", 0),  # counted against a only: b is not charged during a's lockout
        ("admit", 0),  # locked: nothing counted
        ("admit", 10 * SECOND),
        ("fail_a", 0),  # remembered: at once, 20 s
        ("admit", 20 * SECOND),
        ("fail_ab", 0),
        ("admit", 200 * SECOND),
    ]
    answers: dict[str, list[object]] = {"memory": [], "redis": []}
    for step, advance in steps:
        clock.advance(advance)
        for name, store in (("memory", memory), ("redis", clocked_redis_store)):
            if step == "admit":
                waits, outcomes = await store.admit([a[2], b[2]], [hit], a[0])
                answers[name].append((waits, [(o.allowed, o.remaining) for o in outcomes]))
            else:
                specs = [a] if step == "fail_a" else [a, b]
                answers[name].append(await store.fail(specs))
    assert answers["memory"] == answers["redis"]
    assert answers["memory"][2] == [(FAIL_STARTED, 10 * SECOND)]
    assert answers["memory"][3] == [(FAIL_LOCKED, 10 * SECOND), (FAIL_SKIPPED, 0)]
    assert answers["memory"][4] == ([10 * SECOND, 0], [])
    assert answers["memory"][6] == [(FAIL_STARTED, 20 * SECOND)]
    assert answers["memory"][0] == answers["memory"][1] == [(FAIL_COUNTED, 0)]


async def test_admit_clears_failures_only_when_there_are_some(
    clock: Clock, clocked_redis_store: RedisStore, namespace: str, redis_client: redis.Redis
) -> None:
    (spec,) = _specs(namespace, "c")
    hit = (f"{namespace}:hit", SECOND, 3)
    await clocked_redis_store.admit([spec[2]], [], spec[0])
    assert not redis_client.exists(spec[0])
    assert await clocked_redis_store.fail([spec]) == [(FAIL_COUNTED, 0)]
    assert redis_client.exists(spec[0])
    assert redis_client.pttl(spec[0]) > 0  # every key expires by itself
    waits, outcomes = await clocked_redis_store.admit([spec[2]], [hit], spec[0])
    assert not waits  # not locked out
    assert [o.allowed for o in outcomes] == [True]
    assert not redis_client.exists(spec[0])
    assert redis_client.pttl(hit[0]) > 0
