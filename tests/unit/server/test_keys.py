"""Signing keys: the schedule (pure), the lifecycle driven by a moving clock on both databases,
`keys rotate` never activating a key verifiers could not have fetched, and sealing at rest."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json

import pytest

from authgate.jose import JWKSet, jwt
from authgate.server.auth_server import SecretKeyMismatchError
from authgate.server.config import DAY, HOUR, KeyPolicy
from authgate.server.keys import KeyManager
from authgate.server.keys.schedule import (
    active_key,
    plan_maintenance,
    plan_revocation,
    plan_rotation,
)
from authgate.server.models import SigningKeyRecord
from tests.support.server_harness import FakeClock, Harness, make_config, running

POLICY = KeyPolicy(
    algorithms=("RS256",),
    rotation_period=30 * DAY,
    publication_lead=2 * DAY,
    retirement_period=7 * DAY,
    jwks_max_age=HOUR,
    refresh_interval=60,
)
T0 = 1_800_000_000


def _record(
    kid: str, created: int, activate: int, retire: int | None = None, remove: int | None = None
) -> SigningKeyRecord:
    return SigningKeyRecord(
        kid=kid,
        alg="RS256",
        public_jwk={},
        sealed_private_key=b"",
        created_at=created,
        activate_at=activate,
        retire_at=retire,
        remove_at=remove,
    )


def test_first_key_signs_at_once() -> None:
    plan = plan_maintenance([], POLICY, T0)
    assert [(k.alg, k.activate_at) for k in plan.create] == [("RS256", T0)]


def test_successor_published_ahead_then_predecessor_retired() -> None:
    current = _record("a", T0, T0)
    assert plan_maintenance([current], POLICY, T0 + 27 * DAY).empty
    at = T0 + 28 * DAY  # rotation period minus publication lead
    plan = plan_maintenance([current], POLICY, at)
    assert [k.activate_at for k in plan.create] == [T0 + 30 * DAY]
    (change,) = plan.reschedule
    assert change.kid == "a"
    assert change.retire_at == T0 + 30 * DAY
    assert change.remove_at == T0 + 37 * DAY


def test_late_maintenance_still_waits_for_verifiers() -> None:
    # A server that was down past the rotation date publishes first and waits before signing.
    current = _record("a", T0, T0)
    late = T0 + 40 * DAY
    (new,) = plan_maintenance([current], POLICY, late).create
    assert new.activate_at == late + POLICY.activation_delay


def test_active_key_follows_schedule_and_removed_keys_are_deleted() -> None:
    old = _record("a", T0, T0, T0 + 30 * DAY, T0 + 37 * DAY)
    new = _record("b", T0 + 28 * DAY, T0 + 30 * DAY)
    keys = [old, new]
    assert active_key(keys, "RS256", T0 + 30 * DAY - 1) == old
    assert active_key(keys, "RS256", T0 + 30 * DAY) == new
    assert old.state(T0 + 31 * DAY) == "retired"
    assert plan_maintenance(keys, POLICY, T0 + 37 * DAY).delete == ("a",)


def test_rotation_brought_forward_respects_activation_delay() -> None:
    current = _record("a", T0, T0)
    plan, start, existing = plan_rotation([current], POLICY, "RS256", T0 + DAY)
    assert existing is None
    assert start == T0 + DAY + POLICY.activation_delay
    assert [k.activate_at for k in plan.create] == [start]
    # A successor already published long enough signs one refresh interval from now.
    pending = _record("b", T0 + 28 * DAY, T0 + 30 * DAY)
    old = _record("a", T0, T0, T0 + 30 * DAY, T0 + 37 * DAY)
    plan, start, existing = plan_rotation([old, pending], POLICY, "RS256", T0 + 29 * DAY)
    assert existing == "b"
    assert start == T0 + 29 * DAY + POLICY.refresh_interval
    # A successor published a minute ago waits for the JWKS caches first.
    fresh = _record("c", T0 + 29 * DAY, T0 + 31 * DAY)
    _plan, start, _ = plan_rotation([old, fresh], POLICY, "RS256", T0 + 29 * DAY + 60)
    assert start == T0 + 29 * DAY + POLICY.activation_delay


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="publication_lead"):
        KeyPolicy(publication_lead=60, jwks_max_age=HOUR)
    with pytest.raises(ValueError, match="RS256"):
        KeyPolicy(algorithms=("ES256",))
    with pytest.raises(ValueError, match="rotation_period"):
        KeyPolicy(rotation_period=DAY, publication_lead=2 * DAY)


def test_revoking_the_signing_key_activates_its_successor_now() -> None:
    current = _record("a", T0, T0, T0 + 30 * DAY, T0 + 37 * DAY)
    successor = _record("b", T0 + 28 * DAY, T0 + 30 * DAY)
    at = T0 + 29 * DAY
    plan, kid = plan_revocation([current, successor], POLICY, "a", at)
    assert plan.delete == ("a",)
    assert kid == "b"
    assert [(c.kid, c.activate_at) for c in plan.reschedule] == [("b", at)]
    assert not plan.create
    # Without a published successor a new key is created that signs at once.
    plan, kid = plan_revocation([_record("a", T0, T0)], POLICY, "a", T0 + DAY)
    assert kid is None
    assert plan.delete == ("a",)
    assert [(k.alg, k.activate_at) for k in plan.create] == [("RS256", T0 + DAY)]


def test_revoking_a_waiting_or_retired_key_leaves_the_signing_key() -> None:
    current = _record("a", T0, T0, T0 + 30 * DAY, T0 + 37 * DAY)
    successor = _record("b", T0 + 28 * DAY, T0 + 30 * DAY)
    plan, kid = plan_revocation([current, successor], POLICY, "b", T0 + 29 * DAY)
    assert (plan.delete, kid, plan.create) == (("b",), None, ())
    # The current key no longer retires into a key that is gone.
    assert [(c.kid, c.retire_at, c.remove_at) for c in plan.reschedule] == [("a", None, None)]
    retired = _record("a", T0, T0, T0 + 30 * DAY, T0 + 37 * DAY)
    signing = _record("b", T0 + 28 * DAY, T0 + 30 * DAY)
    plan, kid = plan_revocation([retired, signing], POLICY, "a", T0 + 31 * DAY)
    assert (plan.delete, kid, plan.create, plan.reschedule) == (("a",), None, (), ())


def test_revoking_an_unknown_kid_is_a_lookup_error() -> None:
    with pytest.raises(LookupError, match="no signing key with kid 'nope'"):
        plan_revocation([_record("a", T0, T0)], POLICY, "nope", T0)


async def _jwks(h: Harness) -> JWKSet:
    return JWKSet.from_dict((await h.http.get("/.well-known/jwks.json")).json())


async def test_lifecycle_with_moving_clock(harness: Harness) -> None:
    h = harness
    await h.create_api("https://api.example.test")
    client, secret = await h.create_client(scopes=("read",))
    first = h.server.keys.signing_key("RS256").kid
    token_before = (await h.token(client, secret)).json()["access_token"]
    issued_before = h.clock()
    policy = h.config.keys
    # Shortly before the rotation date, the successor is published but does not sign yet.
    h.clock.advance(policy.rotation_period - policy.publication_lead)
    await h.server.keys.maintain()
    kids = {k.kid for k in await _jwks(h)}
    assert first in kids
    assert len(kids) == 4  # RS256 and ES256: the signing keys and their successors
    assert h.server.keys.signing_key("RS256").kid == first
    # At the rotation date the successor signs; the old key stays published.
    h.clock.advance(policy.publication_lead)
    second = h.server.keys.signing_key("RS256").kid
    assert second != first
    token_after = (await h.token(client, secret)).json()["access_token"]
    jwks = await _jwks(h)
    for token, issued in ((token_before, issued_before), (token_after, h.clock())):
        claims = jwt.decode(
            token, jwks, algorithms=["RS256"], audience="https://api.example.test", now=issued
        )
        assert claims["client_id"] == client.client_id
    # After the retirement period the old key leaves the JWKS and the database.
    h.clock.advance(policy.retirement_period)
    await h.server.keys.maintain()
    assert first not in {k.kid for k in await _jwks(h)}
    assert first not in {r.kid for r in await h.server.storage.list_signing_keys()}


async def test_active_key_follows_the_clock_both_ways_and_a_revocation(harness: Harness) -> None:
    # The active key is kept per algorithm until the records change or one of their instants
    # passes: each crossing (and a clock set back across one) chooses again.
    h = harness
    keys = h.server.keys
    before = keys.signing_key("ES256").kid
    (rotation,) = await keys.rotate(("ES256",))
    start = h.clock()
    h.clock.advance(rotation.activate_at - start - 1)
    assert keys.signing_key("ES256").kid == before  # chosen (and kept) one second before
    h.clock.advance(1)
    assert keys.signing_key("ES256").kid == rotation.kid
    h.clock.now = start  # back before the activation
    assert keys.signing_key("ES256").kid == before
    h.clock.now = rotation.activate_at
    assert keys.signing_key("ES256").kid == rotation.kid
    successor = await keys.revoke(rotation.kid)  # new records: chosen again at once
    assert keys.signing_key("ES256").kid == successor != rotation.kid


async def test_rotate_now_is_safe(harness: Harness) -> None:
    h = harness
    before = h.server.keys.signing_key("RS256").kid
    (rotation,) = await h.server.keys.rotate(("RS256",))
    delay = h.config.keys.activation_delay
    assert rotation.activate_at == int(h.clock()) + delay
    # Published at once, signing only after every verifier's cache has expired.
    assert rotation.kid in {k.kid for k in await _jwks(h)}
    h.clock.advance(delay - 1)
    assert h.server.keys.signing_key("RS256").kid == before
    h.clock.advance(1)
    assert h.server.keys.signing_key("RS256").kid == rotation.kid
    # Rotating again creates the next key, which again waits for the verifiers' caches.
    (again,) = await h.server.keys.rotate(("RS256",))
    assert again.kid != rotation.kid
    assert again.activate_at == int(h.clock()) + delay
    # While that successor waits, another rotate keeps it (no churn, no earlier activation).
    h.clock.advance(10)
    (third,) = await h.server.keys.rotate(("RS256",))
    assert third.kid == again.kid
    assert third.activate_at == again.activate_at


async def test_private_keys_sealed_at_rest(harness: Harness) -> None:
    records = await harness.server.storage.list_signing_keys()
    assert records
    for record in records:
        private = harness.server.keys.signing_key(record.alg).to_dict(private=True)
        if private["kid"] != record.kid:
            continue
        blob = record.sealed_private_key
        assert private["d"].encode() not in blob
        assert b'"d"' not in blob
        assert "d" not in record.public_jwk
        # Sealed with the kid and alg as associated data: it opens only for its own row.
        secret = harness.server.secret
        opened = json.loads(
            secret.open(blob, f"authgate signing key\n{record.kid}\n{record.alg}".encode())
        )
        assert opened["d"] == private["d"]


async def test_other_secret_key_refused(database_url: str) -> None:
    clock = FakeClock()
    async with running(make_config(database_url), clock):
        pass
    other = make_config(database_url, secret_key=b"another-secret-key-of-32-bytes!!")
    with pytest.raises(SecretKeyMismatchError):
        async with running(other, clock):
            pass


async def test_revoked_key_leaves_jwks_stops_signing_and_its_tokens_are_inactive(
    harness: Harness,
) -> None:
    h = harness
    await h.create_api("https://api.example.test")
    client, secret = await h.create_client(scopes=("read",))
    rs, rs_secret = await h.create_client(
        name="rs", grant_types=(), introspect=("https://api.example.test",)
    )
    rs_auth = (rs.client_id, rs_secret or "")
    revoked = h.server.keys.signing_key("RS256").kid
    token = (await h.token(client, secret)).json()["access_token"]
    before = await h.http.post("/introspect", data={"token": token}, auth=rs_auth)
    assert before.json()["active"] is True
    successor = await h.server.keys.revoke(revoked)
    assert successor
    assert successor != revoked
    assert revoked not in {k.kid for k in await _jwks(h)}
    assert revoked not in {r.kid for r in await h.server.storage.list_signing_keys()}
    assert h.server.keys.signing_key("RS256").kid == successor  # no publication lead
    after = await h.http.post("/introspect", data={"token": token}, auth=rs_auth)
    assert after.json() == {"active": False}
    fresh = (await h.token(client, secret)).json()["access_token"]
    header = fresh.split(".")[0]
    assert (
        json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"] == successor
    )
    with pytest.raises(LookupError):
        await h.server.keys.revoke(revoked)


async def test_other_process_drops_a_revoked_key_at_its_next_check(harness: Harness) -> None:
    # A second KeyManager on the same database stands for another `serve` process.
    h = harness
    other = KeyManager(h.server.storage, h.server.secret, h.config.keys, h.clock)
    await other.refresh()
    revoked = other.signing_key("ES256").kid
    successor = await h.server.keys.revoke(revoked)
    assert other.signing_key("ES256").kid == revoked  # not yet checked
    await other._drop_revoked()  # what its background loop does every few seconds
    assert other.signing_key("ES256").kid == successor
    assert revoked not in {k["kid"] for k in json.loads(other.jwks_body())["keys"]}
    assert revoked not in {k.kid for k in other.verification_keys()}


async def test_background_loop_follows_a_revocation_within_its_check_interval(
    harness: Harness,
) -> None:
    h = harness
    # The full reload comes every refresh_interval (a minute); the revocation check every 5 s.
    assert h.config.keys.refresh_interval == 60
    other = KeyManager(h.server.storage, h.server.secret, h.config.keys, h.clock)
    await other.refresh()
    revoked = other.signing_key("RS256").kid
    task = asyncio.create_task(other.run())
    try:
        successor = await h.server.keys.revoke(revoked)
        for _ in range(150):  # bounded: 15 s, three check intervals, a quarter of a reload
            if other.signing_key("RS256").kid == successor:
                break
            await asyncio.sleep(0.1)
        assert other.signing_key("RS256").kid == successor
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
