"""Refresh tokens: rotation, reuse detection, the grace window, lifetimes, narrowing, revocation
(RFC 6749 §6, §10.4; RFC 9700 §4.14.2; RFC 7009 §2.1)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from authgate.oauth.errors import InvalidGrant, InvalidScope, InvalidTarget
from authgate.server.flows.refresh_tokens import (
    ClientGone,
    RefreshPolicy,
    Reject,
    Replay,
    Rotate,
    decide_refresh,
    exchange_refresh_token,
    new_family,
    revoke_family,
    revoke_refresh_token,
    rotate_family,
    should_issue_refresh_token,
)
from authgate.server.models import RefreshFamily
from authgate.server.secret_key import generate_token
from authgate.server.storage.memory import MemoryGrantRevoker, MemoryRefreshStore
from tests.support.flows import NOW, keyed_hash

POLICY = RefreshPolicy(idle_lifetime=3600, absolute_lifetime=86400, grace_period=10)
SCOPES = ("openid", "offline_access", "orders:read", "orders:write")


def family() -> tuple[str, RefreshFamily]:
    return new_family(
        hash_token=keyed_hash,
        grant_id="grant-1",
        client_id="web-app",
        user_id="alice",
        scopes=SCOPES,
        audiences=["https://api.example.com"],
        auth_time=NOW - 10,
        amr=["pwd"],
        now=NOW,
    )


def decide(
    fam: RefreshFamily,
    generation: int,
    now: int,
    *,
    client_id: str = "web-app",
    scopes: tuple[str, ...] | None = None,
) -> tuple[Rotate | Replay | Reject, RefreshFamily]:
    return decide_refresh(
        fam, generation, client_id=client_id, scopes=scopes, now=now, policy=POLICY
    )


def rotated(fam: RefreshFamily, now: int, response: bytes = b"sealed-1") -> RefreshFamily:
    return rotate_family(
        fam,
        new_token_hash=keyed_hash(f"t{now}"),
        sealed_response=response,
        access_scopes=fam.scopes,
        now=now,
    )


# -- issuance -----------------------------------------------------------------------------------


def test_issue_only_with_grant_and_offline_access_or_configuration() -> None:
    assert should_issue_refresh_token(["authorization_code", "refresh_token"], ["offline_access"])
    assert not should_issue_refresh_token(["authorization_code", "refresh_token"], ["openid"])
    assert should_issue_refresh_token(["refresh_token"], [], always=True)
    assert not should_issue_refresh_token(["authorization_code"], ["offline_access"], always=True)


def test_new_family_stores_only_the_hash() -> None:
    token, fam = family()
    assert len(token) == 43
    assert fam.current_hash == keyed_hash(token)
    assert token not in repr(fam)
    assert (fam.generation, fam.created_at, fam.current_issued_at) == (0, NOW, NOW)
    assert fam.scopes == SCOPES


# -- rotation -------------------------------------------------------------------------------------


def test_current_token_rotates() -> None:
    _, fam = family()
    decision, same = decide(fam, 0, NOW + 100)
    assert decision == Rotate(SCOPES)
    assert same is fam
    after = rotated(fam, NOW + 100)
    assert (after.generation, after.current_issued_at, after.rotated_at) == (
        1,
        NOW + 100,
        NOW + 100,
    )
    assert after.replay == b"sealed-1"
    assert after.current_hash != fam.current_hash
    assert after.created_at == NOW  # the absolute lifetime does not restart


def test_scope_may_narrow_but_family_keeps_its_scope() -> None:
    _, fam = family()
    decision, _ = decide(fam, 0, NOW + 1, scopes=("orders:read",))
    assert decision == Rotate(("orders:read",))
    decision, _ = decide(fam, 0, NOW + 1, scopes=("orders:read", "admin"))
    assert isinstance(decision, Reject)
    assert isinstance(decision.error, InvalidScope)
    assert not decision.revoke_grant


# -- reuse and the grace window -----------------------------------------------------------------


def test_reuse_after_grace_revokes_the_family() -> None:
    _, fam = family()
    fam = rotated(fam, NOW + 100)
    decision, after = decide(fam, 0, NOW + 100 + POLICY.grace_period)
    assert isinstance(decision, Reject)
    assert isinstance(decision.error, InvalidGrant)
    assert decision.revoke_grant
    assert after.revoked_at == NOW + 110
    assert after.replay is None  # the sealed tokens are dropped with the family
    # Even the newest token is dead now.
    decision, _ = decide(after, 1, NOW + 111)
    assert isinstance(decision, Reject)
    assert not decision.revoke_grant


def test_retry_inside_grace_gets_the_same_response() -> None:
    _, fam = family()
    fam = rotated(fam, NOW + 100, b"the-pair")
    decision, same = decide(fam, 0, NOW + 100 + POLICY.grace_period - 1)
    assert decision == Replay(b"the-pair")
    assert same is fam


def test_retry_inside_grace_with_other_scope_is_refused_without_alarm() -> None:
    _, fam = family()
    fam = rotated(fam, NOW + 100)
    decision, same = decide(fam, 0, NOW + 101, scopes=("orders:read",))
    assert isinstance(decision, Reject)
    assert not decision.revoke_grant
    assert same is fam


def test_older_generation_is_reuse_even_inside_grace() -> None:
    _, fam = family()
    fam = rotated(rotated(fam, NOW + 100), NOW + 102)
    decision, after = decide(fam, 0, NOW + 103)
    assert isinstance(decision, Reject)
    assert decision.revoke_grant
    assert after.revoked_at is not None


def test_grace_zero_alarms_on_every_reuse() -> None:
    _, fam = family()
    fam = rotated(fam, NOW + 100)
    decision, _ = decide_refresh(
        fam,
        0,
        client_id="web-app",
        scopes=None,
        now=NOW + 100,
        policy=dataclasses.replace(POLICY, grace_period=0),
    )
    assert isinstance(decision, Reject)
    assert decision.revoke_grant


def test_token_in_another_clients_hands_revokes_the_family() -> None:
    _, fam = family()
    decision, after = decide(fam, 0, NOW + 1, client_id="other-client")
    assert isinstance(decision, Reject)
    assert decision.revoke_grant
    assert after.revoked_at == NOW + 1


# -- lifetimes ---------------------------------------------------------------------------------


def test_idle_lifetime() -> None:
    _, fam = family()
    assert isinstance(decide(fam, 0, NOW + POLICY.idle_lifetime - 1)[0], Rotate)
    decision, same = decide(fam, 0, NOW + POLICY.idle_lifetime)
    assert isinstance(decision, Reject)
    assert not decision.revoke_grant
    assert same is fam


def test_use_resets_idle_but_not_absolute_lifetime() -> None:
    _, fam = family()
    now = NOW
    while now + POLICY.idle_lifetime - 1 < NOW + POLICY.absolute_lifetime:
        now += POLICY.idle_lifetime - 1
        decision, _ = decide(fam, fam.generation, now)
        if now >= NOW + POLICY.absolute_lifetime:
            break
        assert isinstance(decision, Rotate)
        fam = rotated(fam, now)
    decision, _ = decide(fam, fam.generation, NOW + POLICY.absolute_lifetime)
    assert isinstance(decision, Reject)
    assert "expired" in str(decision.error)


def test_revoked_family_refuses() -> None:
    _, fam = family()
    revoked = revoke_family(fam, NOW + 5)
    assert revoke_family(revoked, NOW + 9) is revoked  # idempotent
    decision, _ = decide(revoked, 0, NOW + 6)
    assert isinstance(decision, Reject)
    assert not decision.revoke_grant


@pytest.mark.parametrize(
    ("idle", "absolute", "grace"), [(0, 10, 0), (11, 10, 0), (10, 10, -1), (10, 10, 61)]
)
def test_policy_validation(idle: int, absolute: int, grace: int) -> None:
    with pytest.raises(ValueError, match="refresh tokens"):
        RefreshPolicy(idle_lifetime=idle, absolute_lifetime=absolute, grace_period=grace)


# -- the exchange under the store's lock ---------------------------------------------------------


class Issuer:
    """Stands in for the token endpoint: issues a pair and seals the response."""

    def __init__(self) -> None:
        self.issued: list[tuple[str, tuple[str, ...]]] = []

    async def __call__(self, fam: RefreshFamily, scopes: tuple[str, ...]) -> tuple[str, bytes]:
        await asyncio.sleep(0)  # signing and storing take time; others queue on the lock
        token = generate_token()
        self.issued.append((token, scopes))
        return keyed_hash(token), f"{token} {' '.join(scopes)}".encode()


async def exchange(
    store: MemoryRefreshStore,
    revoker: MemoryGrantRevoker,
    token: str,
    issuer: Issuer,
    now: int,
    *,
    client_id: str = "web-app",
) -> bytes:
    return await exchange_refresh_token(
        store,
        revoker,
        keyed_hash(token),
        client_id=client_id,
        scopes=None,
        clock=lambda: now,
        policy=POLICY,
        issue_pair=issuer,
    )


async def test_exchange_rotates_then_detects_reuse() -> None:
    store, revoker, issuer = MemoryRefreshStore(), MemoryGrantRevoker(), Issuer()
    token, fam = family()
    await store.create_family(fam)
    response = await exchange(store, revoker, token, issuer, NOW + 1)
    new_token = response.decode().split()[0]
    assert new_token == issuer.issued[0][0]
    # The new token works; the old one, after the grace window, is reuse: family and grant revoked.
    response2 = await exchange(store, revoker, new_token, issuer, NOW + 2)
    with pytest.raises(InvalidGrant, match="already used"):
        await exchange(store, revoker, token, issuer, NOW + 100)
    assert revoker.revoked == ["grant-1"]
    newest = response2.decode().split()[0]
    with pytest.raises(InvalidGrant, match="revoked"):
        await exchange(store, revoker, newest, issuer, NOW + 101)


async def test_exchange_unknown_token() -> None:
    store, revoker = MemoryRefreshStore(), MemoryGrantRevoker()
    with pytest.raises(InvalidGrant, match="unknown"):
        await exchange(store, revoker, "nope", Issuer(), NOW)
    assert revoker.revoked == []


async def test_concurrent_refreshes_rotate_once_and_all_get_the_same_pair() -> None:
    """Many simultaneous refreshes of one token: one rotation, identical answers, no alarm."""
    store, revoker, issuer = MemoryRefreshStore(), MemoryGrantRevoker(), Issuer()
    token, fam = family()
    await store.create_family(fam)
    responses = await asyncio.gather(
        *(exchange(store, revoker, token, issuer, NOW + 1) for _ in range(32))
    )
    assert len(issuer.issued) == 1
    assert set(responses) == {responses[0]}
    assert revoker.revoked == []
    stored = store.families[fam.family_id]
    assert stored.generation == 1
    assert stored.revoked_at is None


async def test_failed_issuance_changes_nothing() -> None:
    store, revoker = MemoryRefreshStore(), MemoryGrantRevoker()
    token, fam = family()
    await store.create_family(fam)

    async def broken(fam: RefreshFamily, scopes: tuple[str, ...]) -> tuple[str, bytes]:
        raise RuntimeError("signing key unavailable")

    with pytest.raises(RuntimeError):
        await exchange_refresh_token(
            store,
            revoker,
            keyed_hash(token),
            client_id="web-app",
            scopes=None,
            clock=lambda: NOW + 1,
            policy=POLICY,
            issue_pair=broken,
        )
    assert store.families[fam.family_id] == fam
    # The token still works afterwards (no false reuse alarm after a server error).
    await exchange(store, revoker, token, Issuer(), NOW + 2)
    assert revoker.revoked == []


async def test_revocation_revokes_family_and_grant() -> None:
    store, revoker, issuer = MemoryRefreshStore(), MemoryGrantRevoker(), Issuer()
    token, fam = family()
    await store.create_family(fam)
    newest = (await exchange(store, revoker, token, issuer, NOW + 1)).decode().split()[0]
    # Another client cannot revoke it, and learns nothing (the endpoint answers 200 anyway).
    assert not await revoke_refresh_token(
        store, revoker, keyed_hash(newest), client_id="other", now=NOW + 2
    )
    assert not await revoke_refresh_token(
        store, revoker, keyed_hash("unknown"), client_id="web-app", now=NOW + 2
    )
    assert revoker.revoked == []
    # Revoking the old (rotated) token revokes the whole family, including the newest token.
    assert await revoke_refresh_token(
        store, revoker, keyed_hash(token), client_id="web-app", now=NOW + 3
    )
    assert revoker.revoked == ["grant-1"]
    assert store.families[fam.family_id].revoked_at == NOW + 3
    with pytest.raises(InvalidGrant, match="revoked"):
        await exchange(store, revoker, newest, issuer, NOW + 4)


# -- a stalled database: time is read under the lock, an abandoned refresh commits nothing -------


async def test_a_refresh_that_waited_for_the_lock_is_dated_when_it_got_it() -> None:
    """The family's lock is held for 25 s (a stalled database); the refresh waiting for it, then
    the client's retry with the same token, must be one rotation and its replay, not reuse."""
    store, revoker, issuer = MemoryRefreshStore(), MemoryGrantRevoker(), Issuer()
    token, fam = family()
    await store.create_family(fam)
    now = [NOW + 1]  # when the refresh arrives
    lock = store.locks.setdefault(fam.family_id, asyncio.Lock())
    await lock.acquire()

    def refresh() -> asyncio.Task[bytes]:
        return asyncio.create_task(
            exchange_refresh_token(
                store,
                revoker,
                keyed_hash(token),
                client_id="web-app",
                scopes=None,
                clock=lambda: now[0],
                policy=POLICY,
                issue_pair=issuer,
            )
        )

    first = refresh()
    await asyncio.sleep(0.01)
    now[0] = NOW + 13  # the client gave up and retries; the retry queues behind the first
    retry = refresh()
    await asyncio.sleep(0.01)
    now[0] = NOW + 26
    lock.release()
    assert await first == await retry  # the retry is answered with the same pair
    assert len(issuer.issued) == 1
    assert revoker.revoked == []
    stored = store.families[fam.family_id]
    assert stored.revoked_at is None
    assert stored.rotated_at == NOW + 26


