"""The server's `/metrics` (`observability.metrics`) after real requests through the in-process
server, on SQLite and PostgreSQL: exact names, labels and values of the token, client
authentication, refresh, sign-in, device, pool and limiter families; bounded labels only."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from authgate.server.config import LimitSettings, LimitsSettings
from authgate.server.observability import metrics
from authgate.server.storage import Database
from tests.support.e2e import DEVICE_GRANT, PASSWORD, USERNAME, Flow, only_form
from tests.support.server_harness import FakeClock, Harness, free_port, make_config, running

API = "https://api.example.test"

Samples = dict[tuple[tuple[str, str], ...], float]


async def scrape(http: httpx.AsyncClient) -> str:
    response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    return response.text


def samples(text: str, name: str) -> Samples:
    """The samples named `name`: {sorted label pairs: value}."""
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def value(text: str, name: str) -> float | None:
    return samples(text, name).get(())


# -- tokens issued ---------------------------------------------------------------------------------


async def test_tokens_issued_by_grant_format_and_algorithm(flow: Flow) -> None:
    h = flow.harness
    opaque = "https://opaque.example.test"
    es = "https://es.example.test"
    await h.create_api(opaque, token_format="opaque")
    await h.create_api(es, signing_alg="ES256")
    machine, secret = await h.create_client(scopes=tuple(f"{a}#read" for a in (API, opaque, es)))
    for resource, times in ((API, 1), (opaque, 2), (es, 1)):
        for _ in range(times):
            assert (await h.token(machine, secret, resource=resource)).status_code == 200
    tokens = await flow.web_tokens()
    refreshed = await flow.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    # The same refresh again inside the grace window: the same answer, no new token issued.
    again = await flow.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert again.status_code == 200
    assert again.json()["access_token"] == refreshed.json()["access_token"]
    assert (await h.token(machine, "wrong", resource=API)).status_code == 401

    text = await scrape(h.http)
    assert samples(text, "authgate_server_tokens_issued_total") == {
        (("alg", "RS256"), ("format", "jwt"), ("grant", "client_credentials")): 1.0,
        (("alg", "none"), ("format", "opaque"), ("grant", "client_credentials")): 2.0,
        (("alg", "ES256"), ("format", "jwt"), ("grant", "client_credentials")): 1.0,
        (("alg", "RS256"), ("format", "jwt"), ("grant", "authorization_code")): 1.0,
        (("alg", "RS256"), ("format", "jwt"), ("grant", "refresh_token")): 1.0,
    }


# -- client authentication -------------------------------------------------------------------------


async def test_client_authentication_failures_by_method_and_error(flow: Flow) -> None:
    http = flow.http
    web = flow.web.client_id
    form = {"grant_type": "client_credentials"}
    sent = [
        # client_secret_basic: a wrong secret, twice; and an unknown client.
        http.post("/token", data=form, auth=(web, "wrong")),
        http.post("/token", data=form, auth=(web, "wrong")),
        http.post("/token", data=form, auth=("no-such-client", "x")),
        # client_secret_post
        http.post("/token", data={**form, "client_id": web, "client_secret": "wrong"}),
        # private_key_jwt with a wrong assertion type
        http.post(
            "/token",
            data={**form, "client_id": web, "client_assertion_type": "x", "client_assertion": "y"},
        ),
        # none: the confidential client naming itself only; at introspection too
        http.post("/token", data={**form, "client_id": web}),
        http.post("/introspect", data={"token": "t", "client_id": "unknown-public"}),
        # other: no credentials; two methods at once; a Bearer header
        http.post("/token", data=form),
        http.post("/token", data={**form, "client_secret": "s"}, auth=(web, "wrong")),
        http.post("/revoke", data={"token": "t"}, headers={"Authorization": "Bearer abc"}),
    ]
    statuses = [(await request).status_code for request in sent]
    assert statuses == [401, 401, 401, 401, 401, 401, 401, 401, 400, 401]
    assert (await flow.token(grant_type="client_credentials")).status_code == 400  # authenticated

    text = await scrape(http)
    assert samples(text, "authgate_server_client_auth_failures_total") == {
        (("error", "invalid_client"), ("method", "client_secret_basic")): 3.0,
        (("error", "invalid_client"), ("method", "client_secret_post")): 1.0,
        (("error", "invalid_client"), ("method", "private_key_jwt")): 1.0,
        (("error", "invalid_client"), ("method", "none")): 2.0,
        (("error", "invalid_client"), ("method", "other")): 2.0,
        (("error", "invalid_request"), ("method", "other")): 1.0,
    }
    assert web not in text
    assert "no-such-client" not in text
    assert "unknown-public" not in text


# -- refresh tokens --------------------------------------------------------------------------------


async def test_refresh_token_reuse_and_family_revocations(flow: Flow) -> None:
    text = await scrape(flow.http)
    assert value(text, "authgate_server_refresh_token_reuse_total") == 0.0
    assert samples(text, "authgate_server_refresh_families_revoked_total") == {
        (("reason", "reuse"),): 0.0,
        (("reason", "revocation"),): 0.0,
    }

    first = await flow.web_tokens()
    rotated = await flow.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert rotated.status_code == 200
    flow.harness.clock.advance(11)  # past the grace window: the old token again is reuse
    reused = await flow.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert reused.json()["error"] == "invalid_grant"
    # Revoked already: presenting it again is no second detection.
    again = await flow.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert again.json()["error"] == "invalid_grant"

    second = await flow.web_tokens()
    for _ in range(2):  # the second revocation finds the family revoked: counted once
        revoked = await flow.post("/revoke", token=second["refresh_token"])
        assert revoked.status_code == 200

    text = await scrape(flow.http)
    assert value(text, "authgate_server_refresh_token_reuse_total") == 1.0
    assert samples(text, "authgate_server_refresh_families_revoked_total") == {
        (("reason", "reuse"),): 1.0,
        (("reason", "revocation"),): 1.0,
    }


# -- sign-in and user codes ------------------------------------------------------------------------


async def test_sign_in_failures_and_throttles(flow: Flow) -> None:
    agent = flow.agent()
    page = await flow.authorization_page(agent)
    for _ in range(6):  # five free attempts per account; the sixth failure makes the next wait
        failed = await agent.sign_in(page, USERNAME, "wrong password")
        assert failed.status_code == 200
    throttled = await agent.sign_in(page, USERNAME, PASSWORD)
    assert throttled.status_code == 429
    unknown = await agent.sign_in(page, "nobody", "whatever")  # counted like a wrong password
    assert unknown.status_code == 200

    text = await scrape(flow.http)
    assert value(text, "authgate_server_signin_failures_total") == 7.0
    assert samples(text, "authgate_server_throttled_total") == {
        (("flow", "signin"),): 1.0,
        (("flow", "user_code"),): 0.0,
    }
    assert USERNAME not in text
    assert "nobody" not in text


async def test_user_code_throttle(flow: Flow) -> None:
    agent = flow.agent()
    login = await agent.http.get("/device")
    page = await agent.sign_in(login, USERNAME, PASSWORD)
    form = only_form(page)
    for _ in range(6):
        assert (await agent.submit(form, user_code="BBBB-BBBB")).status_code == 200
    for _ in range(2):
        assert (await agent.submit(form, user_code="BBBB-BBBB")).status_code == 429

    text = await scrape(flow.http)
    assert samples(text, "authgate_server_throttled_total") == {
        (("flow", "signin"),): 0.0,
        (("flow", "user_code"),): 2.0,
    }
    assert value(text, "authgate_server_signin_failures_total") == 0.0


# -- pending device codes --------------------------------------------------------------------------


async def test_device_codes_pending_read_from_storage(
    flow: Flow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics, "REUSE_FOR", 0.0)
    assert value(await scrape(flow.http), "authgate_server_device_codes_pending") == 0.0
    codes = []
    for _ in range(3):
        response = await flow.post("/device_authorization", flow.native, scope="read")
        assert response.status_code == 200
        codes.append(response.json())
    assert value(await scrape(flow.http), "authgate_server_device_codes_pending") == 3.0
    # Denied: no longer pending.
    agent = flow.agent()
    page = await agent.sign_in(await agent.http.get("/device"), USERNAME, PASSWORD)
    confirm = await agent.submit(only_form(page), user_code=codes[0]["user_code"])
    await agent.submit(only_form(confirm), "deny")
    assert value(await scrape(flow.http), "authgate_server_device_codes_pending") == 2.0
    flow.harness.clock.advance(600)  # expired
    assert value(await scrape(flow.http), "authgate_server_device_codes_pending") == 0.0
    poll = await flow.token(
        flow.native, grant_type=DEVICE_GRANT, device_code=codes[1]["device_code"]
    )
    assert poll.json()["error"] == "expired_token"


async def test_pending_count_is_reused_and_read_once_at_a_time(
    flow: Flow, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = flow.harness.server.storage
    reads = 0
    real = storage.count_pending_device_authorizations

    async def counted(now: int) -> int:
        nonlocal reads
        reads += 1
        return await real(now)

    monkeypatch.setattr(storage, "count_pending_device_authorizations", counted)
    monkeypatch.setattr(metrics, "REUSE_FOR", 3600.0)  # no count expires during the test
    texts = await asyncio.gather(*(scrape(flow.http) for _ in range(10)))
    assert (await flow.post("/device_authorization", flow.native, scope="read")).status_code == 200
    texts.append(await scrape(flow.http))
    assert {value(t, "authgate_server_device_codes_pending") for t in texts} == {0.0}
    assert reads == 1
    monkeypatch.setattr(metrics, "REUSE_FOR", 0.0)
    assert value(await scrape(flow.http), "authgate_server_device_codes_pending") == 1.0
    assert reads == 2


# -- database pool ---------------------------------------------------------------------------------


async def test_pool_gauges_and_errors_of_an_unreachable_database(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics, "REUSE_FOR", 0.0)
    text = await scrape(harness.http)
    assert value(text, "authgate_server_db_pool_waiting") == 0.0
    assert samples(text, "authgate_server_db_pool_errors_total") == {
        (("kind", "connect"),): 0.0,
        (("kind", "timeout"),): 0.0,
    }
    assert value(text, "authgate_server_device_codes_pending") == 0.0

    storage = harness.server.storage
    real = storage._db  # type: ignore[attr-defined]
    # Nothing listens on this port: every connection is refused.
    dead = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/none", pool_timeout=1)
    storage._db = dead  # type: ignore[attr-defined]
    try:
        refused = await harness.http.post(
            "/token", data={"grant_type": "client_credentials"}, auth=("c", "s")
        )
        text = await scrape(harness.http)  # the scrape's own read fails too, and is left out
    finally:
        storage._db = real  # type: ignore[attr-defined]
        await dead.close()
    assert refused.status_code == 503
    assert samples(text, "authgate_server_db_pool_errors_total") == {
        (("kind", "connect"),): 2.0,
        (("kind", "timeout"),): 0.0,
    }
    assert value(text, "authgate_server_db_pool_waiting") == 0.0
    assert value(text, "authgate_server_device_codes_pending") is None
    assert "127.0.0.1" not in text


# -- the limiter -----------------------------------------------------------------------------------


async def test_the_servers_limits_are_in_its_metrics(database_url: str, clock: FakeClock) -> None:
    limits = LimitsSettings(token=LimitSettings("2/hour", burst=2))
    async with running(replace(make_config(database_url), limits=limits), clock) as h:
        await h.create_api(API)
        client, secret = await h.create_client(scopes=("read",))
        statuses = [(await h.token(client, secret)).status_code for _ in range(3)]
        text = await scrape(h.http)
    assert statuses == [200, 200, 429]
    assert samples(text, "authgate_limit_decisions_total") == {
        (("limit", "token"), ("outcome", "allowed")): 2.0,
        (("limit", "token"), ("outcome", "limited")): 1.0,
    }
    assert value(text, "authgate_limit_store_errors_total") == 0.0
    assert value(text, "authgate_limit_store_outages_total") == 0.0
    assert value(text, "authgate_limit_store_up") == 1.0
    assert client.client_id not in text


async def test_every_family_is_described_once(harness: Harness) -> None:
    """The names the module docstring and docs/operations.md list, each one family."""
    text = await scrape(harness.http)
    names = [f.name for f in text_string_to_metric_families(text)]
    assert len(names) == len(set(names))
    assert set(names) >= {
        "authgate_server_requests",
        "authgate_server_request_duration_seconds",
        "authgate_server_tokens_issued",
        "authgate_server_client_auth_failures",
        "authgate_server_refresh_token_reuse",
        "authgate_server_refresh_families_revoked",
        "authgate_server_signin_failures",
        "authgate_server_throttled",
        "authgate_server_device_codes_pending",
        "authgate_server_signing_key_age_seconds",
        "authgate_server_db_pool_connections_in_use",
        "authgate_server_db_pool_capacity",
        "authgate_server_db_pool_waiting",
        "authgate_server_db_pool_errors",
        "authgate_limit_decisions",
        "authgate_limit_store_errors",
        "authgate_limit_store_outages",
        "authgate_limit_store_up",
    }
