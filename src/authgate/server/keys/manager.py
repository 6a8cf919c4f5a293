"""Signing keys at run time: the I/O shell around `schedule`.

Each process keeps a snapshot of the stored keys (private parts opened once), reloads it every
`refresh_interval`, and applies the schedule's decisions under the database lock, where they are
re-derived from the rows as they are inside the lock, so several processes never create two
successors. Private keys are sealed with a key derived from the server secret before they are
stored (AES-256-GCM, kid and algorithm bound as associated data).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from authgate.jose import JWK, JWKSet
from authgate.oauth.errors import TemporarilyUnavailable
from authgate.server import audit
from authgate.server.config import KeyPolicy
from authgate.server.keys.schedule import (
    KeyPlan,
    active_key,
    plan_maintenance,
    plan_revocation,
    plan_rotation,
    published_keys,
)
from authgate.server.models import SigningKeyRecord
from authgate.server.secret_key import ServerSecret
from authgate.server.storage.protocols import AuditStore, KeyScheduleSession, SigningKeyStore

__all__ = ["REVOCATION_CHECK", "KeyManager", "NoSigningKey", "Rotation"]

_log = logging.getLogger("authgate.server.keys")
_Event = tuple[str, str, dict[str, Any]]  # audit kind, key id, details

# How often (seconds) each process looks for revoked keys between its full reloads: the bound on
# how long another process may still sign with, publish or accept a key `keys revoke` removed.
REVOCATION_CHECK = 5.0

# How each algorithm's keys are generated (RFC 7518 §3.3/§3.4/§3.5, RFC 8037).
_GENERATE: dict[str, tuple[str, dict[str, object]]] = {
    "RS256": ("RSA", {"size": 2048}),
    "PS256": ("RSA", {"size": 2048}),
    "ES256": ("EC", {"crv": "P-256"}),
    "EdDSA": ("OKP", {"crv": "Ed25519"}),
}


class NoSigningKey(TemporarilyUnavailable):
    """No key of this algorithm signs right now (its chain's first key is not active yet)."""


@dataclass(frozen=True, slots=True)
class Rotation:
    """The outcome of bringing a rotation forward for one algorithm."""

    alg: str
    kid: str
    activate_at: int


class KeyManager:
    """Holds the signing keys of one process and keeps them on schedule."""

    def __init__(
        self,
        store: SigningKeyStore,
        secret: ServerSecret,
        policy: KeyPolicy,
        clock: Callable[[], float],
        *,
        audit_store: AuditStore | None = None,
    ) -> None:
        """`audit_store`: where key creations, removals and rotations are recorded (none: only
        logged)."""
        self._store = store
        self._audit_store = audit_store
        self._secret = secret
        self._policy = policy
        self._clock = clock
        self._records: tuple[SigningKeyRecord, ...] = ()
        self._private: dict[str, JWK] = {}
        self._jwks_body = b'{"keys":[]}'
        self._jwks_kids: tuple[str, ...] = ()
        self._verification = JWKSet()
        self._verification_kids: tuple[str, ...] = ()
        # Per algorithm: (the records it was chosen from, from, until, the key). The active key
        # only changes when the records do or when one of their instants (activation, retirement,
        # removal) passes, so it is chosen again only then, not on every token.
        self._active: dict[str, tuple[tuple[SigningKeyRecord, ...], float, float, JWK]] = {}

    # -- reading ----------------------------------------------------------------------------------

    def signing_key(self, alg: str) -> JWK:
        """The private key that signs `alg` tokens now; `NoSigningKey` when there is none."""
        now = self._clock()
        records = self._records
        chosen = self._active.get(alg)
        if chosen is not None and chosen[0] is records and chosen[1] <= now < chosen[2]:
            return chosen[3]
        record = active_key(records, alg, now)
        if record is None:
            raise NoSigningKey(f"no {alg} signing key is active", debug=alg)
        key = self._private[record.kid]
        self._active[alg] = (records, now, _next_instant(records, now), key)
        return key

    def jwks_body(self) -> bytes:
        """The JWKS document (public keys only) as JSON bytes."""
        live = published_keys(self._records, self._clock())
        kids = tuple(r.kid for r in live)
        if kids != self._jwks_kids:
            keys = [dict(r.public_jwk) for r in live]
            self._jwks_body = json.dumps({"keys": keys}, separators=(",", ":")).encode()
            self._jwks_kids = kids
        return self._jwks_body

    def verification_keys(self) -> JWKSet:
        """Every published key, for checking tokens this server signed."""
        live = published_keys(self._records, self._clock())
        kids = tuple(r.kid for r in live)
        if kids != self._verification_kids:
            self._verification = JWKSet(self._private[r.kid].public() for r in live)
            self._verification_kids = kids
        return self._verification

    def records(self) -> tuple[SigningKeyRecord, ...]:
        """The stored keys as of the last reload."""
        return self._records

    # -- keeping on schedule ----------------------------------------------------------------------

    async def refresh(self) -> None:
        """Reload the keys from the store (opening only those not seen before)."""
        self._install(await self._store.list_signing_keys())

    async def maintain(self) -> None:
        """Reload; if the schedule needs a change, make it under the database lock."""
        records = await self._store.list_signing_keys()
        if plan_maintenance(records, self._policy, int(self._clock())).empty:
            self._install(records)
            return
        events: list[_Event] = []
        async with self._store.key_schedule_lock() as session:
            records = await session.list_signing_keys()
            plan = plan_maintenance(records, self._policy, int(self._clock()))
            await self._apply(session, plan, events)
        await self._audit(events, "server")
        await self.refresh()

    async def rotate(self, algorithms: tuple[str, ...] | None = None) -> list[Rotation]:
        """Bring the next rotation forward for each algorithm (default: all configured)."""
        out = []
        events: list[_Event] = []
        async with self._store.key_schedule_lock() as session:
            for alg in algorithms or self._policy.algorithms:
                records = await session.list_signing_keys()
                plan, start, successor = plan_rotation(
                    records, self._policy, alg, int(self._clock())
                )
                created = await self._apply(session, plan, events)
                out.append(Rotation(alg, successor or created[0].kid, start))
        events.extend(
            ("key.rotated", r.kid, {"alg": r.alg, "signs_from": r.activate_at}) for r in out
        )
        await self._audit(events, "admin")
        await self.refresh()
        return out

    async def revoke(self, kid: str) -> str:
        """Revoke key `kid` at once (see `plan_revocation`); return the kid that now signs its
        algorithm in its place ('' when none has to). `LookupError` for an unknown kid."""
        events: list[_Event] = []
        async with self._store.key_schedule_lock() as session:
            records = await session.list_signing_keys()
            plan, successor = plan_revocation(records, self._policy, kid, int(self._clock()))
            created = await self._apply(session, plan, events)
        _log.warning("revoked signing key %s", kid)
        signs_now = successor or (created[0].kid if created else "")
        events.append(("key.revoked", kid, {"successor": signs_now} if signs_now else {}))
        await self._audit(events, "admin")
        await self.refresh()
        return signs_now

    async def run(self) -> None:
        """Keep the schedule forever (a background task of the server)."""
        check = min(REVOCATION_CHECK, float(self._policy.refresh_interval))
        loop = asyncio.get_running_loop()
        # Jitter spreads the processes' reloads so they do not hit the database together.
        due = loop.time() + self._policy.refresh_interval * random.uniform(0.8, 1.0)  # noqa: S311
        while True:
            await asyncio.sleep(min(check, max(0.0, due - loop.time())))
            if loop.time() < due:
                try:
                    await self._drop_revoked()
                except Exception:  # noqa: BLE001 - the full reload below reports failures
                    _log.debug("revoked-key check failed", exc_info=True)
                continue
            due = loop.time() + self._policy.refresh_interval * random.uniform(0.8, 1.0)  # noqa: S311
            try:
                await self.maintain()
            except Exception:  # noqa: BLE001 - a background loop must survive any failure
                _log.exception("signing key maintenance failed; will retry")

    async def _drop_revoked(self) -> None:
        # A key gone from the store before its scheduled removal was revoked: reload at once so
        # this process stops signing with it, publishing it and accepting its tokens.
        records = await self._store.list_signing_keys()
        stored = {r.kid for r in records}
        now = self._clock()
        # (A key deleted after its scheduled removal is no news: it left the JWKS already.)
        if any(r.kid not in stored and r.state(now) != "removed" for r in self._records):
            _log.warning("a signing key was revoked; reloading the keys")
            self._install(records)

    async def _apply(
        self, session: KeyScheduleSession, plan: KeyPlan, events: list[_Event]
    ) -> list[SigningKeyRecord]:
        """Carry out `plan`; add its audit events to `events` (recorded once the database lock
        is released: on SQLite the lock is the one write lock, which the audit write needs)."""
        created = []
        now = int(self._clock())
        for new in plan.create:
            record = await asyncio.to_thread(self._generate, new.alg, now, new.activate_at)
            await session.insert_signing_key(record)
            created.append(record)
            _log.info(
                "created %s signing key %s, signing from %d", new.alg, record.kid, new.activate_at
            )
            events.append(
                ("key.created", record.kid, {"alg": new.alg, "signs_from": new.activate_at})
            )
        for change in plan.reschedule:
            await session.update_key_schedule(
                change.kid,
                activate_at=change.activate_at,
                retire_at=change.retire_at,
                remove_at=change.remove_at,
            )
        for kid in plan.delete:
            await session.delete_signing_key(kid)
            _log.info("removed signing key %s", kid)
            events.append(("key.removed", kid, {}))
        return created

    async def _audit(self, events: list[_Event], actor: str) -> None:
        if self._audit_store is None:
            return
        for kind, kid, details in events:
            now = int(self._clock())
            await audit.record(self._audit_store, kind, kid, now=now, actor=actor, **details)

    def _generate(self, alg: str, now: int, activate_at: int) -> SigningKeyRecord:
        kty, params = _GENERATE[alg]
        key = JWK.generate(kty, alg=alg, use="sig", **params)  # type: ignore[arg-type]
        kid = key.thumbprint()
        sealed = self._secret.seal(
            json.dumps(key.to_dict(private=True)).encode(), _associated(kid, alg)
        )
        return SigningKeyRecord(
            kid=kid,
            alg=alg,
            public_jwk=key.public().to_dict(),
            sealed_private_key=sealed,
            created_at=now,
            activate_at=activate_at,
        )

    def _install(self, records: list[SigningKeyRecord]) -> None:
        private = {}
        for record in records:
            key = self._private.get(record.kid)
            if key is None:
                opened = self._secret.open(
                    record.sealed_private_key, _associated(record.kid, record.alg)
                )
                key = JWK.from_dict(json.loads(opened))
            private[record.kid] = key
        self._private = private
        self._records = tuple(records)


def _next_instant(records: Iterable[SigningKeyRecord], now: float) -> float:
    """The first activation, retirement or removal after `now` (infinity when none is due): until
    then every key's state, and so the active key of each algorithm, stays as at `now`."""
    instants = (
        instant
        for record in records
        for instant in (record.activate_at, record.retire_at, record.remove_at)
        if instant is not None and instant > now
    )
    return min(instants, default=math.inf)


def _associated(kid: str, alg: str) -> bytes:
    return f"authgate signing key\n{kid}\n{alg}".encode()
