"""Metadata (RFC 8414), the JWKS, and hostile input: every malformed request gets a precise OAuth
error, never a 500, and no secret or token appears in any log line."""

from __future__ import annotations

import logging

import pytest

from tests.support.server_harness import ISSUER, Harness, expect_error

API = "https://api.example.test"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def test_metadata_documents(harness: Harness) -> None:
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        response = await harness.http.get(path)
        assert response.status_code == 200
        doc = response.json()
        assert doc["issuer"] == ISSUER
        assert doc["token_endpoint"] == ISSUER + "/token"
        assert doc["jwks_uri"] == ISSUER + "/.well-known/jwks.json"
        assert doc["introspection_endpoint"] == ISSUER + "/introspect"
        assert doc["revocation_endpoint"] == ISSUER + "/revoke"
        assert doc["grant_types_supported"] == [
            "client_credentials",
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ]
        # Public clients ("none") exist because the code, refresh and device grants allow them.
        assert doc["token_endpoint_auth_methods_supported"] == [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none",
        ]
        assert "HS256" not in doc["token_endpoint_auth_signing_alg_values_supported"]
        assert doc["authorization_endpoint"] == ISSUER + "/authorize"


async def test_jwks_public_only_and_cacheable(harness: Harness) -> None:
    response = await harness.http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    max_age = harness.config.keys.jwks_max_age
    assert response.headers["cache-control"] == f"public, max-age={max_age}"
    keys = response.json()["keys"]
    assert {k["alg"] for k in keys} == {"RS256", "ES256"}
    for key in keys:
        assert key["use"] == "sig"
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(key)


@pytest.mark.parametrize(
    ("body", "headers", "status", "error"),
    [
        (
            b"grant_type=client_credentials&grant_type=client_credentials",
            FORM,
            400,
            "invalid_request",
        ),
        (b"grant_type=client_credentials&scope=read&scope=write", FORM, 400, "invalid_request"),
        (b"grant_type=%zz", FORM, 400, "invalid_request"),
        (b"grant_type=%ff%fe", FORM, 400, "invalid_request"),
        (b"grant_type=client\x00credentials", FORM, 400, "invalid_request"),
        (b"grant_type=client%00credentials", FORM, 400, "invalid_request"),
        ("grant_type=clïent".encode(), FORM, 400, "invalid_request"),
        (
            b'{"grant_type":"client_credentials"}',
            {"Content-Type": "application/json"},
            400,
            "invalid_request",
        ),
        (b"grant_type=client_credentials", {}, 400, "invalid_request"),
        (
            b"grant_type=client_credentials",
            {"Content-Type": "application/x-www-form-urlencoded; charset=iso-8859-1"},
            400,
            "invalid_request",
        ),
        (
            b"grant_type=client_credentials",
            {"Content-Type": "multipart/form-data; boundary=x"},
            400,
            "invalid_request",
        ),
        (b"a=1&" * 100, FORM, 400, "invalid_request"),
        (b"x=" + b"a" * 20000, FORM, 413, "invalid_request"),
    ],
)
async def test_malformed_token_requests(
    harness: Harness, body: bytes, headers: dict[str, str], status: int, error: str
) -> None:
    await harness.create_api(API)
    client, secret = await harness.create_client(scopes=("read",))
    response = await harness.http.post(
        "/token", content=body, headers=headers, auth=(client.client_id, secret or "")
    )
    expect_error(response, status, error)


async def test_declared_oversized_body_refused_before_reading(harness: Harness) -> None:
    response = await harness.http.post(
        "/token",
        content=b"grant_type=client_credentials",
        headers={**FORM, "Content-Length": "99999999"},
    )
    expect_error(response, 413, "invalid_request")


async def test_empty_parameter_counts_as_absent(harness: Harness) -> None:
    await harness.create_api(API)
    client, secret = await harness.create_client(scopes=("read",))
    response = await harness.http.post(
        "/token",
        content=b"grant_type=client_credentials&scope=",
        headers=FORM,
        auth=(client.client_id, secret or ""),
    )
    assert response.status_code == 200  # RFC 6749 §3.2: no value = omitted
    assert response.json()["scope"] == "read"


async def test_wrong_methods_and_paths(harness: Harness) -> None:
    for path in ("/token", "/introspect", "/revoke"):
        response = await harness.http.get(path + "?client_secret=x")
        expect_error(response, 405, "invalid_request")
        assert response.headers["allow"] == "POST"
    missing = await harness.http.get("/nowhere")
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found"}
    post_jwks = await harness.http.post("/.well-known/jwks.json")
    assert post_jwks.status_code == 405


async def test_hostile_client_identifiers(harness: Harness) -> None:
    for client_id in ("a" * 5000, "\u202e", "../../etc", "' OR 1=1 --", "%00"):
        response = await harness.http.post(
            "/token",
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": "x"},
        )
        expect_error(response, 401, "invalid_client")


async def test_no_secret_or_token_in_logs(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await harness.create_api(API, token_format="opaque")
    client, secret = await harness.create_client(scopes=("read",))
    assert secret is not None
    good = await harness.token(client, secret)
    token = good.json()["access_token"]
    await harness.http.post("/introspect", data={"token": token}, auth=(client.client_id, secret))
    await harness.http.post(
        "/token", data={"grant_type": "client_credentials"}, auth=(client.client_id, secret + "x")
    )
    await harness.http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client.client_id,
            "client_secret": secret,
        },
    )
    await harness.http.get(f"/token?client_secret={secret}&token={token}")
    await harness.http.post("/revoke", data={"token": token}, auth=(client.client_id, secret))
    # The server's own loggers at every level, and everything at INFO and above, except the
    # test's HTTP client (which logs the URLs it requests, query strings included).
    server_side = [
        r
        for r in caplog.records
        if r.name.startswith(("authgate", "uvicorn", "sqlalchemy"))
        or (r.levelno >= logging.INFO and not r.name.startswith("httpx"))
    ]
    text = "\n".join(record.getMessage() for record in server_side)
    assert "POST /token 200" in text  # the access log is there, just without secrets
    assert secret not in text
    assert token not in text
    assert harness.server.secret.hash_token(token) not in text
