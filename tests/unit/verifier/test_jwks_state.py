"""The JWKS lifecycle against a real issuer on loopback: fetch at start, Cache-Control within
floor and ceiling, unknown-kid refetch with single-flight and cooldown, rotation, stale-if-error,
limits; and `JWKSState`'s unknown-kid pacing with an injected clock."""

from __future__ import annotations

import asyncio
import logging
import time
from email.utils import formatdate
from itertools import pairwise
from typing import Any

import pytest

from authgate.jose import JWK, JWKSet
from authgate.verifier import (
    IssuerConfig,
    JWKSCachePolicy,
    KeyStatus,
    Reason,
    TokenCacheConfig,
    TokenRejected,
    Verifier,
    VerifierConfig,
    VerifierUnavailable,
)
from authgate.verifier.discovery import metadata_urls
from authgate.verifier.http_fetch import FetchLimits
from authgate.verifier.jwks_state import JWKSState, KidVerdict
from tests.support.gate import AUDIENCE, FakeIssuer, IssuerServer, ManualClock


def make_verifier(issuer: FakeIssuer, clock: Any, **policy: Any) -> Verifier:
    limits = policy.pop("fetch", FetchLimits(timeout=2.0))
    cache = TokenCacheConfig(max_ttl=policy.pop("token_cache_ttl", 300.0))
    config = IssuerConfig(
        issuer=issuer.issuer,
        audiences=(AUDIENCE,),
        jwks_uri=issuer.server.url + "/jwks",
        typ="at+jwt",
        jwks=JWKSCachePolicy(fetch=limits, **policy),
    )
    return Verifier(VerifierConfig(issuers=(config,), token_cache=cache), clock=clock)


async def test_keys_are_fetched_at_start_and_readiness_follows(
    test_issuer: FakeIssuer, clock: ManualClock
) -> None:
    verifier = make_verifier(test_issuer, clock)
    assert not verifier.ready
    await verifier.start(background=False)
    try:
        assert verifier.ready
        assert test_issuer.server.hits["/jwks"] == 1
        principal = await verifier.verify_token(test_issuer.token())
        assert principal.subject == "user-1"
        assert test_issuer.server.hits["/jwks"] == 1
    finally:
        await verifier.aclose()


async def test_not_ready_and_503_when_the_first_fetch_fails(
    test_issuer: FakeIssuer, clock: ManualClock
) -> None:
    test_issuer.server.set_json("/jwks", {"error": "down"}, status=500)
    verifier = make_verifier(test_issuer, clock)
    await verifier.start(background=False)
    try:
        assert not verifier.ready
        (status,) = verifier.issuer_status()
        assert status.status is KeyStatus.EMPTY
        assert "HTTP 500" in (status.last_error or "")
        with pytest.raises(VerifierUnavailable) as info:
            await verifier.verify_token(test_issuer.token())
        assert info.value.status_code == 503
        assert info.value.retry_after >= 1
    finally:
        await verifier.aclose()


async def test_failed_fetches_back_off_instead_of_hammering_the_issuer(
    test_issuer: FakeIssuer, clock: ManualClock
) -> None:
    test_issuer.server.set_json("/jwks", {}, status=503)
    verifier = make_verifier(test_issuer, clock, retry_initial=2.0, retry_max=8.0)
    await verifier.start(background=False)
    try:
        for _ in range(20):
            with pytest.raises(VerifierUnavailable):
                await verifier.verify_token(test_issuer.token())
        assert test_issuer.server.hits["/jwks"] == 1
        clock.advance(2.1)
        test_issuer.publish()
        assert (await verifier.verify_token(test_issuer.token())).subject == "user-1"
        assert test_issuer.server.hits["/jwks"] == 2
    finally:
        await verifier.aclose()


