"""The gate against a running `authgate serve`: APIs and clients registered with the admin CLI,
tokens from its token endpoint (client credentials, client_secret_basic), the gate configured with
the issuer URL alone (RFC 8414 discovery) in front of FastAPI (ASGI) and Flask (WSGI). JWT access
tokens (RFC 9068, `typ: at+jwt` required) in every signing algorithm the server offers, and opaque
tokens through RFC 7662 introspection.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from authgate.gate import Gate
from tests.support.interop import (
    AuthgateServer,
    OffsetClock,
    RegisteredClient,
    make_gate,
    serving,
    tamper_signature,
)
from tests.support.tokens import header_of

ORDERS = "https://orders.authgate.test"
BILLING = "https://billing.authgate.test"
OPAQUE = "https://opaque.authgate.test"
REPORTS = {
    alg: f"https://reports-{alg.lower()}.authgate.test" for alg in ("ES256", "PS256", "EdDSA")
}


@dataclass(frozen=True)
class Setup:
    server: AuthgateServer
    client: RegisteredClient  # may request tokens for every API; role "auditor"
    gate_client: RegisteredClient  # the resource server: may introspect the opaque API


@pytest.fixture(scope="module")
def setup(authgate_server: AuthgateServer) -> Setup:
    server = authgate_server
    server.start()
    # Registered while the server runs, as an operator would.
    server.create_api(ORDERS, "orders:read", "orders:write")
    server.create_api(BILLING, "billing:read")
    server.create_api(OPAQUE, "opaque:read", token_format="opaque")
    for alg, identifier in REPORTS.items():
        server.create_api(identifier, "reports:read", alg=alg)
    scopes = ["orders:read", "orders:write", "billing:read", "opaque:read"]
    scopes += [f"{identifier}#reports:read" for identifier in REPORTS.values()]
    options = ["--grant", "client_credentials", "--role", "auditor"]
    for scope in scopes:
        options += ["--scope", scope]
    client = server.create_client("interop service", *options)
    gate_client = server.create_client("orders gate", "--introspect", OPAQUE)
    return Setup(server, client, gate_client)


def gate_for(setup: Setup, directory: Path, clock: OffsetClock, issuer_extra: str = "") -> Gate:
    url = setup.server.url
    secret_file = directory / "introspection.secret"
    secret_file.write_text(setup.gate_client.client_secret + "\n")
    audiences = ", ".join(f'"{a}"' for a in (ORDERS, *REPORTS.values()))
    toml = f"""
realm = "interop"

[[issuers]]
issuer = "{url}"
audiences = [{audiences}]
typ = "at+jwt"
{issuer_extra}

