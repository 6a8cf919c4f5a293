"""Operating the gateway: health, readiness, metrics, the identity token and its JWKS, JSON logs
without tokens, trusted proxies, and SIGHUP reloads that drop no connection."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from authgate.jose import JWK, JWKSet, jwt
from tests.support.gateway import Gateway, Issuer, Upstream, gateway_toml


def test_health_and_readiness(gateway: Gateway, issuer: Issuer) -> None:
    status, _, body = gateway.request("GET", "/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    status, _, body = gateway.request("GET", "/readyz")
    document = json.loads(body)
    assert status == 200
    assert document["ready"] is True
    assert document["issuers"][0]["issuer"] == issuer.url
    assert document["issuers"][0]["keys"] == 1
    assert gateway.request("POST", "/healthz")[0] == 405


def test_not_ready_until_keys_are_held(issuer: Issuer, upstream: Upstream, tmp_path: Path) -> None:
    issuer.failing = True
    try:
        gw = Gateway(gateway_toml(issuer, upstream), tmp_path)
        try:
            status, _, body = gw.request("GET", "/readyz")
            assert status == 503
            assert json.loads(body)["ready"] is False
            assert gw.request("GET", "/healthz")[0] == 200
            # A token from the issuer cannot be checked: 503, not 401 (RFC 6750 has no code
            # for "try later"; 503 with Retry-After tells the client when, RFC 9110 §10.2.3).
            status, headers, _ = gw.request(
                "GET", "/orders/1", {"Authorization": f"Bearer {issuer.token()}"}
            )
            assert status == 503
            assert "retry-after" in headers
        finally:
            gw.stop()
    finally:
        issuer.failing = False


def _metrics(gateway: Gateway) -> dict[str, float]:
    status, headers, body = gateway.request("GET", "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    values = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_metrics_count_fetches_decisions_and_cache_hits(gateway: Gateway, issuer: Issuer) -> None:
    token = issuer.token(sub="metrics-user")
    for _ in range(3):
        assert gateway.request("GET", "/orders/m", {"Authorization": f"Bearer {token}"})[0] == 200
    assert gateway.request("GET", "/orders/m")[0] == 401
    assert gateway.request("GET", "/admin/m", {"Authorization": f"Bearer {token}"})[0] == 403
    values = _metrics(gateway)
    label = f'issuer="{issuer.url}"'
    assert values[f"authgate_jwks_fetches_total{{{label}}}"] >= 1
    assert values[f"authgate_jwks_fetch_failures_total{{{label}}}"] == 0
    assert values[f"authgate_issuer_ready{{{label}}}"] == 1
    assert values[f"authgate_jwks_key_age_seconds{{{label}}}"] >= 0
    assert f"authgate_jwks_unknown_kids_total{{{label}}}" in values
    assert f"authgate_jwks_stale_keys_served_total{{{label}}}" in values
    assert values['authgate_decisions_total{endpoint="proxy",outcome="allowed"}'] >= 3
    assert values['authgate_decisions_total{endpoint="proxy",outcome="unauthenticated"}'] >= 1
    assert values['authgate_decisions_total{endpoint="proxy",outcome="forbidden"}'] >= 1
    assert values["authgate_token_cache_hits_total"] >= 2
    assert 0 < values["authgate_token_cache_hit_ratio"] <= 1
    assert values['authgate_verification_duration_seconds_bucket{le="+Inf"}'] >= 3
    assert values["authgate_verification_duration_seconds_count"] >= 3
    assert values['authgate_upstream_responses_total{code_class="2xx"}'] >= 3


def test_identity_token_verifies_against_the_gateway_jwks(
    gateway: Gateway, issuer: Issuer, upstream: Upstream
) -> None:
    status, headers, body = gateway.request("GET", "/.well-known/authgate/jwks.json")
    assert status == 200
    assert headers["content-type"] == "application/jwk-set+json"
    keys = JWKSet.from_dict(json.loads(body))
    assert all(not k.is_private for k in keys)
    status, _, body = gateway.request(
        "GET", "/orders/t", {"Authorization": f"Bearer {issuer.token()}"}
    )
    seen = {name.lower(): value for name, value in json.loads(body)["headers"]}
    claims = jwt.decode(
        seen["x-auth-token"],
        keys,
        algorithms=["ES256"],
        issuer="https://gateway.test",
        audience=upstream.url,
        typ="at+jwt",
    )
    assert claims["sub"] == "alice"
    assert claims["client_id"] == "orders-app"
    assert claims["scope"] == "orders:read orders:write"
    assert claims["origin_iss"] == issuer.url
    assert claims["exp"] - claims["iat"] <= 60


def test_logs_are_json_and_never_hold_a_token(gateway: Gateway, issuer: Issuer) -> None:
    token = issuer.token(sub="log-check")
    gateway.request("GET", f"/orders/l?access_token={token}")
    gateway.request("GET", "/orders/l", {"Authorization": f"Bearer {token}"})
    gateway.request("GET", "/orders/l", {"Authorization": f"Bearer {token}x"})
    record = gateway.wait_for_log(lambda r: r.get("subject") == "log-check")
    assert record["logger"] == "authgate.access"
    assert record["path"] == "/orders/l"
    for line in gateway.logs:
        json.loads(line)
        assert token not in line
        assert token.split(".")[2] not in line


@pytest.fixture
def trusting_gateway(issuer: Issuer, upstream: Upstream, tmp_path: Path) -> Iterator[Gateway]:
    gw = Gateway(gateway_toml(issuer, upstream, 'trusted_proxies = ["127.0.0.0/8"]'), tmp_path)
    yield gw
    gw.stop()


def test_forwarding_headers_from_a_trusted_proxy_are_extended(trusting_gateway: Gateway) -> None:
    status, _, body = trusting_gateway.request(
        "GET",
        "/public/t",
        {
            "X-Forwarded-For": "198.51.100.7",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "shop.example",
        },
    )
    assert status == 200
    seen = {name.lower(): value for name, value in json.loads(body)["headers"]}
    assert seen["x-forwarded-for"] == "198.51.100.7, 127.0.0.1"
    assert seen["x-forwarded-proto"] == "https"
    assert seen["x-forwarded-host"] == "shop.example"
    record = trusting_gateway.wait_for_log(lambda r: r.get("path") == "/public/t")
    assert record["client"] == "127.0.0.1"  # the peer; the chain is logged by the upstream


def test_resource_metadata_is_served_and_named_in_challenges(
    issuer: Issuer, upstream: Upstream, tmp_path: Path
) -> None:
    """RFC 9728: the document at its well-known path (§3.1; GET and HEAD, 405 otherwise), and its
    URL in every challenge (§5.1). The gate's answers pass through the gateway unchanged."""
    gw = Gateway(gateway_toml(issuer, upstream, 'resource = "https://api.test/v1"'), tmp_path)
    try:
        path = "/.well-known/oauth-protected-resource/v1"
        status, headers, body = gw.request("GET", path)
        assert (status, headers["content-type"]) == (200, "application/json")
        assert headers["cache-control"] == "max-age=3600"
        document = json.loads(body)
        assert document["resource"] == "https://api.test/v1"
        assert document["authorization_servers"] == [issuer.url]
        status, headers, body = gw.request("HEAD", path)
        assert (status, body, headers["cache-control"]) == (200, b"", "max-age=3600")
        status, headers, _ = gw.request("POST", path, body=b"")
        assert (status, headers["allow"]) == (405, "GET, HEAD")
        status, headers, body = gw.request("GET", "/orders/1")
        assert status == 401
        assert headers["www-authenticate"] == (
            'Bearer realm="authgate", scope="orders:read", '
            'resource_metadata="https://api.test/.well-known/oauth-protected-resource/v1"'
        )
        assert (headers["content-type"], headers["cache-control"]) == (
            "application/json",
            "no-store",
        )
        assert json.loads(body)["error"] == "invalid_token"
    finally:
        gw.stop()