@pytest.mark.parametrize(
    ("cache_control", "extra", "expected"),
    [
        ("max-age=120", {}, 120.0),
        ("public, max-age=5", {}, 60.0),  # below the floor
        ("max-age=999999", {}, 3600.0),  # above the ceiling
        ("no-store", {}, 60.0),  # "stale now" becomes the floor
        ("max-age=300", {"Age": "100"}, 200.0),
        (None, {}, 600.0),  # the default
        (None, {"Expires": "Thu, 01 Jan 1970 00:00:00 GMT"}, 60.0),
    ],
)
async def test_cache_control_is_obeyed_within_floor_and_ceiling(
    test_issuer: FakeIssuer,
    clock: ManualClock,
    cache_control: str | None,
    extra: dict[str, str],
    expected: float,
) -> None:
    test_issuer.publish(cache_control=cache_control, extra=extra)
    verifier = make_verifier(test_issuer, clock, min_ttl=60, max_ttl=3600, default_ttl=600)
    await verifier.start(background=False)
    try:
        (status,) = verifier.issuer_status()
        assert status.fresh_until is not None
        assert status.fresh_until - clock.now == pytest.approx(expected)
    finally:
        await verifier.aclose()


async def test_expires_header_sets_the_lifetime(test_issuer: FakeIssuer) -> None:
    now = time.time()
    test_issuer.publish(
        cache_control=None,
        extra={"Expires": formatdate(now + 900, usegmt=True), "Date": formatdate(now, usegmt=True)},
    )
    clock = ManualClock(now)
    verifier = make_verifier(test_issuer, clock)
    await verifier.start(background=False)
    try:
        (status,) = verifier.issuer_status()
        assert status.fresh_until is not None
        assert status.fresh_until - now == pytest.approx(900, abs=1.5)
    finally:
        await verifier.aclose()


async def test_keys_are_refetched_when_their_lifetime_ends(
    test_issuer: FakeIssuer, clock: ManualClock
) -> None:
    test_issuer.publish(cache_control="max-age=120")
    verifier = make_verifier(test_issuer, clock)
    await verifier.start(background=False)
    try:
        clock.advance(100)
        await verifier.verify_token(test_issuer.token())
        assert test_issuer.server.hits["/jwks"] == 1
        clock.advance(21)
        await verifier.verify_token(test_issuer.token())
        assert test_issuer.server.hits["/jwks"] == 2
    finally:
        await verifier.aclose()


async def test_background_task_refreshes_before_expiry(test_issuer: FakeIssuer) -> None:
    # Real time, one second: the only way to see the background task act on its own.
    test_issuer.publish(cache_control="max-age=1")
    verifier = make_verifier(test_issuer, time.time, min_ttl=1, refresh_ahead=0.5)
    await verifier.start()
    try:
        for _ in range(100):
            if test_issuer.server.hits["/jwks"] >= 3:
                break
            await asyncio.sleep(0.05)
        assert test_issuer.server.hits["/jwks"] >= 3
        (status,) = verifier.issuer_status()
        assert status.status is KeyStatus.FRESH
    finally:
        await verifier.aclose()


async def test_flood_of_invented_kids_causes_at_most_one_fetch_per_cooldown(
    test_issuer: FakeIssuer, clock: ManualClock
) -> None:
    verifier = make_verifier(test_issuer, clock, unknown_kid_cooldown=30, unknown_kid_ttl=300)
    await verifier.start(background=False)
    rogue = JWK.generate("EC", crv="P-256", alg="ES256")
    try:
        tokens = [test_issuer.token(rogue, header={"kid": f"invented-{i}"}) for i in range(200)]
        results = await asyncio.gather(
            *(verifier.verify_token(t) for t in tokens), return_exceptions=True
        )
        assert all(isinstance(r, TokenRejected | VerifierUnavailable) for r in results)
        assert test_issuer.server.hits["/jwks"] == 2  # start + one refetch

        clock.advance(10)  # within the cooldown: new invented kids cause no fetch
        for i in range(50):
            with pytest.raises(VerifierUnavailable):
                await verifier.verify_token(test_issuer.token(rogue, header={"kid": f"later-{i}"}))
        assert test_issuer.server.hits["/jwks"] == 2

        clock.advance(25)  # cooldown over; a kid confirmed absent is remembered: no fetch
        with pytest.raises(TokenRejected) as info:
            await verifier.verify_token(tokens[0])
        assert info.value.reason is Reason.UNKNOWN_KID
        assert test_issuer.server.hits["/jwks"] == 2

        for i in range(50):  # a new invented kid: exactly one fetch, then the cooldown again
            with pytest.raises((TokenRejected, VerifierUnavailable)):
                await verifier.verify_token(test_issuer.token(rogue, header={"kid": f"next-{i}"}))
        assert test_issuer.server.hits["/jwks"] == 3
        metrics = verifier.metrics.issuers[test_issuer.issuer]
        assert metrics.unknown_kid_fetches == 2
        assert metrics.unknown_kids >= 300
    finally:
        await verifier.aclose()


