"""Dynamic client registration through the running app on SQLite and PostgreSQL (RFC 7591 §3,
RFC 7592 §2): the three modes, the client information response, the registered client at the
token endpoint, reading, replacing and deleting a registration, audit events, discovery, the
purge of unused registered clients, and the per-address limit of open registration."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from authgate.jose import JWK
from authgate.server.config import (
    HttpSettings,
    LimitSettings,
    LimitsSettings,
    RegistrationSettings,
)
from authgate.server.registration.initial_tokens import (
    create_initial_access_token,
    revoke_initial_access_token,
)
from tests.support.server_harness import ISSUER, FakeClock, Harness, make_config, running

DAY = 86400
API = "https://api.example.test"
CC = {"client_name": "billing", "grant_types": ["client_credentials"], "scope": "read"}
WEB = {
    "client_name": "web app",
    "redirect_uris": ["https://app.example.test/callback"],
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "scope": "openid read",
}


def _open(**changes: Any) -> RegistrationSettings:
    return RegistrationSettings(mode="open", allowed_scopes=("read",), **changes)


@pytest.fixture
async def open_server(database_url: str, clock: FakeClock) -> AsyncIterator[Harness]:
    async with running(make_config(database_url, registration=_open()), clock) as h:
        await h.create_api(API)
        yield h


@pytest.fixture
async def token_server(database_url: str, clock: FakeClock) -> AsyncIterator[Harness]:
    settings = RegistrationSettings(mode="token", allowed_scopes=("read",))
    async with running(make_config(database_url, registration=settings), clock) as h:
        await h.create_api(API)
        yield h


async def register(h: Harness, metadata: dict[str, Any], **headers: str) -> httpx.Response:
    return await h.http.post("/register", json=metadata, headers=headers)


async def test_open_registration_issues_a_working_confidential_client(open_server: Harness) -> None:
    h = open_server
    response = await register(h, CC)
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    info = response.json()
    assert info["client_name"] == "billing"
    assert info["grant_types"] == ["client_credentials"]
    assert info["response_types"] == []
    assert info["token_endpoint_auth_method"] == "client_secret_basic"  # RFC 7591 §2 default
    assert info["client_secret_expires_at"] == 0
    assert info["client_id_issued_at"] == int(h.clock())
    assert info["scope"] == "read"
    assert info["registration_client_uri"] == f"{ISSUER}/register/{info['client_id']}"
    assert len(info["registration_access_token"]) >= 43
    # Stored like a CLI client: hashed secret, keyed hash of the registration token, origin.
    stored = await h.server.storage.get_client(info["client_id"])
    assert stored is not None
    assert stored.origin == "registration"
    assert stored.secret_hash == h.server.secret.hash_client_secret(info["client_secret"])
    token_hash = h.server.secret.hash_registration_token(info["registration_access_token"])
    assert stored.registration_token_hash == token_hash
    assert stored.first_used_at is None
    # The new client gets tokens for the scope it registered, and nothing else.
    tokens = await h.http.post(
        "/token",
        data={"grant_type": "client_credentials", "resource": API, "scope": "read"},
        auth=(info["client_id"], info["client_secret"]),
    )
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["scope"] == "read"
    refused = await h.http.post(
        "/token",
        data={"grant_type": "client_credentials", "resource": API, "scope": "write"},
        auth=(info["client_id"], info["client_secret"]),
    )
    assert refused.status_code == 400
    used = await h.server.storage.get_client(info["client_id"])
    assert used is not None
    assert used.first_used_at == int(h.clock())
    events = await h.server.storage.list_audit_events(0, 100)
    registered = [e for e in events if e.kind == "client.registered"]
    assert [(e.subject, e.actor) for e in registered] == [(info["client_id"], "registration")]


async def test_a_web_client_registers_with_identity_scopes_and_defaults(
    open_server: Harness,
) -> None:
    info = (await register(open_server, WEB)).json()
    assert info["application_type"] == "web"
    assert info["response_types"] == ["code"]
    assert info["redirect_uris"] == WEB["redirect_uris"]
    # What it may request: its API scope and the identity scopes of the user-facing flows.
    assert info["scope"].split(" ")[0] == "read"
    assert "openid" in info["scope"].split(" ")
    defaults = (await register(open_server, {"redirect_uris": WEB["redirect_uris"]})).json()
    assert defaults["grant_types"] == ["authorization_code"]  # RFC 7591 §2 defaults
    assert defaults["response_types"] == ["code"]


async def test_a_native_public_client_registers_loopback_and_private_use_uris(
    open_server: Harness,
) -> None:
    native = {
        "application_type": "native",
        "token_endpoint_auth_method": "none",
        "redirect_uris": ["http://127.0.0.1/callback", "com.example.app:/callback"],
    }
    response = await register(open_server, native)
    assert response.status_code == 201, response.text
    assert "client_secret" not in response.json()
    assert "client_secret_expires_at" not in response.json()
    as_web = await register(open_server, {**native, "application_type": "web"})
    assert as_web.status_code == 400
    assert as_web.json()["error"] == "invalid_redirect_uri"
    assert "native" in as_web.json()["error_description"]


async def test_private_key_jwt_registers_with_a_jwks(open_server: Harness) -> None:
    key = JWK.generate("EC", crv="P-256", alg="ES256")
    jwks = {"keys": [key.public().to_dict()]}
    metadata = {**CC, "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks}
    response = await register(open_server, metadata)
    assert response.status_code == 201, response.text
    assert response.json()["jwks"] == jwks
    assert "client_secret" not in response.json()
    both = await register(open_server, {**metadata, "jwks_uri": "https://app.example.test/jwks"})
    assert both.status_code == 400
    assert "exactly one of jwks or jwks_uri" in both.json()["error_description"]


async def test_read_update_and_delete_with_the_registration_access_token(
    open_server: Harness,
) -> None:
    h = open_server
    info = (await register(h, WEB)).json()
    uri = info["registration_client_uri"].removeprefix(ISSUER)
    auth = {"Authorization": f"Bearer {info['registration_access_token']}"}
    read = await h.http.get(uri, headers=auth)
    assert read.status_code == 200
    assert read.json()["client_id"] == info["client_id"]
    assert "client_secret" not in read.json()  # shown once only
    assert "registration_access_token" not in read.json()
    # A full replacement (RFC 7592 §2.2): what is omitted goes back to its default.
    update = {
        "client_id": info["client_id"],
        "client_name": "renamed",
        "redirect_uris": ["https://app.example.test/other"],
    }
    replaced = await h.http.put(uri, json=update, headers=auth)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["client_name"] == "renamed"
    assert replaced.json()["grant_types"] == ["authorization_code"]
    assert "client_secret" not in replaced.json()  # the secret stays the one issued
    stored = await h.server.storage.get_client(info["client_id"])
    assert stored is not None
    assert stored.redirect_uris == ("https://app.example.test/other",)
    assert stored.access == ()
    assert stored.secret_hash == h.server.secret.hash_client_secret(info["client_secret"])
    # Same rules as a registration.
    bad = await h.http.put(uri, json={**update, "redirect_uris": ["http://x.test/"]}, headers=auth)
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_redirect_uri"
    wrong_secret = await h.http.put(uri, json={**update, "client_secret": "x" * 43}, headers=auth)
    assert wrong_secret.json()["error"] == "invalid_client_metadata"
    other_id = await h.http.put(uri, json={**update, "client_id": "other"}, headers=auth)
    assert other_id.json()["error"] == "invalid_client_metadata"
    # Moving to a public client drops the secret; back to a secret-based method issues a new one.
    public = {**update, "token_endpoint_auth_method": "none"}
    assert (await h.http.put(uri, json=public, headers=auth)).status_code == 200
    again = await h.http.put(uri, json=update, headers=auth)
    new_secret = again.json()["client_secret"]
    assert new_secret != info["client_secret"]
    stored = await h.server.storage.get_client(info["client_id"])
    assert stored is not None
    assert stored.secret_hash == h.server.secret.hash_client_secret(new_secret)
    deleted = await h.http.delete(uri, headers=auth)
    assert deleted.status_code == 204
    assert await h.server.storage.get_client(info["client_id"]) is None
    gone = await h.http.get(uri, headers=auth)
    assert gone.status_code == 401
    kinds = [e.kind for e in await h.server.storage.list_audit_events(0, 100)]
    assert kinds.count("client.registration_updated") == 3
    assert kinds.count("client.registration_deleted") == 1


async def test_the_configuration_endpoint_wants_the_clients_own_token(
    open_server: Harness,
) -> None:
    h = open_server
    first = (await register(h, CC)).json()
    second = (await register(h, CC)).json()
    uri = first["registration_client_uri"].removeprefix(ISSUER)
    for headers in (
        {},
        {"Authorization": "Bearer " + second["registration_access_token"]},
        {"Authorization": "Bearer " + first["client_secret"]},
        {"Authorization": "Basic " + first["registration_access_token"]},
    ):
        for method in ("GET", "PUT", "DELETE"):
            response = await h.http.request(method, uri, headers=headers, json={})
            assert response.status_code == 401, (method, headers)
            assert response.headers["www-authenticate"].startswith("Bearer ")
    # The body never tells whether the client exists.
    unknown = await h.http.get(
        "/register/no-such-client",
        headers={"Authorization": "Bearer " + first["registration_access_token"]},
    )
    wrong = await h.http.get(
        uri, headers={"Authorization": "Bearer " + second["registration_access_token"]}
    )
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json() == {**wrong.json(), "error": "invalid_token"}
    # A CLI client has no registration access token: never managed here.
    cli_client, _ = await h.create_client()
    bearer = {"Authorization": "Bearer x"}
    cli = await h.http.get(f"/register/{cli_client.client_id}", headers=bearer)
    assert cli.status_code == 401
    assert await h.server.storage.get_client(first["client_id"]) is not None


async def test_token_mode_wants_a_usable_initial_access_token(token_server: Harness) -> None:
    h = token_server
    storage, secret, now = h.server.storage, h.server.secret, int(h.clock())
    missing = await register(h, CC)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer ")
    wrong = await register(h, CC, Authorization="Bearer " + "x" * 43)
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_token"
    record, token = await create_initial_access_token(
        storage, secret, expires_in=3600, max_uses=2, now=now
    )
    assert token not in repr(record)
    assert record.token_hash == secret.hash_registration_token(token)
    bearer = {"Authorization": f"Bearer {token}"}
    # A refused registration costs the token no use.
    invalid = await register(h, {**CC, "scope": "write"}, **bearer)
    assert invalid.status_code == 400
    assert invalid.json()["error"] == "invalid_client_metadata"
    assert (await register(h, CC, **bearer)).status_code == 201
    assert (await register(h, CC, **bearer)).status_code == 201
    used_up = await register(h, CC, **bearer)
    assert used_up.status_code == 401
    [listed] = await storage.list_initial_access_tokens()
    assert listed.uses == 2
    # Expired and revoked tokens register nothing.
    _, expiring = await create_initial_access_token(storage, secret, expires_in=60, now=now)
    h.clock.advance(60)
    assert (await register(h, CC, Authorization=f"Bearer {expiring}")).status_code == 401
    revocable, value = await create_initial_access_token(storage, secret, now=int(h.clock()))
    assert await revoke_initial_access_token(storage, revocable.token_id, now=int(h.clock()))
    assert (await register(h, CC, Authorization=f"Bearer {value}")).status_code == 401
    kinds = [e.kind for e in await storage.list_audit_events(0, 100)]
    assert kinds.count("registration_token.created") == 3
    assert kinds.count("registration_token.revoked") == 1


async def test_off_mode_serves_and_advertises_nothing(harness: Harness) -> None:
    assert (await register(harness, CC)).status_code == 404
    assert (await harness.http.get("/register/x")).status_code == 404
    doc = (await harness.http.get("/.well-known/oauth-authorization-server")).json()
    assert "registration_endpoint" not in doc


async def test_discovery_advertises_the_endpoint_when_on(open_server: Harness) -> None:
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        doc = (await open_server.http.get(path)).json()
        assert doc["registration_endpoint"] == ISSUER + "/register"


async def test_unused_registered_clients_are_purged_after_the_configured_time(
    database_url: str, clock: FakeClock
) -> None:
    config = make_config(database_url, registration=_open(unused_client_lifetime=7 * DAY))
    async with running(config, clock) as h:
        await h.create_api(API)
        unused = (await register(h, CC)).json()
        used = (await register(h, CC)).json()
        cli_client, _ = await h.create_client()
        tokens = await h.http.post(
            "/token",
            data={"grant_type": "client_credentials", "resource": API},
            auth=(used["client_id"], used["client_secret"]),
        )
        assert tokens.status_code == 200
        storage = h.server.storage
        await storage.purge_expired(int(clock()) + 7 * DAY - 1)
        assert await storage.get_client(unused["client_id"]) is not None
        await storage.purge_expired(int(clock()) + 7 * DAY)
        assert await storage.get_client(unused["client_id"]) is None
        assert await storage.get_client(used["client_id"]) is not None
        assert await storage.get_client(cli_client.client_id) is not None


async def test_unused_registered_clients_are_kept_when_the_setting_is_zero(
    database_url: str, clock: FakeClock
) -> None:
    config = make_config(database_url, registration=_open(unused_client_lifetime=0))
    async with running(config, clock) as h:
        await h.create_api(API)
        info = (await register(h, CC)).json()
        await h.server.storage.purge_expired(int(clock()) + 3650 * DAY)
        assert await h.server.storage.get_client(info["client_id"]) is not None


async def test_open_registration_is_limited_per_caller_address(
    database_url: str, clock: FakeClock
) -> None:
    limits = LimitsSettings(registration=LimitSettings("3/hour", burst=3))
    # The test client connects from 127.0.0.1; as a trusted proxy it names other callers.
    http = HttpSettings(cache_ttl=0, trusted_proxies=("127.0.0.1",))
    config = make_config(database_url, registration=_open(), limits=limits, http=http)
    async with running(config, clock) as h:
        await h.create_api(API)
        one = {"X-Forwarded-For": "192.0.2.1"}
        statuses = [(await register(h, CC, **one)).status_code for _ in range(4)]
        assert statuses == [201, 201, 201, 429]
        refused = await register(h, CC, **one)
        assert refused.status_code == 429
        assert refused.json()["error"]
        assert int(refused.headers["retry-after"]) > 0
        # Another address has its own allowance.
        other = await register(h, CC, **{"X-Forwarded-For": "192.0.2.7"})
        assert other.status_code == 201


async def test_an_update_checks_the_allowed_scopes_again(open_server: Harness) -> None:
    h = open_server
    info = (await register(h, CC)).json()
    uri = info["registration_client_uri"].removeprefix(ISSUER)
    auth = {"Authorization": f"Bearer {info['registration_access_token']}"}
    widened = {"client_id": info["client_id"], **CC, "scope": "read write"}
    response = await h.http.put(uri, json=widened, headers=auth)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"
    assert "'write'" in response.json()["error_description"]
    stored = await h.server.storage.get_client(info["client_id"])
    assert stored is not None
    assert [a.scopes for a in stored.access] == [("read",)]


async def test_a_single_use_token_registers_one_client_under_concurrency(
    token_server: Harness,
) -> None:
    h = token_server
    _, token = await create_initial_access_token(
        h.server.storage, h.server.secret, max_uses=1, now=int(h.clock())
    )
    bearer = {"Authorization": f"Bearer {token}"}
    responses = await asyncio.gather(*(register(h, CC, **bearer) for _ in range(8)))
    assert sorted(r.status_code for r in responses) == [201] + [401] * 7
    assert len(await h.server.storage.list_clients()) == 1


@pytest.mark.parametrize(
    ("allowed", "granted"),
    [
        (("https://a.test/mcp#mcp:tools", "https://b.test/mcp#mcp:tools"), ("a", "b")),
        (("https://a.test/mcp#mcp:tools",), ("a",)),
        ((), ()),
    ],
)
async def test_a_scope_several_apis_define_is_granted_where_allowed(
    database_url: str, clock: FakeClock, allowed: tuple[str, ...], granted: tuple[str, ...]
) -> None:
    """An MCP client registers with the scope a server's challenge named (`mcp:tools`), not
    knowing that other MCP servers on the same issuer use that name too: it gets the scope on
    each API that defines it and `allowed_scopes` allows (RFC 7591 §3.2.1 lets the server grant
    less), and the usual refusal when none does."""
    settings = RegistrationSettings(mode="open", allowed_scopes=allowed)
    async with running(make_config(database_url, registration=settings), clock) as h:
        for name in ("a", "b"):
            await h.create_api(f"https://{name}.test/mcp", scopes=("mcp:tools",))
        native = {
            "application_type": "native",
            "token_endpoint_auth_method": "none",
            "redirect_uris": ["http://127.0.0.1/callback"],
            "scope": "mcp:tools",
        }
        response = await register(h, native)
        if not granted:
            assert response.status_code == 400, response.text
            assert "may not be requested" in response.json()["error_description"]
            return
        assert response.status_code == 201, response.text
        assert response.json()["scope"].split().count("mcp:tools") == 1
        stored = await h.server.storage.get_client(response.json()["client_id"])
        assert stored is not None
        assert sorted((a.api, a.scopes) for a in stored.access) == [
            (f"https://{name}.test/mcp", ("mcp:tools",)) for name in granted
        ]


async def test_id_token_signed_response_alg_is_registered_and_checked(
    open_server: Harness,
) -> None:
    """OpenID Connect Registration §2; the alg must be one `[keys] algorithms` signs with."""
    response = await register(open_server, {**WEB, "id_token_signed_response_alg": "ES256"})
    assert response.status_code == 201, response.text
    info = response.json()
    assert info["id_token_signed_response_alg"] == "ES256"
    stored = await open_server.server.storage.get_client(info["client_id"])
    assert stored is not None
    assert stored.id_token_alg == "ES256"
    default = (await register(open_server, WEB)).json()
    assert "id_token_signed_response_alg" not in default  # RS256
    refused = await register(open_server, {**WEB, "id_token_signed_response_alg": "PS256"})
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_client_metadata"
    assert (
        "id_token_signed_response_alg PS256: the server signs with no PS256 key"
        in (refused.json()["error_description"])
    )
    wrong = await register(open_server, {**WEB, "id_token_signed_response_alg": "none"})
    assert wrong.json()["error"] == "invalid_client_metadata"
    # An update (RFC 7592 §2.2) is held to the same rule.
    token = info["registration_access_token"]
    update = {**WEB, "client_id": info["client_id"], "id_token_signed_response_alg": "PS256"}
    put = await open_server.http.put(
        f"/register/{info['client_id']}", json=update, headers={"Authorization": f"Bearer {token}"}
    )
    assert put.json()["error"] == "invalid_client_metadata"