async def test_the_grace_window_starts_when_the_response_is_ready() -> None:
    """Issuing took 12 s (a slow database while the lock was held): a retry that waited for the
    lock must still be inside the grace window."""
    store, revoker = MemoryRefreshStore(), MemoryGrantRevoker()
    token, fam = family()
    await store.create_family(fam)
    now = [NOW + 1]
    issuer = Issuer()

    async def slow(fam: RefreshFamily, scopes: tuple[str, ...]) -> tuple[str, bytes]:
        now[0] += 12
        return await issuer(fam, scopes)

    answer = await exchange_refresh_token(
        store,
        revoker,
        keyed_hash(token),
        client_id="web-app",
        scopes=None,
        clock=lambda: now[0],
        policy=POLICY,
        issue_pair=slow,
    )
    assert store.families[fam.family_id].rotated_at == NOW + 13
    now[0] += 1
    assert await exchange(store, revoker, token, issuer, now[0]) == answer
    assert revoker.revoked == []


async def test_a_refresh_whose_client_went_away_changes_nothing() -> None:
    store, revoker, issuer = MemoryRefreshStore(), MemoryGrantRevoker(), Issuer()
    token, fam = family()
    await store.create_family(fam)
    asked: list[bool] = []

    async def gone() -> bool:
        asked.append(True)
        return True

    with pytest.raises(ClientGone):
        await exchange_refresh_token(
            store,
            revoker,
            keyed_hash(token),
            client_id="web-app",
            scopes=None,
            clock=lambda: NOW + 1,
            policy=POLICY,
            issue_pair=issuer,
            client_gone=gone,
        )
    assert asked == [True]
    assert store.families[fam.family_id] == fam
    # Long after any grace window, the token the client still holds works: no reuse alarm.
    await exchange(store, revoker, token, issuer, NOW + 100)
    assert revoker.revoked == []
    assert store.families[fam.family_id].generation == 1


# -- RFC 8707 §2.2: resource on refresh ------------------------------------------------------------


def test_resource_must_be_one_the_grant_covers() -> None:
    _, fam = family()
    own = decide_refresh(
        fam,
        0,
        client_id="web-app",
        scopes=None,
        now=NOW + 1,
        policy=POLICY,
        resource="https://api.example.com",
    )[0]
    assert isinstance(own, Rotate)
    for other in ("https://other.example.com", "https://api.example.com/x"):
        decision, kept = decide_refresh(
            fam, 0, client_id="web-app", scopes=None, now=NOW + 1, policy=POLICY, resource=other
        )
        assert isinstance(decision, Reject)
        assert isinstance(decision.error, InvalidTarget)
        assert not decision.revoke_grant
        assert kept is fam
    # A retry inside the grace window naming another resource is refused, without an alarm.
    after = rotated(fam, NOW + 1)
    decision, kept = decide_refresh(
        after,
        0,
        client_id="web-app",
        scopes=None,
        now=NOW + 2,
        policy=POLICY,
        resource="https://other.example.com",
    )
    assert isinstance(decision, Reject)
    assert isinstance(decision.error, InvalidTarget)
    assert kept is after
