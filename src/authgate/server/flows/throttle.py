"""Throttling of password guessing and user-code guessing by exponential backoff (RFC 6749 §10.10
and §10.12 "brute force"; RFC 8628 §5.1 and §5.2; OWASP Authentication Cheat Sheet).

Each key (an account, a client address, a signed-in user) has a few free attempts; after them,
every attempt makes the next one wait twice as long, up to `max_delay`, and the record is forgotten
after `forget_after` seconds without a failure. There is no permanent lockout, which would hand
attackers a denial of service. Only failures count, but an attempt is counted *before* the
password or code is checked, so concurrent guesses cannot slip between check and count; a success
then takes its own count back (`Throttle.take_back`), leaving the key as if it had never been
tried. Otherwise everyone behind one address (a NAT, a proxy) would wait after 20 sign-ins.

Keys are the same whether or not the account exists (the username as typed, case-folded), and the
caller checks an argon2 hash for unknown users too (`passwords.verify_password` with no hash), so
neither the answer nor its timing tells an unknown user from a wrong password. IPv6 addresses are
throttled by /64, the block one subscriber usually holds.
"""

from __future__ import annotations

import contextlib
import ipaddress
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from authgate.server.models import ThrottleState
from authgate.server.storage.protocols import ThrottleUnavailable

if TYPE_CHECKING:
    from authgate.server.storage.protocols import ThrottleStore

__all__ = [
    "LOGIN_ACCOUNT_POLICY",
    "LOGIN_ADDRESS_POLICY",
    "USER_CODE_POLICY",
    "Attempt",
    "Counted",
    "Throttle",
    "ThrottlePolicy",
    "account_key",
    "address_key",
    "just_blocked",
    "register_attempt",
    "take_back",
]


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """`free_attempts` without delay, then `base_delay * 2**n` seconds (n = 0, 1, …) up to
    `max_delay`; everything forgotten `forget_after` seconds after the last failure."""

    free_attempts: int
    base_delay: int
    max_delay: int
    forget_after: int

    def __post_init__(self) -> None:
        if self.free_attempts < 1 or not 0 < self.base_delay <= self.max_delay:
            raise ValueError("throttle: need free_attempts >= 1 and 0 < base_delay <= max_delay")
        if self.forget_after < self.max_delay:
            raise ValueError("throttle: forget_after must be at least max_delay")


LOGIN_ACCOUNT_POLICY = ThrottlePolicy(
    free_attempts=5, base_delay=2, max_delay=900, forget_after=86400
)
# Many people can share one address (NAT), so addresses get more free attempts.
LOGIN_ADDRESS_POLICY = ThrottlePolicy(
    free_attempts=20, base_delay=1, max_delay=900, forget_after=86400
)
USER_CODE_POLICY = ThrottlePolicy(free_attempts=5, base_delay=2, max_delay=600, forget_after=3600)


def register_attempt(
    state: ThrottleState | None, now: int, policy: ThrottlePolicy
) -> tuple[int | None, ThrottleState | None]:
    """Count one attempt: `(None, new_state)` when it may proceed, `(retry_after, state)` when the
    key must wait `retry_after` more seconds (a refused attempt is not counted)."""
    if state is not None and now - state.last_failure >= policy.forget_after:
        state = None
    if state is not None and now < state.blocked_until:
        return state.blocked_until - now, state
    failures = 1 if state is None else state.failures + 1
    excess = failures - policy.free_attempts
    delay = 0 if excess <= 0 else min(policy.base_delay << min(excess - 1, 30), policy.max_delay)
    return None, ThrottleState(failures, now, now + delay)


@dataclass(frozen=True, slots=True)
class Counted:
    """One key's provisional count: its state just before and just after."""

    key: str
    before: ThrottleState | None
    after: ThrottleState


@dataclass(frozen=True, slots=True)
class Attempt:
    """An attempt counted against its keys (`Throttle.count`): `retry_after` seconds to wait when
    a key refused it (the keys before that one were counted), else None. `unavailable`: refused
    because the store could not count it (answer 503, not 429: the client did nothing wrong)."""

    retry_after: int | None
    counted: tuple[Counted, ...]
    unavailable: bool = False