def test_sighup_reload_applies_new_rules_and_keeps_connections(
    issuer: Issuer, upstream: Upstream, tmp_path: Path
) -> None:
    base = gateway_toml(issuer, upstream)
    gw = Gateway(base, tmp_path)
    try:
        token = issuer.token(scope="orders:read")
        auth = {"Authorization": f"Bearer {token}"}
        # A keep-alive connection opened before the reload, and a slow request in flight.
        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
        conn.request("GET", "/orders/1", headers=auth)
        first = conn.getresponse()
        first.read()
        assert first.status == 200
        slow: dict[str, int] = {}

        def slow_request() -> None:
            slow["status"] = gw.request("GET", "/slow/0.8", auth)[0]

        thread = threading.Thread(target=slow_request)
        thread.start()
        time.sleep(0.2)
        gw.reload(base.replace('scopes = ["orders:read"]', 'scopes = ["orders:special"]'))
        gw.wait_for_log(lambda r: r.get("msg") == "configuration reloaded")
        thread.join(10)
        assert slow["status"] == 200  # the request in flight finished
        conn.request("GET", "/orders/1", headers=auth)  # same connection, new rules
        second = conn.getresponse()
        second.read()
        assert second.status == 403
        conn.close()

        gw.reload("this is not [valid toml")
        gw.wait_for_log(lambda r: "reload failed" in str(r.get("msg")))
        assert gw.request("GET", "/orders/1", auth)[0] == 403  # the previous config stays
        assert gw.process.poll() is None

        # An HMAC issuer whose secret file holds a public key (RFC 8725 §2.1): refused on
        # reload like a typo, never a crash, and the running configuration stays.
        (tmp_path / "hs.secret").write_bytes(JWK.generate("EC", crv="P-256").public().to_pem())
        (tmp_path / "hs.secret").chmod(0o600)
        hmac_issuer = (
            '[[issuers]]\nissuer = "https://hs.example"\naudiences = ["orders"]\n'
            f'algorithms = ["HS256"]\nsecret_file = "{tmp_path / "hs.secret"}"\n'
        )
        gw.reload(base + hmac_issuer)
        gw.wait_for_log(lambda r: "unusable HMAC secret" in str(r.get("error")))
        assert gw.request("GET", "/orders/1", auth)[0] == 403
        assert gw.process.poll() is None
        values = _metrics(gw)
        assert values['authgate_config_reloads_total{result="ok"}'] == 1
        assert values['authgate_config_reloads_total{result="error"}'] == 2
    finally:
        gw.stop()


