"""The gate against an independent issuer: npm `oidc-provider` issuing RFC 9068 JWT access tokens
(client credentials, RFC 8707 resource indicators), found by discovery, in front of a FastAPI
application (ASGI middleware) and a Flask application (WSGI middleware); and once through
`authgate gateway`.

Every test is about what a user of the gate relies on: the principal the application sees, and the
RFC 6750 answer for each kind of bad token.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from authgate.gate import Gate
from authgate.jose import JWK, jwt
from tests.support.interop import (
    EchoUpstream,
    GatewayProcess,
    OffsetClock,
    OidcProviderIssuer,
    free_port,
    make_gate,
    serving,
    tamper_claims,
    tamper_signature,
)
from tests.support.tokens import header_of

pytestmark = pytest.mark.node

ORDERS = OidcProviderIssuer.ORDERS
REPORTS = OidcProviderIssuer.REPORTS
OPAQUE = OidcProviderIssuer.OPAQUE


def gate_for(
    issuer: OidcProviderIssuer,
    directory: Path,
    clock: OffsetClock,
    *,
    audiences: tuple[str, ...] = (ORDERS,),
    introspection: bool = False,
    also: tuple[OidcProviderIssuer, ...] = (),
) -> Gate:
    """A gate configured by the issuer URL alone (keys found through discovery)."""
    toml = 'realm = "interop"\n'
    for each in (issuer, *also):
        toml += f"""
[[issuers]]
issuer = "{each.url}"
audiences = {json.dumps(list(audiences))}
typ = "at+jwt"
"""
    if introspection:
        secret_file = directory / "introspection.secret"
        secret_file.write_text(issuer.gate_secret + "\n")
        toml += f"""
