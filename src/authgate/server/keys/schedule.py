"""The signing-key schedule as pure decisions (no I/O): which key signs, which are published, and
what the next maintenance or rotation must change.

Each algorithm has its own chain of keys. A key is published (in the JWKS) from `created_at`, signs
from `activate_at`, stops at `retire_at` (its successor's `activate_at`) and leaves the JWKS at
`remove_at`, after every token it signed has expired. The key that signs at time t is the key of
the chain with the latest `activate_at` <= t: every process derives the same answer from the same
rows, so a schedule written under the database lock is followed by all of them without talking.
A key never signs before `created_at + policy.activation_delay`: by then every process serves it and
every verifier's cached JWKS (max-age) has expired (RFC 7517 §5, RFC 8414 §2 `jwks_uri`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from authgate.server.config import KeyPolicy
from authgate.server.models import SigningKeyRecord

__all__ = [
    "KeyPlan",
    "NewKey",
    "Reschedule",
    "active_key",
    "plan_maintenance",
    "plan_revocation",
    "plan_rotation",
    "published_keys",
]


@dataclass(frozen=True, slots=True)
class NewKey:
    """Generate a key for `alg` that signs from `activate_at`."""

    alg: str
    activate_at: int


@dataclass(frozen=True, slots=True)
class Reschedule:
    """Set a stored key's times."""

    kid: str
    activate_at: int
    retire_at: int | None
    remove_at: int | None


@dataclass(frozen=True, slots=True)
class KeyPlan:
    """Changes to apply together under the schedule lock."""

    create: tuple[NewKey, ...] = ()
    reschedule: tuple[Reschedule, ...] = ()
    delete: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """True when nothing needs to change."""
        return not (self.create or self.reschedule or self.delete)


@dataclass(slots=True)
class _Builder:
    create: list[NewKey] = field(default_factory=list)
    reschedule: list[Reschedule] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)

    def build(self) -> KeyPlan:
        return KeyPlan(tuple(self.create), tuple(self.reschedule), tuple(self.delete))


def _chain(records: Iterable[SigningKeyRecord], alg: str, now: float) -> list[SigningKeyRecord]:
    keys = [r for r in records if r.alg == alg and r.state(now) != "removed"]
    return sorted(keys, key=lambda r: (r.activate_at, r.kid))


def active_key(
    records: Sequence[SigningKeyRecord], alg: str, now: float
) -> SigningKeyRecord | None:
    """The key that signs `alg` tokens at `now`, or None when the chain has none yet."""
    current = None
    for record in _chain(records, alg, now):
        if record.activate_at <= now:
            current = record
    if current is None or current.state(now) != "active":
        return None
    return current


def published_keys(records: Sequence[SigningKeyRecord], now: float) -> list[SigningKeyRecord]:
    """The keys in the JWKS at `now`: every stored key that is not yet removed."""
    live = [r for r in records if r.state(now) != "removed"]
    return sorted(live, key=lambda r: (r.alg, r.activate_at, r.kid))


def plan_maintenance(records: Sequence[SigningKeyRecord], policy: KeyPolicy, now: int) -> KeyPlan:
    """What the scheduled rotation needs at `now`: first keys, successors, retirements, removals."""
    plan = _Builder()
    plan.delete.extend(r.kid for r in records if r.state(now) == "removed")
    for alg in policy.algorithms:
        chain = _chain(records, alg, now)
        current = active_key(records, alg, now)
        pending = [r for r in chain if r.activate_at > now]
        if current is None and not pending:
            # A new chain: no verifier can hold a token of it yet, so its first key signs at once.
            plan.create.append(NewKey(alg, now))
        elif (
            current is not None
            and not pending
            and (now >= current.activate_at + policy.rotation_period - policy.publication_lead)
        ):
            start = max(current.activate_at + policy.rotation_period, now + policy.activation_delay)
            _add_successor(plan, current, alg, start, policy)
    for alg in {r.alg for r in records} - set(policy.algorithms):
        # Algorithms no longer configured: their keys stop signing now and retire normally.
        current = active_key(records, alg, now)
        if current is not None:
            plan.reschedule.append(
                Reschedule(current.kid, current.activate_at, now, now + policy.retirement_period)
            )
    return plan.build()


def plan_rotation(
    records: Sequence[SigningKeyRecord], policy: KeyPolicy, alg: str, now: int
) -> tuple[KeyPlan, int, str | None]:
    """Bring the next rotation of `alg` forward, as early as is safe; return the plan, the time
    the next key will start signing, and that key's kid when it exists already.

    An already published successor signs once it has been published for the activation delay
    (and no sooner than one refresh interval from now, so every process switches at the same
    instant); otherwise a new key is created that signs after the activation delay.
    """
    plan = _Builder()
    current = active_key(records, alg, now)
    pending = [r for r in _chain(records, alg, now) if r.activate_at > now]
    if pending:
        successor = pending[0]
        start = max(successor.created_at + policy.activation_delay, now + policy.refresh_interval)
        start = min(start, successor.activate_at)
        if start != successor.activate_at:
            plan.reschedule.append(
                Reschedule(successor.kid, start, successor.retire_at, successor.remove_at)
            )
        if current is not None:
            plan.reschedule.append(
                Reschedule(
                    current.kid, current.activate_at, start, start + policy.retirement_period
                )
            )
        return plan.build(), start, successor.kid
    start = now + policy.activation_delay
    if current is None:
        plan.create.append(NewKey(alg, start))
    else:
        _add_successor(plan, current, alg, start, policy)
    return plan.build(), start, None


def plan_revocation(
    records: Sequence[SigningKeyRecord], policy: KeyPolicy, kid: str, now: int
) -> tuple[KeyPlan, str | None]:
    """Revoke key `kid` at once (a compromised key): it is deleted, so it leaves the JWKS and
    verifies nothing more; if it was signing, its successor signs from `now`, the publication
    lead waived (a verifier whose cached JWKS lacks the successor refetches on the unknown kid).
    Return the plan and the kid that signs in its place when that key exists already (None when
    a new key is created or nothing has to sign in its place). `LookupError` for an unknown kid.
    """
    revoked = next((r for r in records if r.kid == kid), None)
    if revoked is None:
        raise LookupError(f"no signing key with kid {kid!r}")
    plan = _Builder(delete=[kid])
    current = active_key(records, revoked.alg, now)
    pending = [r for r in _chain(records, revoked.alg, now) if r.activate_at > now and r.kid != kid]
    if current is not None and current.kid == kid:
        if pending:
            successor = pending[0]
            plan.reschedule.append(
                Reschedule(successor.kid, now, successor.retire_at, successor.remove_at)
            )
            return plan.build(), successor.kid
        if revoked.alg in policy.algorithms:
            plan.create.append(NewKey(revoked.alg, now))
        return plan.build(), None
    if current is not None and not pending and current.retire_at is not None:
        # The revoked key was the one about to take over: the current key keeps signing until
        # maintenance schedules a new successor, as if no rotation had been planned.
        plan.reschedule.append(Reschedule(current.kid, current.activate_at, None, None))
    return plan.build(), None


def _add_successor(
    plan: _Builder, current: SigningKeyRecord, alg: str, start: int, policy: KeyPolicy
) -> None:
    plan.create.append(NewKey(alg, start))
    plan.reschedule.append(
        Reschedule(current.kid, current.activate_at, start, start + policy.retirement_period)
    )
