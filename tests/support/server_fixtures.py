"""Fixtures for the authorization server tests: real SQLite and PostgreSQL, an in-process app.

PostgreSQL: one fresh database per test session (`authgate_test_<random>` on 127.0.0.1:5432, user
postgres), dropped at the end. Every test that takes `database_url` runs once per backend and
starts from empty tables. Time is a `FakeClock` the test can move.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from authgate.server.storage import Database
from authgate.server.storage.migrate import upgrade
from authgate.server.storage.tables import metadata
from tests.support.server_harness import PG_ADMIN, FakeClock, Harness, make_config, running

TABLES = [t.name for t in reversed(metadata.sorted_tables)]


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this session, migrated."""
    name = f"authgate_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    asyncio.run(_upgrade(url))
    yield url
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite database file for this session, migrated."""
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'authgate.db'}"
    asyncio.run(_upgrade(url))
    return url


async def _upgrade(url: str) -> None:
    db = Database(url)
    try:
        await upgrade(db)
    finally:
        await db.close()


def empty_tables(url: str) -> None:
    """Delete every row (schema and revision stay)."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            for table in TABLES:
                conn.execute(f"DELETE FROM {table}")  # noqa: S608 - names from our metadata
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"TRUNCATE {', '.join(TABLES)} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each backend in turn, emptied for the test."""
    url: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    empty_tables(url)
    return url


@pytest.fixture
def clock() -> FakeClock:
    """The test's clock."""
    return FakeClock()


@pytest.fixture
async def harness(database_url: str, clock: FakeClock) -> AsyncIterator[Harness]:
    """The app on `database_url`, lifespan running, with an httpx client bound to it."""
    config = make_config(database_url)
    async with running(config, clock) as h:
        yield h
