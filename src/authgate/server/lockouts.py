"""Lockouts after failed client authentication (RFC 6749 §2.3.1: the server "MUST protect any
endpoint utilizing it against brute force attacks"), per client id and per client address.

A key (a client id, an address) that fails `failures` times within `window` is locked out for
`lockout` seconds; each failure while its past lockouts are remembered locks it out at once for
twice as long as the last, up to `max_lockout`. A lockout ends by itself; the memory of lockouts
fades, one per `max_lockout` without a new one, and then the key has its `failures` again.

While a key is locked out, every client authentication it applies to is refused with the same 429:
a right secret too. If a right secret went through, a guesser would keep guessing at full speed
through the lockout (wrong: 429, right: 200), so the lockout would protect nothing. The
credentials are checked first (client secrets in constant time, so the check reveals nothing by
its timing either), and then one store operation decides: after a success, "is a key locked out?
else count the rate limit and clear the id's failures" (`Limiter.admit`); after a failure, "count
it, start a lockout where the failures ran out, and answer with the lockout" (`Limiter.fail`).
A wrong guess during a lockout is counted as a failure against the locked key (it neither grows
nor restarts the lockout) and gets the very answer a right one gets.

The price is that anyone can lock a client id out by sending wrong secrets
with it (client ids are not secret); that is why the per-client-id lockout counts and refuses only
client secrets (`client_secret_basic`, `client_secret_post`): a `private_key_jwt` assertion or a
public client has nothing to guess and is never locked out by its id. The per-address lockout
counts every failed method and refuses every method from the address.

A successful authentication clears the client id's failure count (never the address's, or one
valid client would reset an attacker's address); it cannot happen during a lockout, and it leaves
the memory of past lockouts, so an attacker interleaving with a working client is locked out
again after one failure.

Everything lives in the limiter's store as three GCRA keys per key (`authgate.limits.lockouts`),
so in Redis it is shared by every process, and every key expires by itself: the failures (a burst
of `failures`, one regained per `window / failures`), the lockouts remembered (one forgotten per
`max_lockout`), and the lockout (a bucket of one, full again when the lockout ends). Each decision
is one atomic store operation (one Lua script call in Redis), so a client-authenticated request
costs one Redis round trip, its rate limit included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from authgate.limits import Decision, Limiter, Refusal, refusal
from authgate.limits.keys import KeyPart, address_part
from authgate.limits.limiter import AdmitPlan, Ask
from authgate.limits.lockouts import Lockout
from authgate.server.config import LockoutSettings

__all__ = ["ClientAuthLimits", "Lockout", "admitted", "lockout_for_settings"]

LockAsk = tuple[Lockout, tuple[KeyPart, ...]]
_NONE: tuple[list[Decision], list[Decision]] = ([], [])


def admitted(
    answer: tuple[list[Decision], list[Decision]],
) -> tuple[Refusal | None, list[Decision]]:
    """`Limiter.admit`'s answer as `ClientAuthLimits.succeeded` gives it."""
    locked, decisions = answer
    if locked:
        return refusal(locked), []
    for decision in decisions:
        if not decision.allowed:
            return refusal(decisions), decisions
    return None, decisions  # admitted (without `refusal`'s lists: every request pays here)


def lockout_for_settings(name: str, settings: LockoutSettings) -> Lockout | None:
    """The lockout named `name` (its failures' limit; the others add a suffix), or None when the
    settings turn it off."""
    if not settings.enabled:
        return None
    return Lockout.build(
        name,
        failures=settings.failures,
        window=settings.window,
        first=settings.lockout,
        longest=settings.max_lockout,
        mode=settings.on_store_failure,
    )


@dataclass(slots=True)
class ClientAuthLimits:
    """Both lockouts (per client id for client secrets, per address for every method)."""

    limiter: Limiter
    client: Lockout | None
    address: Lockout | None

    def _keys(self, client_id: str | None, address: str) -> list[LockAsk]:
        keys: list[LockAsk] = []
        if self.address is not None:
            keys.append((self.address, ("address", address_part(address))))
        if self.client is not None and client_id is not None:
            keys.append((self.client, ("client", client_id)))
        return keys

    def plan(self, client_id: str | None, address: str, hits: Sequence[Ask]) -> AdmitPlan | None:
        """What `succeeded` asks the store, with its keys built (`Limiter.plan`); None when
        nothing is asked (the lockouts off and no limit)."""
        keys = self._keys(client_id, address)
        if not keys and not hits:
            return None
        clear = keys[-1] if client_id is not None and self.client is not None else None
        return self.limiter.plan(keys, hits, clear)

    async def succeeded(
        self, client_id: str | None, address: str, hits: Sequence[Ask]
    ) -> tuple[Refusal | None, list[Decision]]:
        """After a successful client authentication, in one store operation: refused (429, the
        answer a wrong secret gets) when a key is locked out; else `hits` (the rate limits)
        counted, their refusal if any and their decisions, and the failures of the client id
        cleared if it has any (never the address's; the lockouts remembered stay and fade).
        `client_id` is the id a request authenticating with a client secret names (None for
        other methods)."""
        return await self.admit(self.plan(client_id, address, hits))

    async def admit(self, plan: AdmitPlan | None) -> tuple[Refusal | None, list[Decision]]:
        """`succeeded` of a plan (`plan`; None: nothing to ask)."""
        if plan is None:
            return None, []
        limiter = self.limiter
        answer = limiter.admit_planned_nowait(plan)
        if answer is None:  # a store with I/O (Redis): one call
            answer = await limiter.admit_planned(plan)
        return admitted(answer)

    async def failed(self, client_id: str | None, address: str) -> Refusal | None:
        """After a failed client authentication, in one store operation: count it against every
        key (only against the locked ones while a key is locked out); the refusal (429) when a
        key is locked out now, else None (the caller answers 401)."""
        keys = self._keys(client_id, address)
        if not keys:
            return None
        limiter = self.limiter
        shown = limiter.fail_nowait(keys)
        if shown is None:
            shown = await limiter.fail(keys)
        return refusal([d for d in shown if d is not None])
