"""Throttling of password and user-code guessing (exponential backoff, per key)."""

from __future__ import annotations

import asyncio

import pytest

from authgate.server.flows.passwords import hash_password, verify_password
from authgate.server.flows.throttle import (
    LOGIN_ACCOUNT_POLICY,
    LOGIN_ADDRESS_POLICY,
    USER_CODE_POLICY,
    Attempt,
    Counted,
    Throttle,
    ThrottlePolicy,
    account_key,
    address_key,
    register_attempt,
    take_back,
)
from authgate.server.models import ThrottleState
from authgate.server.storage.memory import MemoryThrottleStore
from authgate.server.storage.protocols import ThrottleUnavailable
from tests.support.flows import NOW

POLICY = ThrottlePolicy(free_attempts=3, base_delay=2, max_delay=60, forget_after=3600)


def attempts(n: int, now: int = NOW) -> ThrottleState | None:
    state = None
    for _ in range(n):
        retry, state = register_attempt(state, now, POLICY)
        assert retry is None
    return state


def test_free_attempts_then_doubling_delays() -> None:
    state = attempts(3)
    assert state is not None
    assert state.blocked_until == NOW  # the third attempt still leaves the next one free
    delays = []
    now = NOW
    for _ in range(6):
        retry, state = register_attempt(state, now, POLICY)
        assert retry is None
        assert state is not None
        delays.append(state.blocked_until - now)
        now = state.blocked_until
    assert delays == [2, 4, 8, 16, 32, 60]


def test_blocked_attempt_is_refused_and_not_counted() -> None:
    state = attempts(4)
    assert state is not None
    retry, same = register_attempt(state, NOW + 1, POLICY)
    assert retry == 1
    assert same == state
    retry, after = register_attempt(state, NOW + 2, POLICY)
    assert retry is None
    assert after is not None
    assert after.failures == 5


def test_forgotten_after_quiet_period() -> None:
    state = ThrottleState(failures=10, last_failure=NOW, blocked_until=NOW + 60)
    assert register_attempt(state, NOW + POLICY.forget_after - 1, POLICY)[1] != ThrottleState(
        1, NOW + POLICY.forget_after - 1, NOW + POLICY.forget_after - 1
    )
    retry, fresh = register_attempt(state, NOW + POLICY.forget_after, POLICY)
    assert retry is None
    assert fresh == ThrottleState(1, NOW + POLICY.forget_after, NOW + POLICY.forget_after)


def test_delay_is_capped_even_after_many_failures() -> None:
    state = ThrottleState(failures=10_000, last_failure=NOW, blocked_until=NOW)
    _, state = register_attempt(state, NOW, POLICY)
    assert state is not None
    assert state.blocked_until - NOW == POLICY.max_delay


@pytest.mark.parametrize(
    ("free", "base", "maximum", "forget"), [(0, 1, 1, 1), (1, 0, 1, 1), (1, 2, 1, 2), (1, 1, 10, 5)]
)
def test_policy_validation(free: int, base: int, maximum: int, forget: int) -> None:
    with pytest.raises(ValueError, match="throttle"):
        ThrottlePolicy(free, base, maximum, forget)


def test_builtin_policies_are_valid_and_ordered() -> None:
    assert LOGIN_ADDRESS_POLICY.free_attempts > LOGIN_ACCOUNT_POLICY.free_attempts
    assert USER_CODE_POLICY.free_attempts <= LOGIN_ACCOUNT_POLICY.free_attempts


def test_account_key_does_not_depend_on_existence_and_folds_case() -> None:
    assert account_key("Alice") == account_key("alice") == account_key("ALICE")
    assert account_key("ａlice") == account_key("alice")  # NFKC: fullwidth letters  # noqa: RUF001
    assert account_key("alice") != account_key("bob")


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.7", "address:192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "address:2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "address:2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "address:192.0.2.7"),
        ("not-an-ip", "address:not-an-ip"),
        ("x" * 500, "address:" + "x" * 100),
    ],
)
def test_address_key(address: str, key: str) -> None:
    assert address_key(address) == key


async def test_shell_blocks_on_any_key_and_clears_on_success() -> None:
    store = MemoryThrottleStore()
    throttle = Throttle(store)
    keys = [(address_key("192.0.2.7"), POLICY), (account_key("alice"), POLICY)]
    for _ in range(4):
        assert await throttle.attempt(keys, NOW) is None
    assert await throttle.attempt(keys, NOW) == 2
    await throttle.succeeded(account_key("alice"))
    # The address key still holds its count: one valid account cannot launder an attacker's address.
    assert await throttle.attempt(keys, NOW) == 2


async def test_refused_address_does_not_count_against_the_account() -> None:
    store = MemoryThrottleStore()
    throttle = Throttle(store)
    attacker = [(address_key("203.0.113.9"), POLICY), (account_key("victim"), POLICY)]
    for _ in range(50):
        await throttle.attempt(attacker, NOW)
    # Only the attempts the address let through touched the victim's account.
    victim = [(address_key("198.51.100.1"), POLICY), (account_key("victim"), POLICY)]
    assert await throttle.attempt(victim, NOW) == 2