[introspection]
endpoint = "{url}/introspect"
client_id = "{setup.gate_client.client_id}"
client_secret_file = "{secret_file}"
issuer = "{url}"
audiences = ["{OPAQUE}"]
cache_ttl = 5
"""
    return make_gate(directory, toml, clock)


def test_a_jwt_access_token_gives_the_principal(
    setup: Setup, shell: str, tmp_path: Path, clock: OffsetClock
) -> None:
    token = setup.server.token(setup.client, ORDERS, "orders:read")
    assert header_of(token)["typ"] == "at+jwt"
    gate = gate_for(setup, tmp_path, clock)
    with serving(shell, gate) as app:
        reply = app.get("/orders", token)
        (status,) = gate.verifier.issuer_status()
    client_id = setup.client.client_id
    assert reply.status == 200, reply.body
    assert reply.body == {
        "subject": client_id,
        "client_id": client_id,
        "scopes": ["orders:read"],
        "roles": ["auditor"],
        "issuer": setup.server.url,
        "method": "jwt",
        "aud": ORDERS,
    }
    # The server's JWKS says `Cache-Control: max-age=3600`; the gate keeps the keys that long.
    assert status.ready
    assert status.jwks_uri == setup.server.url + "/.well-known/jwks.json"
    assert status.fresh_until is not None
    assert 3500 < status.fresh_until - clock() <= 3600


@pytest.mark.parametrize("alg", sorted(REPORTS))
def test_every_signing_algorithm_the_server_offers_verifies(
    setup: Setup, shell: str, tmp_path: Path, clock: OffsetClock, alg: str
) -> None:
    token = setup.server.token(setup.client, REPORTS[alg])
    assert header_of(token)["alg"] == alg
    with serving(shell, gate_for(setup, tmp_path, clock)) as app:
        reply = app.get("/reports", token)
    assert reply.status == 200, reply.body
    assert reply.body["aud"] == REPORTS[alg]


def test_refusals_follow_rfc_6750(
    setup: Setup, shell: str, tmp_path: Path, clock: OffsetClock
) -> None:
    server, client = setup.server, setup.client
    read_only = server.token(client, ORDERS, "orders:read")
    billing = server.token(client, BILLING)
    with serving(shell, gate_for(setup, tmp_path, clock)) as app:
        missing_scope = app.request("POST", "/orders", read_only)
        wrong_audience = app.get("/orders", billing)
        tampered = app.get("/orders", tamper_signature(read_only))
        clock.advance(300 + 30 + 5)  # the API's default lifetime, then the leeway
        expired = app.get("/orders", read_only)
    assert missing_scope.status == 403
    assert 'error="insufficient_scope", ' in missing_scope.challenge
    assert 'scope="orders:write"' in missing_scope.challenge
    for reply in (wrong_audience, tampered, expired):
        assert reply.status == 401, reply.body
        assert 'error="invalid_token"' in reply.challenge
    assert expired.body["error_description"] == "the access token has expired"


def test_opaque_tokens_are_introspected_and_revocation_is_seen_after_the_cache_ttl(
    setup: Setup, shell: str, tmp_path: Path, clock: OffsetClock
) -> None:
    server, client = setup.server, setup.client
    token = server.token(client, OPAQUE)
    assert token.count(".") == 0
    gate = gate_for(setup, tmp_path, clock)
    with serving(shell, gate) as app:
        active = app.get("/opaque", token)
        server.revoke(client, token)
        cached = app.get("/opaque", token)  # within cache_ttl: the answer is remembered
        clock.advance(6)
        revoked = app.get("/opaque", token)
    assert active.status == 200, active.body
    assert active.body["method"] == "introspection"
    assert active.body["subject"] == client.client_id
    assert active.body["client_id"] == client.client_id
    assert active.body["scopes"] == ["opaque:read"]
    assert active.body["roles"] == ["auditor"]
    assert cached.status == 200
    assert revoked.status == 401
    assert 'error="invalid_token"' in revoked.challenge
    assert gate.verifier.metrics.introspections == 2


def test_a_key_rotation_at_the_server_reaches_the_gate_before_the_new_key_signs(
    tmp_path: Path, clock: OffsetClock
) -> None:
    # Short key periods: a new key is published at once and signs 4 s later; the JWKS says
    # max-age=1, and this gate's floor lets it obey that.
    keys = """
[keys]
algorithms = ["RS256"]
jwks_max_age = "1s"
refresh_interval = "1s"
publication_lead = "4s"
rotation_period = "1h"
"""
    server = AuthgateServer(tmp_path, keys)
    try:
        server.start()
        server.create_api(ORDERS, "orders:read")
        client = server.create_client(
            "svc", "--grant", "client_credentials", "--scope", "orders:read"
        )
        setup = Setup(server, client, client)
        gate = gate_for(setup, tmp_path, clock, "[issuers.jwks]\nmin_ttl = 1")
        with serving("fastapi", gate) as app:
            before = server.token(client, ORDERS)
            assert app.get("/orders", before).status == 200
            (rotated,) = server.cli("keys", "rotate")
            deadline = time.monotonic() + 20
            while header_of(after := server.token(client, ORDERS))["kid"] != rotated["kid"]:
                assert time.monotonic() < deadline, "the new key never started signing"
                time.sleep(0.2)
            statuses = [app.get("/orders", t).status for t in (after, before)]
        metrics = gate.verifier.metrics.issuers[server.url]
    finally:
        server.close()
    assert statuses == [200, 200]
    # The background refresh, following Cache-Control, held the new key before its first token.
    assert metrics.unknown_kids == 0
    assert metrics.jwks_fetches >= 2