[introspection]
endpoint = "{issuer.introspection_endpoint}"
client_id = "{issuer.GATE_CLIENT_ID}"
client_secret_file = "{secret_file}"
issuer = "{issuer.url}"
audiences = ["{OPAQUE}"]
"""
    return make_gate(directory, toml, clock)


def test_a_valid_token_reaches_the_application_with_its_principal(
    oidc_provider: OidcProviderIssuer, shell: str, tmp_path: Path, clock: OffsetClock
) -> None:
    token = oidc_provider.token(ORDERS, "orders:read")
    assert header_of(token)["typ"] == "at+jwt"
    gate = gate_for(oidc_provider, tmp_path, clock)
    with serving(shell, gate) as app:
        first = app.get("/orders", token)
        again = app.get("/orders", token)  # a verified-token cache hit
        assert gate.ready
    expected = {
        "subject": OidcProviderIssuer.CLIENT_ID,
        "client_id": OidcProviderIssuer.CLIENT_ID,
        "scopes": ["orders:read"],
        "roles": ["auditor"],
        "issuer": oidc_provider.url,
        "method": "jwt",
        "aud": ORDERS,
    }
    assert (first.status, first.body) == (200, expected)
    assert (again.status, again.body) == (200, expected)
    metrics = gate.verifier.metrics
    assert metrics.issuers[oidc_provider.url].jwks_fetches == 1
    assert metrics.token_cache_hits >= 1


def test_es256_tokens_are_verified_with_the_ec_key(
    oidc_provider: OidcProviderIssuer, shell: str, tmp_path: Path, clock: OffsetClock
) -> None:
    token = oidc_provider.token(REPORTS, "reports:read")
    assert header_of(token)["alg"] == "ES256"
    with serving(shell, gate_for(oidc_provider, tmp_path, clock, audiences=(REPORTS,))) as app:
        reply = app.get("/reports", token)
    assert reply.status == 200, reply.body
    assert reply.body["scopes"] == ["reports:read"]


def test_websocket_handshakes_are_judged_like_requests(
    oidc_provider: OidcProviderIssuer, tmp_path: Path, clock: OffsetClock
) -> None:
    token = oidc_provider.token(ORDERS, "orders:read")
    other = oidc_provider.token(REPORTS, "reports:read")
    with serving("fastapi", gate_for(oidc_provider, tmp_path, clock)) as app:
        url = app.url.replace("http:", "ws:") + "/orders/feed"
        with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            hello = json.loads(ws.recv(timeout=10))
        refusals = []
        for headers in ({}, {"Authorization": f"Bearer {other}"}):
            with pytest.raises(InvalidStatus) as refused:
                connect(url, additional_headers=headers, open_timeout=10)
            refusals.append(refused.value.response)
    assert hello["subject"] == OidcProviderIssuer.CLIENT_ID
    assert hello["scopes"] == ["orders:read"]
    assert [r.status_code for r in refusals] == [401, 401]
    assert refusals[0].headers["www-authenticate"] == 'Bearer realm="interop", scope="orders:read"'
    assert 'error="invalid_token"' in refusals[1].headers["www-authenticate"]


def test_a_missing_scope_is_403_insufficient_scope_naming_the_scope(
    oidc_provider: OidcProviderIssuer, shell: str, tmp_path: Path, clock: OffsetClock
) -> None:
    token = oidc_provider.token(ORDERS, "orders:read")
    with serving(shell, gate_for(oidc_provider, tmp_path, clock)) as app:
        reply = app.request("POST", "/orders", token)
        allowed = app.request("POST", "/orders", oidc_provider.token(ORDERS, "orders:write"))
    assert reply.status == 403
    assert 'error="insufficient_scope"' in reply.challenge
    assert 'scope="orders:write"' in reply.challenge
    assert reply.body["error"] == "insufficient_scope"
    assert allowed.status == 200


def test_a_role_required_by_the_application_comes_from_the_roles_claim(
    oidc_provider: OidcProviderIssuer, shell: str, tmp_path: Path, clock: OffsetClock
) -> None:
    token = oidc_provider.token(ORDERS, "orders:read")
    with serving(shell, gate_for(oidc_provider, tmp_path, clock)) as app:
        audit = app.get("/audit", token)
        admin = app.get("/admin", token)
    assert audit.status == 200
    assert audit.body["roles"] == ["auditor"]
    assert admin.status == 403
    assert 'error="insufficient_scope"' in admin.challenge


def test_a_token_for_another_resource_is_401_invalid_token(
    oidc_provider: OidcProviderIssuer, shell: str, tmp_path: Path, clock: OffsetClock
) -> None:
    other = oidc_provider.token(REPORTS, "reports:read")  # aud is the reports API
    with serving(shell, gate_for(oidc_provider, tmp_path, clock)) as app:
        reply = app.get("/reports", other)
    assert reply.status == 401
    assert 'error="invalid_token"' in reply.challenge
    assert reply.body["error_description"] == "the access token is not intended for this resource"


def test_an_expired_token_is_401_even_after_it_was_cached(
    oidc_provider: OidcProviderIssuer, shell: str, tmp_path: Path, clock: OffsetClock
) -> None:
    token = oidc_provider.token(ORDERS, "orders:read")  # expires in 300 s
    with serving(shell, gate_for(oidc_provider, tmp_path, clock)) as app:
        before = app.get("/orders", token)
        clock.advance(300 + 30 + 5)  # past exp and the default 30 s leeway
        after = app.get("/orders", token)
    assert before.status == 200
    assert after.status == 401
    assert 'error="invalid_token"' in after.challenge
    assert "expired" in after.body["error_description"]


def test_tampered_tokens_are_401_with_one_description(
    oidc_provider: OidcProviderIssuer, shell: str, tmp_path: Path, clock: OffsetClock
) -> None:
    token = oidc_provider.token(ORDERS, "orders:read")
    forged_signature = tamper_signature(token)
    forged_claims = tamper_claims(token, scope="orders:read orders:write")
    alg_none = tamper_claims(token)  # re-encoded payload; header swapped below
    head = alg_none.split(".")[0]
    alg_none = alg_none.replace(head, "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0", 1)[:-1]
    with serving(shell, gate_for(oidc_provider, tmp_path, clock)) as app:
        replies = [app.get("/orders", t) for t in (forged_signature, forged_claims, alg_none)]
        still_good = app.get("/orders", token)
    for reply in replies:
        assert reply.status == 401, reply.body
        assert 'error="invalid_token"' in reply.challenge
    # One description for every signature failure: no oracle (RFC 8725 §3.1, docs/gate.md).
    assert len({r.body["error_description"] for r in replies}) == 1
    assert still_good.status == 200


def test_a_dpop_bound_token_is_not_accepted_as_a_bearer_token(
    oidc_provider: OidcProviderIssuer, shell: str, tmp_path: Path, clock: OffsetClock
) -> None:
    bound = oidc_provider.dpop_token(ORDERS, "orders:read")
    with serving(shell, gate_for(oidc_provider, tmp_path, clock)) as app:
        reply = app.get("/orders", bound)
    # The gate checks no DPoP proof: a stolen bound token must not work as a bearer token.
    assert reply.status == 401
    assert 'error="invalid_token"' in reply.challenge
    assert "bound to a key" in reply.body["error_description"]


def test_no_token_is_a_bare_challenge_and_public_routes_need_none(
    oidc_provider: OidcProviderIssuer, shell: str, tmp_path: Path, clock: OffsetClock
) -> None:
    with serving(shell, gate_for(oidc_provider, tmp_path, clock)) as app:
        missing = app.get("/orders")
        public = app.get("/health")
    assert missing.status == 401
    assert missing.challenge == 'Bearer realm="interop", scope="orders:read"'
    assert public.status == 200


def test_opaque_tokens_are_introspected_at_oidc_provider(
    oidc_provider: OidcProviderIssuer, shell: str, tmp_path: Path, clock: OffsetClock
) -> None:
    opaque = oidc_provider.token(OPAQUE, "opaque:read")
    assert opaque.count(".") == 0
    with serving(shell, gate_for(oidc_provider, tmp_path, clock)) as app:
        unknown = app.get("/opaque", opaque)
    gate = gate_for(oidc_provider, tmp_path, clock, introspection=True)
    with serving(shell, gate) as app:
        reply = app.get("/opaque", opaque)
        again = app.get("/opaque", opaque)
        made_up = app.get("/opaque", "x" * 43)
        jwt = app.get("/orders", oidc_provider.token(ORDERS, "orders:read"))
    assert unknown.status == 401  # without introspection an opaque token cannot be judged
    assert reply.status == 200, reply.body
    assert reply.body["client_id"] == OidcProviderIssuer.CLIENT_ID
    assert reply.body["scopes"] == ["opaque:read"]
    assert reply.body["method"] == "introspection"
    assert again.status == 200
    assert gate.verifier.metrics.introspections == 2  # the opaque token once, made_up once
    assert made_up.status == 401
    assert jwt.status == 200  # JWTs from the issuer still go to the JWT path


def test_a_key_rotation_at_the_issuer_needs_no_restart_and_fails_no_request(
    shell: str, tmp_path: Path, clock: OffsetClock
) -> None:
    old = JWK.generate("RSA", kid="rsa-old", alg="RS256", use="sig")
    new = JWK.generate("RSA", kid="rsa-new", alg="RS256", use="sig")
    issuer = OidcProviderIssuer(tmp_path, jwks={"keys": [old.to_dict(private=True)]})
    try:
        before = issuer.token(ORDERS, "orders:read")
        unseen_old = issuer.token(ORDERS, "orders:read")
        gate = gate_for(issuer, tmp_path, clock)
        with serving(shell, gate) as app:
            assert app.get("/orders", before).status == 200
            # The issuer is down: held keys keep deciding, for tokens never seen before too.
            issuer.stop()
            assert app.get("/orders", unseen_old).status == 200
            # It comes back publishing the new key first (it signs) and the old one.
            issuer.start({"keys": [new.to_dict(private=True), old.to_dict(private=True)]})
            after = issuer.token(ORDERS, "orders:read")
            assert header_of(after)["kid"] == "rsa-new"
            # Many requests with the new kid at once: one refetch serves them all.
            with ThreadPoolExecutor(16) as pool:
                statuses = list(pool.map(lambda t: app.get("/orders", t).status, [after] * 32))
            statuses.append(app.get("/orders", before).status)
        assert statuses == [200] * 33
        metrics = gate.verifier.metrics.issuers[issuer.url]
        assert metrics.unknown_kid_fetches == 1
        assert metrics.jwks_fetches == 2
    finally:
        issuer.close()


def test_an_issuer_that_starts_after_the_application_is_picked_up_without_a_restart(
    shell: str, tmp_path: Path, clock: OffsetClock
) -> None:
    issuer = OidcProviderIssuer(tmp_path, port=free_port(), start=False)
    stranger = JWK.generate("EC", alg="ES256")
    claims = {"iss": issuer.url, "aud": ORDERS, "sub": "x", "exp": int(time.time()) + 60}
    early_token = jwt.encode(claims, stranger, "ES256", {"typ": "at+jwt"})
    try:
        gate = gate_for(issuer, tmp_path, clock)
        with serving(shell, gate) as app:
            # A known issuer whose keys cannot be had: 503, not 401 (the token may be good).
            early = app.get("/orders", early_token)
            ready_before = gate.ready
            issuer.start()
            token = issuer.token(ORDERS, "orders:read")
            deadline = time.monotonic() + 20  # the retry back-off is 1 s, 2 s, 4 s...
            while (late := app.get("/orders", token)).status == 503:
                assert time.monotonic() < deadline, "the gate never fetched the issuer's keys"
                time.sleep(0.1)
            ready_after = gate.ready
    finally:
        issuer.close()
    assert (ready_before, ready_after) == (False, True)
    assert early.status == 503
    assert int(early.headers["retry-after"]) >= 1
    assert "www-authenticate" not in early.headers
    assert late.status == 200, late.body


def test_an_issuer_with_a_path_is_discovered_beside_another_issuer(
    oidc_provider: OidcProviderIssuer, shell: str, tmp_path: Path, clock: OffsetClock
) -> None:
    # Keycloak-style issuer URL: RFC 8414's well-known URL (path after the well-known segment)
    # is 404 there, OpenID discovery (path before it) answers.
    realm = OidcProviderIssuer(tmp_path, path="/realms/shop")
    try:
        gate = gate_for(realm, tmp_path, clock, also=(oidc_provider,))
        with serving(shell, gate) as app:
            from_realm = app.get("/orders", realm.token(ORDERS, "orders:read"))
            from_root = app.get("/orders", oidc_provider.token(ORDERS, "orders:read"))
            statuses = {s.issuer: s.jwks_uri for s in gate.verifier.issuer_status()}
    finally:
        realm.close()
    assert from_realm.status == 200, from_realm.body
    assert from_realm.body["issuer"] == realm.url
    assert from_root.status == 200
    assert from_root.body["issuer"] == oidc_provider.url
    assert statuses == {
        realm.url: realm.url + "/jwks",
        oidc_provider.url: oidc_provider.url + "/jwks",
    }


def test_through_authgate_gateway(oidc_provider: OidcProviderIssuer, tmp_path: Path) -> None:
    upstream = EchoUpstream()
    config = f"""