def just_blocked(counted: Counted, policy: ThrottlePolicy) -> bool:
    """True when this attempt used up the key's free attempts: the first one that makes it wait
    (so a flood of failures reports the crossing once, not once per attempt)."""
    return counted.after.failures == policy.free_attempts + 1


def take_back(state: ThrottleState | None, counted: Counted) -> ThrottleState | None:
    """The key's state without a successful attempt's count.

    Unchanged since: exactly the state before it (a success leaves no trace, not even a later
    `last_failure`). Counted again since by other attempts: one failure fewer, their times and
    waits kept (a wait set while our count was included stays; erring towards waiting).
    """
    if state == counted.after:
        return counted.before
    if state is None or state.failures <= 1:
        return None
    return replace(state, failures=state.failures - 1)


def account_key(username: str) -> str:
    """The throttle key of a username as typed (NFKC, case-folded), whether the account exists
    or not."""
    return "account:" + unicodedata.normalize("NFKC", username).casefold()


def address_key(address: str) -> str:
    """The throttle key of a client address: the address itself, or its /64 for IPv6."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "address:" + address[:100]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return "address:" + str(ip.ipv4_mapped)
        return "address:" + str(ipaddress.IPv6Network((ip, 64), strict=False))
    return "address:" + str(ip)


class Throttle:
    """The async shell: applies `register_attempt` to several keys through a `ThrottleStore`."""

    def __init__(self, store: ThrottleStore) -> None:
        self._store = store

    async def count(self, keys: Sequence[tuple[str, ThrottlePolicy]], now: int) -> Attempt:
        """Count an attempt against every key in order, before it is checked; stop at the first
        key that refuses. A success hands the result to `take_back`. When the store cannot count
        and fails closed, the attempt is refused as `unavailable`.

        Put the address first: an address that is already refused then adds nothing to the
        account's count, so one attacker cannot slow a victim's account down further.
        """
        counted: list[Counted] = []
        for key, policy in keys:
            seen: list[tuple[ThrottleState | None, ThrottleState | None]] = []

            def change(
                state: ThrottleState | None,
                policy: ThrottlePolicy = policy,
                seen: list[tuple[ThrottleState | None, ThrottleState | None]] = seen,
            ) -> tuple[int | None, ThrottleState | None]:
                retry_after, new = register_attempt(state, now, policy)
                seen.append((state, new))  # a store may apply it again: the last call stands
                return retry_after, new

            try:
                retry_after = await self._store.update_throttle(key, change)
            except ThrottleUnavailable as exc:
                # Refused without a count of its own: the keys already counted give theirs back.
                await self.take_back(Attempt(None, tuple(counted)))
                return Attempt(exc.retry_after, (), unavailable=True)
            if retry_after is not None:
                return Attempt(retry_after, tuple(counted))
            # Nothing seen: a store that could not count let the attempt through (fail open).
            if seen and seen[-1][1] is not None:  # always, for an attempt counted
                counted.append(Counted(key, seen[-1][0], seen[-1][1]))
        return Attempt(None, tuple(counted))

    async def attempt(self, keys: Sequence[tuple[str, ThrottlePolicy]], now: int) -> int | None:
        """`count`, for callers that only need the seconds to wait."""
        return (await self.count(keys, now)).retry_after

    async def take_back(self, attempt: Attempt, *, clear: Collection[str] = ()) -> None:
        """After a success: remove the attempt's count from every key, so that successes never
        count. Keys in `clear` are forgotten altogether (the account whose password was right, the
        user who typed a valid code); never the address key, or one valid account would reset an
        attacker's address."""
        for counted in attempt.counted:
            if counted.key in clear:
                await self._store.clear_throttle(counted.key)
                continue

            def change(
                state: ThrottleState | None, counted: Counted = counted
            ) -> tuple[int | None, ThrottleState | None]:
                return None, take_back(state, counted)

            # If the store cannot count, the success stands and its count stays (towards waiting).
            with contextlib.suppress(ThrottleUnavailable):
                await self._store.update_throttle(counted.key, change)

    async def succeeded(self, key: str) -> None:
        """Clear a key after a successful sign-in or a valid code (not the address key: one valid
        account must not reset an attacker's address)."""
        await self._store.clear_throttle(key)