def test_sigterm_lets_requests_in_flight_finish(
    issuer: Issuer, upstream: Upstream, tmp_path: Path
) -> None:
    gw = Gateway(gateway_toml(issuer, upstream), tmp_path)
    try:
        auth = {"Authorization": f"Bearer {issuer.token()}"}
        result: dict[str, int] = {}
        thread = threading.Thread(
            target=lambda: result.update(status=gw.request("GET", "/slow/3", auth)[0])
        )
        thread.start()
        upstream.state.connection_with(b"/slow/3")  # the request is in flight (bounded wait)
        gw.process.send_signal(signal.SIGTERM)
        # The listening socket goes first: a new connection is refused while the request runs.
        deadline = time.monotonic() + 10
        while not _refused(gw.port):
            assert time.monotonic() < deadline, "new connections are still accepted"
            time.sleep(0.05)
        assert thread.is_alive()
        thread.join(10)
        assert result["status"] == 200
        assert gw.process.wait(10) == 0
        gw.wait_for_log(lambda r: r.get("msg") == "stopped")
    finally:
        gw.stop()


def _refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def test_key_rotation_jwks_outage_and_invented_kids(upstream: Upstream, tmp_path: Path) -> None:
    issuer = Issuer()  # its own, since this test rotates keys and breaks the endpoint
    gw = Gateway(gateway_toml(issuer, upstream), tmp_path)
    try:

        def call(token: str) -> int:
            return gw.request("GET", "/orders/r", {"Authorization": f"Bearer {token}"})[0]

        assert call(issuer.token()) == 200
        # Rotation: a token under a new kid is accepted without a restart.
        issuer.key = JWK.generate("RSA", alg="RS256", kid="key-2")
        rotated = issuer.token(sub="after-rotation")
        assert call(rotated) == 200
        # Outage: held keys keep verifying, new tokens under them included.
        issuer.failing = True
        assert call(rotated) == 200
        assert call(issuer.token(sub="new-during-outage")) == 200
        assert gw.request("GET", "/readyz")[0] == 200
        # A flood of invented kids causes at most one fetch per cooldown, and no success: 401,
        # or 503 while the cooldown leaves an unknown kid undecidable (the gate's rule).
        fetches = issuer.fetches
        for n in range(20):
            forged = JWK.generate("RSA", alg="RS256", kid=f"invented-{n}")
            assert call(issuer.token(key=forged)) in (401, 503)
        assert issuer.fetches - fetches <= 1
        values = _metrics(gw)
        label = f'issuer="{issuer.url}"'
        assert values[f"authgate_jwks_unknown_kids_total{{{label}}}"] >= 20
        assert values[f"authgate_jwks_unknown_kid_fetches_total{{{label}}}"] <= 2
    finally:
        gw.stop()
        issuer.close()
