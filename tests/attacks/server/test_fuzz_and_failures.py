"""Random hostile requests never produce a 5xx; a failing database answers 503, not 500."""

from __future__ import annotations

import logging
import random
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from tests.support.server_harness import FakeClock, Harness, expect_error, make_config, running

API = "https://api.example.test"
_ALPHABET = "abcxyz_=&%+ .-~/:#?\x00\x7f\u00e9\u202e\U0001f600" + "0123456789ABCDEF"
_NAMES = [
    "grant_type",
    "client_id",
    "client_secret",
    "scope",
    "resource",
    "token",
    "token_type_hint",
    "client_assertion",
    "client_assertion_type",
]
_TYPES = [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8",
    "application/json",
    "text/plain",
    "",
    "application/x-www-form-urlencoded; charset=koi8",
]


def _garbage(rng: random.Random) -> bytes:
    parts = []
    for _ in range(rng.randint(0, 8)):
        name = (
            rng.choice(_NAMES)
            if rng.random() < 0.7
            else "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 12)))
        )
        value = "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 40)))
        parts.append(f"{name}={value}")
    text = "&".join(parts)
    raw = text.encode("utf-8", errors="surrogatepass")
    if rng.random() < 0.2:
        raw += bytes(rng.randrange(256) for _ in range(rng.randint(1, 20)))
    return raw


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_random_requests_never_5xx(harness: Harness) -> None:
    await harness.create_api(API)
    client, secret = await harness.create_client(scopes=("read",))
    rng = random.Random(20261128)  # fixed seed: a failure is reproducible
    for i in range(400):
        path = rng.choice(["/token", "/introspect", "/revoke"])
        headers: dict[str, bytes] = {"Content-Type": rng.choice(_TYPES).encode()}
        auth = (client.client_id, secret or "") if rng.random() < 0.5 else None
        if rng.random() < 0.1:
            junk = bytes(rng.randrange(0x20, 0x100) for _ in range(rng.randint(0, 30)))
            headers["Authorization"] = b"Basic " + junk
            auth = None
        response = await harness.http.post(path, content=_garbage(rng), headers=headers, auth=auth)
        assert response.status_code < 500, (i, response.text)
        if response.status_code >= 400:
            assert response.json()["error"] in {
                "invalid_request",
                "invalid_client",
                "unsupported_grant_type",
                "invalid_scope",
                "invalid_target",
                "unauthorized_client",
            }


async def test_database_failure_is_503(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    await harness.create_api(API)
    client, secret = await harness.create_client(scopes=("read",))

    async def unavailable(client_id: str) -> None:
        raise OperationalError("SELECT", {}, ConnectionRefusedError("db down"))

    monkeypatch.setattr(harness.server.storage, "get_client", unavailable)
    expect_error(await harness.token(client, secret), 503, "temporarily_unavailable")


@pytest.mark.parametrize(
    "failure",
    [
        OperationalError("SELECT", {}, ConnectionRefusedError("db down")),
        PoolTimeout("no connection within the pool timeout"),
        TimeoutError(),  # a driver's command timeout, a lock file's wait
    ],
)
async def test_database_unavailability_answers_503_with_retry_after(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    """RFC 9110 §10.2.3: every 503 for an unavailable or stalled database says when to retry."""
    await harness.create_api(API)
    client, secret = await harness.create_client(scopes=("read",))

    async def unavailable(client_id: str) -> None:
        raise failure

    monkeypatch.setattr(harness.server.storage, "get_client", unavailable)
    response = await harness.token(client, secret)
    expect_error(response, 503, "temporarily_unavailable")
    assert int(response.headers["retry-after"]) > 0


async def test_public_clients(harness: Harness) -> None:
    public, secret = await harness.create_client(auth_method="none", grant_types=())
    assert secret is None
    # Introspection needs an authenticated caller (RFC 7662 §2.1); revocation accepts a public
    # client naming itself (RFC 7009 §2.1).
    introspect = await harness.http.post(
        "/introspect", data={"token": "x", "client_id": public.client_id}
    )
    expect_error(introspect, 401, "invalid_client")
    revoke = await harness.http.post("/revoke", data={"token": "x", "client_id": public.client_id})
    assert revoke.status_code == 200
    token = await harness.http.post(
        "/token", data={"grant_type": "client_credentials", "client_id": public.client_id}
    )
    expect_error(token, 400, "unauthorized_client")


async def test_a_client_gone_mid_body_is_logged_quietly(
    database_url: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that hangs up while its body is read (or `serve`'s body timeout ends it) is no
    server fault: no "unhandled" traceback, no answer, and the access log says 499."""
    runner = running(make_config(database_url), clock)
    async with runner:
        app = runner.app
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/token",
            "raw_path": b"/token",
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1"),
                (b"content-type", b"application/x-www-form-urlencoded"),
                (b"content-length", b"100"),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        messages: list[dict[str, Any]] = [
            {"type": "http.request", "body": b"grant_type=client_", "more_body": True}
        ]

        async def receive() -> dict[str, Any]:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        with caplog.at_level(logging.INFO):
            await app(scope, receive, send)
    assert sent == []
    assert not [r for r in caplog.records if "unhandled" in r.getMessage()]
    access = [r.getMessage() for r in caplog.records if r.name == "authgate.access"]
    assert any(line.startswith("POST /token 499 ") for line in access), access