async def test_concurrent_attempts_cannot_slip_through() -> None:
    """Guesses fired together are each counted before any password is checked."""
    throttle = Throttle(MemoryThrottleStore())
    keys = [(account_key("alice"), POLICY)]
    results = await asyncio.gather(*(throttle.attempt(keys, NOW) for _ in range(50)))
    assert results.count(None) == POLICY.free_attempts + 1


async def test_a_success_takes_its_count_back_and_only_failures_add_up() -> None:
    """Issue 8, finding 4: successes counted against the address and were never cleared there."""
    throttle = Throttle(MemoryThrottleStore())
    address = address_key("192.0.2.7")
    for n in range(30):  # right passwords, all at one instant: none may leave a count
        attempt = await throttle.count([(address, POLICY), (account_key(f"u{n}"), POLICY)], NOW)
        assert attempt.retry_after is None
        await throttle.take_back(attempt, clear={account_key(f"u{n}")})
    # Failures still count as on a fresh address: three free, the fourth sets the first wait.
    for n in range(4):
        assert (
            await throttle.attempt([(address, POLICY), (account_key(f"x{n}"), POLICY)], NOW) is None
        )
    assert await throttle.attempt([(address, POLICY)], NOW) == 2


async def test_a_success_leaves_earlier_failures_exactly_as_they_were() -> None:
    store = MemoryThrottleStore()
    throttle = Throttle(store)
    keys = [(address_key("192.0.2.7"), POLICY)]
    for _ in range(4):
        await throttle.attempt(keys, NOW)
    before = dict(store._entries)
    attempt = await throttle.count(keys, NOW + 2)  # after the wait the fourth failure set
    assert attempt.retry_after is None
    await throttle.take_back(attempt)
    assert store._entries == before  # not even the time of the last failure moved


def test_take_back_after_other_attempts_counted_removes_one() -> None:
    state = attempts(2)
    assert state is not None
    _, mine = register_attempt(state, NOW, POLICY)
    assert mine is not None
    counted = Counted("k", state, mine)
    _, theirs = register_attempt(mine, NOW + 5, POLICY)  # a failure counted after ours
    assert theirs is not None
    assert take_back(mine, counted) == state
    assert take_back(theirs, counted) == ThrottleState(3, NOW + 5, theirs.blocked_until)
    assert take_back(None, counted) is None


async def test_concurrent_attempts_cannot_slip_through_when_some_succeed() -> None:
    """Counting before the check keeps a burst bounded: successes give back only their own."""
    throttle = Throttle(MemoryThrottleStore())
    keys = [(address_key("192.0.2.7"), POLICY)]

    async def guess(right: bool) -> int | None:
        attempt = await throttle.count(keys, NOW)
        await asyncio.sleep(0)  # the password check: every other attempt gets counted meanwhile
        if attempt.retry_after is None and right:
            await throttle.take_back(attempt)
        return attempt.retry_after

    results = await asyncio.gather(*(guess(right=n % 2 == 0) for n in range(50)))
    assert results.count(None) == POLICY.free_attempts + 1


async def test_memory_store_is_bounded() -> None:
    store = MemoryThrottleStore(max_entries=10)
    throttle = Throttle(store)
    for i in range(100):
        await throttle.attempt([(f"k{i}", POLICY)], NOW)
    assert len(store._entries) == 10


def test_unknown_user_and_wrong_password_are_checked_alike() -> None:
    """The login step verifies an argon2 hash for unknown users too; both give False."""
    stored = hash_password("correct horse")
    assert verify_password("correct horse", stored)
    assert not verify_password("wrong", stored)
    assert not verify_password("wrong", None)


class _FailingAfter(MemoryThrottleStore):
    """A store whose keys other than `working` cannot be counted (its failure mode: closed)."""

    def __init__(self, working: str) -> None:
        super().__init__()
        self.working = working

    async def update_throttle(self, key, change):  # type: ignore[no-untyped-def]
        if key != self.working:
            raise ThrottleUnavailable(3)
        return await super().update_throttle(key, change)


async def test_a_store_that_cannot_count_refuses_as_unavailable_and_gives_counts_back() -> None:
    address = address_key("192.0.2.7")
    store = _FailingAfter(address)
    throttle = Throttle(store)
    attempt = await throttle.count([(address, POLICY), (account_key("alice"), POLICY)], NOW)
    assert attempt.unavailable
    assert attempt.retry_after == 3
    assert attempt.counted == ()
    assert store._entries == {}  # the address's count was given back: the attempt never ran


class _FailingOpen(MemoryThrottleStore):
    """A store that lets attempts through without counting them (its failure mode: open)."""

    async def update_throttle(self, key, change):  # type: ignore[no-untyped-def]
        return None


async def test_a_store_that_fails_open_lets_the_attempt_through_uncounted() -> None:
    throttle = Throttle(_FailingOpen())
    attempt = await throttle.count([(account_key("alice"), POLICY)], NOW)
    assert attempt == Attempt(None, ())
    await throttle.take_back(attempt, clear={account_key("alice")})