realm = "interop"

[[issuers]]
issuer = "{oidc_provider.url}"
audiences = ["{ORDERS}"]
typ = "at+jwt"

[[routes]]
path = "/orders"
methods = ["GET"]
upstream = "{upstream.url}"
scopes = ["orders:read"]
"""
    gateway = GatewayProcess(tmp_path, config)
    try:
        with httpx.Client(base_url=gateway.url, timeout=10, trust_env=False) as client:
            deadline = time.monotonic() + 10
            while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.05)
            token = oidc_provider.token(ORDERS, "orders:read")
            spoofed = {"Authorization": f"Bearer {token}", "X-Auth-Subject": "admin"}
            ok = client.get("/orders/7", headers=spoofed)
            missing = client.get("/orders/7")
            wrong = client.get("/orders/7", headers={"Authorization": f"Bearer {token[:-4]}AAAA"})
    finally:
        gateway.stop()
        upstream.close()
    assert ok.status_code == 200, ok.text
    seen = {k.lower(): v for k, v in ok.json()["headers"].items()}
    assert seen["x-auth-subject"] == OidcProviderIssuer.CLIENT_ID
    assert seen["x-auth-client-id"] == OidcProviderIssuer.CLIENT_ID
    assert seen["x-auth-scopes"] == "orders:read"
    assert seen["x-auth-roles"] == "auditor"
    assert seen["x-auth-issuer"] == oidc_provider.url
    assert missing.status_code == 401
    assert wrong.status_code == 401
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
