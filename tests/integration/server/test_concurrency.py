"""Refresh-token rotation under concurrency against real server processes (RFC 9700 §4.14.2 with
the grace window): many simultaneous refreshes of one token, spread over two `authgate serve`
worker processes sharing PostgreSQL (and one process on SQLite), give no 5xx and no false reuse
alarm: every answer is the same new pair, and the family stays alive."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from tests.support.e2e_served import Served

CONCURRENT = 24


@pytest.fixture(scope="module")
def two_workers_on_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = Served.start(None, tmp_path_factory.mktemp("two-workers"), workers=2)
    try:
        yield server
    finally:
        server.stop()


async def refresh_all_at_once(served: Served, refresh_token: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=CONCURRENT)
    auth = (served.web.client_id, served.web_secret)
    async with httpx.AsyncClient(base_url=served.url, limits=limits, timeout=30) as http:
        return await asyncio.gather(
            *(
                http.post(
                    "/token",
                    data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                    auth=auth,
                )
                for _ in range(CONCURRENT)
            )
        )


def check_one_rotation(served: Served, responses: list[httpx.Response]) -> None:
    statuses = [r.status_code for r in responses]
    assert statuses == [200] * CONCURRENT, [r.text for r in responses if r.status_code != 200]
    bodies = {r.text for r in responses}
    assert len(bodies) == 1  # one rotation; every other request got the same pair (grace window)
    pair = responses[0].json()
    follow_up = httpx.post(
        served.url + "/token",
        data={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]},
        auth=(served.web.client_id, served.web_secret),
    )
    assert follow_up.status_code == 200, follow_up.text  # no reuse alarm revoked the family


def test_simultaneous_refreshes_two_processes_postgres(two_workers_on_postgres: Served) -> None:
    served = two_workers_on_postgres
    for _ in range(3):
        tokens = served.web_tokens()
        check_one_rotation(
            served, asyncio.run(refresh_all_at_once(served, tokens["refresh_token"]))
        )


def test_simultaneous_refreshes(served: Served) -> None:
    tokens = served.web_tokens()
    check_one_rotation(served, asyncio.run(refresh_all_at_once(served, tokens["refresh_token"])))
