"""POST /token skips Starlette's exception layer and router (`app._TokenRoute`): what the route
answered before it still holds, for errors as for tokens."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import OperationalError

from tests.support.server_harness import Harness

API = "https://api.example.test"


async def _failing_grant(harness: Harness, error: Exception) -> tuple[Any, str | None]:
    await harness.create_api(API)
    client, secret = await harness.create_client(scopes=("read",))
    grant = harness.server.grants["client_credentials"]

    async def fail(*args: object) -> None:
        raise error

    grant.handle = fail  # type: ignore[method-assign]
    return client, secret


async def test_an_unexpected_error_is_a_json_500(harness: Harness) -> None:
    client, secret = await _failing_grant(harness, ValueError("boom"))
    response = await harness.token(client, secret, grant_type="client_credentials")
    assert response.status_code == 500
    assert response.json()["error"] == "server_error"
    assert "boom" not in response.text


async def test_a_database_failure_is_a_503_with_retry_after(harness: Harness) -> None:
    client, secret = await _failing_grant(
        harness, OperationalError("SELECT 1", {}, Exception("database is locked"))
    )
    response = await harness.token(client, secret, grant_type="client_credentials")
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.headers["retry-after"] == "5"
    assert response.headers["cache-control"] == "no-store"


async def test_an_oauth_error_keeps_its_status_and_challenge(harness: Harness) -> None:
    await harness.create_api(API)
    client, _ = await harness.create_client(scopes=("read",))
    response = await harness.token(client, "wrong", grant_type="client_credentials")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic realm=")


async def test_other_methods_still_get_405_with_allow(harness: Harness) -> None:
    response = await harness.http.get("/token")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"] == "invalid_request"


async def test_a_token_answer_carries_cors_and_request_id(harness: Harness) -> None:
    await harness.create_api(API)
    client, secret = await harness.create_client(scopes=("read",))
    assert secret is not None
    response = await harness.http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, secret),
        headers={"Origin": "https://app.example.test"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["x-request-id"]
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-length"] == str(len(response.content))