async def test_rotation_at_the_issuer_is_accepted_without_restart_or_failure(
    test_issuer: FakeIssuer, clock: ManualClock
) -> None:
    verifier = make_verifier(test_issuer, clock)
    await verifier.start(background=False)
    try:
        old_key = test_issuer.keys[0]
        assert (await verifier.verify_token(test_issuer.token(old_key))).subject == "user-1"
        new_key = test_issuer.new_key("rotated-2")
        test_issuer.publish()  # the issuer publishes the new key and starts signing with it
        tokens = [test_issuer.token(new_key, sub=f"user-{i}") for i in range(20)]
        principals = await asyncio.gather(*(verifier.verify_token(t) for t in tokens))
        assert [p.subject for p in principals] == [f"user-{i}" for i in range(20)]
        assert test_issuer.server.hits["/jwks"] == 2  # one refetch served all of them
        assert (await verifier.verify_token(test_issuer.token(old_key))).subject == "user-1"
    finally:
        await verifier.aclose()


async def test_stale_if_error_keeps_held_keys_for_the_grace_period(
    test_issuer: FakeIssuer, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    test_issuer.publish(cache_control="max-age=300")
    # No token cache: every verification needs the keys.
    verifier = make_verifier(test_issuer, clock, stale_grace=600, token_cache_ttl=0)
    await verifier.start(background=False)
    token = test_issuer.token(exp=int(clock.now) + 10_000)
    try:
        test_issuer.server.set_json("/jwks", {"error": "down"}, status=502)
        clock.advance(301)
        caplog.set_level(logging.WARNING, logger="authgate.verifier")
        principal = await verifier.verify_token(token)
        assert principal.subject == "user-1"
        (status,) = verifier.issuer_status()
        assert status.status is KeyStatus.STALE
        assert status.ready
        assert status.failures == 1
        assert verifier.ready
        metrics = verifier.metrics.issuers[test_issuer.issuer]
        assert metrics.stale_keys_served == 1
        assert metrics.jwks_fetch_failures == 1
        assert any("serving stale keys" in r.getMessage() for r in caplog.records)

        clock.advance(500)  # still within 300 + 600
        await verifier.verify_token(token)
        assert metrics.stale_keys_served == 2

        clock.advance(200)  # past the grace: no held key may decide
        with pytest.raises(VerifierUnavailable):
            await verifier.verify_token(token)
        assert not verifier.ready
        assert verifier.issuer_status()[0].status is KeyStatus.EXPIRED

        test_issuer.publish()
        clock.advance(120)  # past the back-off
        assert (await verifier.verify_token(token)).subject == "user-1"
        assert verifier.issuer_status()[0].status is KeyStatus.FRESH
    finally:
        await verifier.aclose()


async def test_unknown_kid_while_the_issuer_is_down_is_503_not_401(
    test_issuer: FakeIssuer, clock: ManualClock
) -> None:
    verifier = make_verifier(test_issuer, clock)
    await verifier.start(background=False)
    try:
        new_key = test_issuer.new_key()
        test_issuer.server.set_json("/jwks", {}, status=500)
        with pytest.raises(VerifierUnavailable):
            await verifier.verify_token(test_issuer.token(new_key))
    finally:
        await verifier.aclose()


async def test_oversized_jwks_is_refused(test_issuer: FakeIssuer, clock: ManualClock) -> None:
    for _ in range(20):
        test_issuer.new_key()
    test_issuer.publish()
    verifier = make_verifier(test_issuer, clock, fetch=FetchLimits(timeout=2, max_bytes=1024))
    await verifier.start(background=False)
    try:
        assert not verifier.ready
        assert "larger than 1024" in (verifier.issuer_status()[0].last_error or "")
    finally:
        await verifier.aclose()


async def test_oversized_jwks_without_content_length_is_refused(
    test_issuer: FakeIssuer, clock: ManualClock
) -> None:
    body = {"keys": [k.public().to_dict() for k in test_issuer.keys], "pad": "x" * 5000}
    test_issuer.server.set_json("/jwks", body, stream=True)
    verifier = make_verifier(test_issuer, clock, fetch=FetchLimits(timeout=2, max_bytes=2048))
    await verifier.start(background=False)
    try:
        assert not verifier.ready
        assert "larger than 2048" in (verifier.issuer_status()[0].last_error or "")
    finally:
        await verifier.aclose()


async def test_slow_jwks_endpoint_is_cut_off(test_issuer: FakeIssuer, clock: ManualClock) -> None:
    test_issuer.server.routes["/jwks"].delay = 1.5
    verifier = make_verifier(test_issuer, clock, fetch=FetchLimits(timeout=0.2))
    await verifier.start(background=False)
    try:
        assert not verifier.ready
        assert "within 0.2s" in (verifier.issuer_status()[0].last_error or "")
    finally:
        await verifier.aclose()


async def test_redirects_and_compressed_bodies_are_not_followed(
    test_issuer: FakeIssuer, clock: ManualClock
) -> None:
    test_issuer.server.set_json("/jwks", {}, status=302, headers={"Location": "/other"})
    verifier = make_verifier(test_issuer, clock)
    await verifier.start(background=False)
    try:
        assert not verifier.ready
        assert test_issuer.server.hits["/other"] == 0
    finally:
        await verifier.aclose()
    test_issuer.publish(extra={"Content-Encoding": "gzip"})
    verifier = make_verifier(test_issuer, clock)
    await verifier.start(background=False)
    try:
        assert not verifier.ready
        assert "content-encoding" in (verifier.issuer_status()[0].last_error or "")
    finally:
        await verifier.aclose()


async def test_symmetric_and_encryption_keys_in_a_jwks_are_ignored(
    test_issuer: FakeIssuer, clock: ManualClock
) -> None:
    secret = JWK.from_secret(b"s" * 32, kid="hmac", alg="HS256")
    document = {
        "keys": [secret.to_dict(private=True), *(k.public().to_dict() for k in test_issuer.keys)]
    }
    test_issuer.server.set_json("/jwks", document)
    verifier = make_verifier(test_issuer, clock)
    await verifier.start(background=False)
    try:
        assert verifier.issuer_status()[0].keys == 1
        forged = test_issuer.token(secret)
        with pytest.raises(TokenRejected) as info:
            await verifier.verify_token(forged)
        assert info.value.reason is Reason.SIGNATURE  # HS256 is not in the allow-list
    finally:
        await verifier.aclose()


async def test_a_jwks_with_no_usable_key_keeps_the_held_keys(
    test_issuer: FakeIssuer, clock: ManualClock
) -> None:
    verifier = make_verifier(test_issuer, clock)
    await verifier.start(background=False)
    try:
        test_issuer.server.set_json("/jwks", {"keys": [{"kty": "RSA", "n": "AQAB"}]})
        clock.advance(301)
        assert (await verifier.verify_token(test_issuer.token())).subject == "user-1"
        status = verifier.issuer_status()[0]
        assert status.status is KeyStatus.STALE
        assert "no usable signature key" in (status.last_error or "")
    finally:
        await verifier.aclose()


async def test_discovery_finds_the_jwks_uri(test_issuer: FakeIssuer, clock: ManualClock) -> None:
    config = IssuerConfig(issuer=test_issuer.issuer, audiences=(AUDIENCE,))
    verifier = Verifier(VerifierConfig(issuers=(config,)), clock=clock)
    await verifier.start(background=False)
    try:
        assert verifier.ready
        assert verifier.issuer_status()[0].jwks_uri == test_issuer.server.url + "/jwks"
        assert test_issuer.server.hits["/.well-known/oauth-authorization-server"] == 1
    finally:
        await verifier.aclose()


async def test_discovery_falls_back_to_openid_configuration(
    test_issuer: FakeIssuer, clock: ManualClock
) -> None:
    server = test_issuer.server
    server.routes.pop("/.well-known/oauth-authorization-server")
    server.set_json(
        "/.well-known/openid-configuration",
        {"issuer": test_issuer.issuer, "jwks_uri": server.url + "/jwks"},
    )
    config = IssuerConfig(issuer=test_issuer.issuer, audiences=(AUDIENCE,))
    verifier = Verifier(VerifierConfig(issuers=(config,)), clock=clock)
    await verifier.start(background=False)
    try:
        assert verifier.ready
        assert server.hits["/.well-known/openid-configuration"] == 1
    finally:
        await verifier.aclose()


async def test_discovery_refuses_metadata_for_another_issuer(
    test_issuer: FakeIssuer, clock: ManualClock
) -> None:
    test_issuer.publish_metadata(issuer=test_issuer.issuer + "/")  # not identical
    config = IssuerConfig(issuer=test_issuer.issuer, audiences=(AUDIENCE,), discovery="oauth")
    verifier = Verifier(VerifierConfig(issuers=(config,)), clock=clock)
    await verifier.start(background=False)
    try:
        assert not verifier.ready
        assert test_issuer.server.hits["/jwks"] == 0
        assert "does not equal" in (verifier.issuer_status()[0].last_error or "")
    finally:
        await verifier.aclose()


async def test_discovery_goes_on_when_the_rfc_8414_url_answers_for_another_issuer(
    issuer_server: IssuerServer, clock: ManualClock
) -> None:
    # A host serving several issuers answers the inserted RFC 8414 URL of a path issuer with its
    # root issuer's document; OpenID discovery under the path has the right one.
    tenant = FakeIssuer(issuer_server, issuer_server.url + "/t1")
    tenant.new_key()
    tenant.publish()
    root = {"issuer": issuer_server.url, "jwks_uri": issuer_server.url + "/root-jwks"}
    issuer_server.set_json("/.well-known/oauth-authorization-server/t1", root)
    issuer_server.set_json(
        "/t1/.well-known/openid-configuration",
        {"issuer": tenant.issuer, "jwks_uri": issuer_server.url + "/jwks"},
    )
    config = IssuerConfig(issuer=tenant.issuer, audiences=(AUDIENCE,))
    verifier = Verifier(VerifierConfig(issuers=(config,)), clock=clock)
    await verifier.start(background=False)
    try:
        assert verifier.ready
        assert verifier.issuer_status()[0].jwks_uri == issuer_server.url + "/jwks"
        assert issuer_server.hits["/root-jwks"] == 0
        assert (await verifier.verify_token(tenant.token())).issuer == tenant.issuer
    finally:
        await verifier.aclose()


async def test_discovery_refuses_a_plain_http_jwks_uri_off_loopback(
    issuer_server: IssuerServer, clock: ManualClock
) -> None:
    issuer_server.set_json(
        "/.well-known/oauth-authorization-server",
        {"issuer": issuer_server.url, "jwks_uri": "http://jwks.example.com/keys"},
    )
    config = IssuerConfig(issuer=issuer_server.url, audiences=(AUDIENCE,))
    verifier = Verifier(VerifierConfig(issuers=(config,)), clock=clock)
    await verifier.start(background=False)
    try:
        assert not verifier.ready
        assert "must use https" in (verifier.issuer_status()[0].last_error or "")
    finally:
        await verifier.aclose()


def test_metadata_urls_follow_rfc_8414_and_openid_discovery() -> None:
    assert metadata_urls("https://idp.example.com/tenant/a/") == (
        "https://idp.example.com/.well-known/oauth-authorization-server/tenant/a",
        "https://idp.example.com/tenant/a/.well-known/openid-configuration",
    )
    assert metadata_urls("https://idp.example.com", "openid") == (
        "https://idp.example.com/.well-known/openid-configuration",
    )


# -- unknown-kid refetch after an outage (JWKSState, sans I/O, injected time) --------------------


def _held_state(policy: JWKSCachePolicy, now: float) -> JWKSState:
    state = JWKSState(policy)
    key = JWK.generate("EC", crv="P-256", kid="held", alg="ES256")
    state.record_success(JWKSet([key.public()]), started=now, now=now, lifetime=600)
    return state


def test_unknown_kid_fetch_is_not_held_back_by_the_failure_backoff() -> None:
    policy = JWKSCachePolicy(unknown_kid_cooldown=30, retry_initial=1, retry_max=60)
    state = _held_state(policy, 0.0)
    for t in range(100, 107):  # the issuer goes down; failed fetches back off up to retry_max
        state.record_failure("HTTP 503", now=float(t))
    assert state.retry_at == 106 + 60
    assert not state.may_fetch(107)
    # The back-off protects the issuer from refreshes, but an unknown kid's refetch is bounded by
    # the cooldown alone: the last kid-driven fetch was long ago, so one may start now.
    assert state.kid_verdict("new", 107) is KidVerdict.FETCH
    state.begin_kid_fetch(107)
    state.record_failure("HTTP 503", now=107)
    assert state.kid_verdict("new", 136.9) is KidVerdict.COOLDOWN
    assert state.kid_cooldown_left(136.9) == pytest.approx(0.1)
    assert state.kid_verdict("new", 137) is KidVerdict.FETCH  # while retry_at is 167


@pytest.mark.parametrize("recovered_at", [100.5, 113.0, 129.9, 150.0, 171.0, 250.0, 399.0])
def test_after_an_outage_a_new_kid_is_fetched_within_the_cooldown(recovered_at: float) -> None:
    # An outage from t=100 with the background task retrying whenever the back-off allows and a
    # token with a new kid arriving every 0.5 s; the issuer answers again at `recovered_at`.
    policy = JWKSCachePolicy(unknown_kid_cooldown=30, retry_initial=1, retry_max=60)
    state = _held_state(policy, 0.0)
    state.record_failure("HTTP 503", now=100.0)
    fetched_at = None
    t = 100.0
    while t < recovered_at + 200 and fetched_at is None:
        up = t >= recovered_at
        if state.next_refresh_at() <= t and not up:
            state.record_failure("HTTP 503", now=t)  # the background retry fails
        if state.kid_verdict("new", t) is KidVerdict.FETCH:
            state.begin_kid_fetch(t)
            if up:
                fetched_at = t
            else:
                state.record_failure("HTTP 503", now=t)
        t += 0.5
    assert fetched_at is not None
    assert fetched_at - recovered_at <= policy.unknown_kid_cooldown


def test_invented_kids_during_an_outage_cause_one_fetch_per_cooldown() -> None:
    policy = JWKSCachePolicy(unknown_kid_cooldown=30, retry_initial=1, retry_max=60)
    state = _held_state(policy, 0.0)
    state.record_failure("HTTP 503", now=100.0)
    starts = []
    for i in range(6000):  # a new invented kid every 0.1 s for 600 s; every fetch fails
        now = 100.0 + i * 0.1
        if state.kid_verdict(f"invented-{i}", now) is KidVerdict.FETCH:
            state.begin_kid_fetch(now)
            state.record_failure("HTTP 503", now=now)
            starts.append(now)
    assert len(starts) == 20
    assert all(b - a >= policy.unknown_kid_cooldown for a, b in pairwise(starts))


async def test_a_new_kid_is_accepted_within_the_cooldown_after_the_issuer_recovers(
    test_issuer: FakeIssuer, clock: ManualClock
) -> None:
    # The back-off after a failure (45 s here, up to retry_max in general) is longer than the
    # cooldown: the new kid must not wait for it once the issuer answers again.
    verifier = make_verifier(
        test_issuer, clock, unknown_kid_cooldown=30, retry_initial=45, retry_max=60
    )
    await verifier.start(background=False)
    try:
        new_key = test_issuer.new_key("after-outage")
        test_issuer.server.set_json("/jwks", {"error": "down"}, status=503)
        with pytest.raises(VerifierUnavailable) as info:
            await verifier.verify_token(test_issuer.token(new_key))
        assert info.value.retry_after == 30  # the kid's next chance, not the 45 s back-off
        assert test_issuer.server.hits["/jwks"] == 2

        clock.advance(10)  # within the cooldown: no fetch
        with pytest.raises(VerifierUnavailable):
            await verifier.verify_token(test_issuer.token(new_key))
        assert test_issuer.server.hits["/jwks"] == 2

        test_issuer.publish()  # the issuer is back, with the new key
        clock.advance(20)  # the cooldown is over; the back-off is not (15 s left)
        principal = await verifier.verify_token(test_issuer.token(new_key))
        assert principal.subject == "user-1"
        assert test_issuer.server.hits["/jwks"] == 3
        assert verifier.issuer_status()[0].failures == 0
    finally:
        await verifier.aclose()
