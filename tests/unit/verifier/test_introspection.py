"""Opaque tokens through RFC 7662 introspection against a loopback endpoint, and API keys."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import pytest

from authgate.verifier import (
    ApiKeyConfig,
    ApiKeyEntry,
    ConfigError,
    IntrospectionConfig,
    Reason,
    TokenRejected,
    Verifier,
    VerifierConfig,
    VerifierUnavailable,
    hash_api_key,
    new_api_key,
)
from authgate.verifier.api_keys import parse_key_hash
from tests.support.gate import AUDIENCE, IssuerServer, ManualClock, Route

CLIENT_ID = "gate client"
SECRET = "s3cr:et/+"


def introspection_endpoint(
    server: IssuerServer, answers: dict[str, dict[str, Any]]
) -> Callable[[dict[str, list[str]], dict[str, str]], tuple[int, Any]]:
    expected = "Basic " + base64.b64encode(b"gate+client:s3cr%3Aet%2F%2B").decode()

    def handle(form: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any]:
        basic = headers.get("Authorization") == expected
        posted = form.get("client_id") == [CLIENT_ID] and form.get("client_secret") == [SECRET]
        if not (basic or posted):
            return 401, {"error": "invalid_client"}
        assert form.get("token_type_hint") == ["access_token"]
        return 200, answers.get(form["token"][0], {"active": False})

    return handle


def make_verifier(server: IssuerServer, clock: Any, **kwargs: Any) -> Verifier:
    kwargs.setdefault("any_audience", "audiences" not in kwargs)
    config = IntrospectionConfig(
        endpoint=server.url + "/introspect",
        client_id=CLIENT_ID,
        client_secret=SECRET,
        **kwargs,
    )
    return Verifier(VerifierConfig(introspection=config), clock=clock)


def active(clock: ManualClock, **extra: Any) -> dict[str, Any]:
    return {
        "active": True,
        "sub": "user-9",
        "client_id": "c9",
        "scope": "orders:read",
        "exp": int(clock.now) + 600,
        **extra,
    }


async def test_active_token_is_cached_within_ttl_and_exp(
    issuer_server: IssuerServer, clock: ManualClock
) -> None:
    answers = {"opaque-1": active(clock, exp=int(clock.now) + 90)}
    issuer_server.routes["/introspect"] = Route(
        handler=introspection_endpoint(issuer_server, answers)
    )
    verifier = make_verifier(issuer_server, clock, cache_ttl=60)
    try:
        principal = await verifier.verify_token("opaque-1")
        assert principal.subject == "user-9"
        assert principal.scopes == {"orders:read"}
        assert principal.method == "introspection"
        await verifier.verify_token("opaque-1")
        assert issuer_server.hits["/introspect"] == 1
        clock.advance(61)  # past the TTL
        await verifier.verify_token("opaque-1")
        assert issuer_server.hits["/introspect"] == 2
        clock.advance(30)  # past exp (90): the cached answer is capped by it
        with pytest.raises(TokenRejected) as info:
            await verifier.verify_token("opaque-1")
        assert info.value.reason is Reason.EXPIRED
        assert issuer_server.hits["/introspect"] == 3
    finally:
        await verifier.aclose()


async def test_inactive_answers_are_cached_negatively(
    issuer_server: IssuerServer, clock: ManualClock
) -> None:
    issuer_server.routes["/introspect"] = Route(handler=introspection_endpoint(issuer_server, {}))
    verifier = make_verifier(issuer_server, clock, negative_ttl=10)
    try:
        for _ in range(5):
            with pytest.raises(TokenRejected) as info:
                await verifier.verify_token("revoked")
            assert info.value.reason is Reason.INACTIVE
        assert issuer_server.hits["/introspect"] == 1
        clock.advance(11)
        with pytest.raises(TokenRejected):
            await verifier.verify_token("revoked")
        assert issuer_server.hits["/introspect"] == 2
    finally:
        await verifier.aclose()


async def test_concurrent_requests_share_one_introspection(
    issuer_server: IssuerServer, clock: ManualClock
) -> None:
    issuer_server.routes["/introspect"] = Route(
        handler=introspection_endpoint(issuer_server, {"hot": active(clock)})
    )
    verifier = make_verifier(issuer_server, clock)
    issuer_server.gate.clear()  # hold the endpoint until every request waits on it
    try:
        tasks = [asyncio.create_task(verifier.verify_token("hot")) for _ in range(30)]
        await asyncio.sleep(0.1)
        issuer_server.gate.set()
        principals = await asyncio.gather(*tasks)
        assert {p.subject for p in principals} == {"user-9"}
        assert issuer_server.hits["/introspect"] == 1
    finally:
        issuer_server.gate.set()
        await verifier.aclose()


async def test_client_secret_post_and_answers_that_must_be_refused(
    issuer_server: IssuerServer, clock: ManualClock
) -> None:
    answers = {
        "ok": active(clock, iss="https://as.test", aud=[AUDIENCE]),
        "true-string": {**active(clock), "active": "true"},
        "other-iss": active(clock, iss="https://evil.test", aud=AUDIENCE),
        "other-aud": active(clock, iss="https://as.test", aud="https://elsewhere.test"),
        "no-aud": active(clock, iss="https://as.test"),
        "future": active(clock, iss="https://as.test", aud=AUDIENCE, nbf=int(clock.now) + 999),
        "dpop": active(clock, iss="https://as.test", aud=AUDIENCE, cnf={"jkt": "x"}),
    }
    issuer_server.routes["/introspect"] = Route(
        handler=introspection_endpoint(issuer_server, answers)
    )
    verifier = make_verifier(
        issuer_server,
        clock,
        auth_method="client_secret_post",
        issuer="https://as.test",
        audiences=(AUDIENCE,),
    )
    try:
        assert (await verifier.verify_token("ok")).issuer == "https://as.test"
        expected = {
            "true-string": Reason.INACTIVE,
            "other-iss": Reason.ISSUER,
            "other-aud": Reason.AUDIENCE,
            "no-aud": Reason.AUDIENCE,
            "future": Reason.NOT_YET_VALID,
            "dpop": Reason.BOUND,  # RFC 9449 §6.2: a bound token's answer carries cnf; as bearer
        }
        for token, reason in expected.items():
            with pytest.raises(TokenRejected) as info:
                await verifier.verify_token(token)
            assert info.value.reason is reason, token
    finally:
        await verifier.aclose()


async def test_endpoint_failure_is_503_and_not_cached(
    issuer_server: IssuerServer, clock: ManualClock
) -> None:
    issuer_server.set_json("/introspect", {"error": "boom"}, status=500)
    verifier = make_verifier(issuer_server, clock)
    try:
        for _ in range(2):
            with pytest.raises(VerifierUnavailable) as info:
                await verifier.verify_token("opaque")
            assert info.value.status_code == 503
        assert issuer_server.hits["/introspect"] == 2
        assert verifier.metrics.introspection_failures == 2
    finally:
        await verifier.aclose()


async def test_wrong_client_credentials_are_an_outage_not_a_client_error(
    issuer_server: IssuerServer, clock: ManualClock
) -> None:
    issuer_server.routes["/introspect"] = Route(handler=introspection_endpoint(issuer_server, {}))
    config = IntrospectionConfig(
        endpoint=issuer_server.url + "/introspect",
        client_id="x",
        client_secret="wrong",
        any_audience=True,
    )
    verifier = Verifier(VerifierConfig(introspection=config), clock=clock)
    try:
        with pytest.raises(VerifierUnavailable) as info:
            await verifier.verify_token("opaque")
        assert "wrong" not in str(info.value.debug)  # the secret never reaches messages
    finally:
        await verifier.aclose()


# -- API keys ---------------------------------------------------------------------------------


def test_api_key_hashes_are_parsed_strictly() -> None:
    key = new_api_key()
    digest = parse_key_hash(hash_api_key(key))
    assert len(digest) == 32
    for bad in ("sha256:abc", "md5:" + "0" * 32, "sha256:" + "g" * 64, "0" * 64):
        with pytest.raises(ConfigError):
            parse_key_hash(bad)
    with pytest.raises(ConfigError):
        ApiKeyConfig((ApiKeyEntry(digest, "a"),), header="Authorization")


async def test_api_keys_map_to_configured_principals(clock: ManualClock) -> None:
    key, other = new_api_key(), new_api_key()
    config = ApiKeyConfig((
        ApiKeyEntry(parse_key_hash(hash_api_key(key)), "reports", frozenset({"orders:read"}),
                    frozenset({"reader"}), client_id="reports-job"),
        ApiKeyEntry(parse_key_hash(hash_api_key(other)), "billing"),
    ))  # fmt: skip
    verifier = Verifier(VerifierConfig(api_keys=config), clock=clock)
    principal = verifier.verify_api_key(key)
    assert principal.subject == "reports"
    assert principal.scopes == {"orders:read"}
    assert principal.roles == {"reader"}
    assert principal.client_id == "reports-job"
    assert principal.method == "api_key"
    assert verifier.verify_api_key(other).subject == "billing"
    for wrong in (key[:-1], key + "x", "", "\u00e9" * 10, "x" * 10_000, hash_api_key(key)):
        with pytest.raises(TokenRejected) as info:
            verifier.verify_api_key(wrong)
        assert info.value.reason is Reason.API_KEY
        assert key not in str(info.value)
        assert key not in (info.value.debug or "")


def test_config_repr_never_shows_secrets() -> None:
    config = IntrospectionConfig(
        endpoint="https://as.test/introspect",
        client_id="c",
        client_secret="very-secret-value",
        any_audience=True,
    )
    assert "very-secret-value" not in repr(config)
    digest = parse_key_hash(hash_api_key("k" * 40))
    assert digest.hex() not in repr(ApiKeyEntry(digest, "s"))


def test_introspection_needs_audiences_or_an_explicit_waiver() -> None:
    """An active answer for another API's token must not pass: audiences are required."""
    base = {"endpoint": "https://as.test/introspect", "client_id": "c", "client_secret": "s"}
    with pytest.raises(ConfigError, match="audiences is required"):
        IntrospectionConfig(**base)
    with pytest.raises(ConfigError, match="not both"):
        IntrospectionConfig(**base, audiences=("https://api.test",), any_audience=True)
    assert IntrospectionConfig(**base, any_audience=True).any_audience
    assert IntrospectionConfig(**base, audiences=("https://api.test",)).audiences
