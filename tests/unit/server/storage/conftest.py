"""Fixtures for the SQL stores of the user-facing flows, on SQLite and the real PostgreSQL.

The databases come from the server fixtures (`tests.support.server_fixtures`, loaded for every test
by `tests/conftest.py`: a fresh PostgreSQL database per session, a SQLite file, each emptied per
test).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from authgate.server.storage import SqlStorage
from tests.support.storage import open_store


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStorage]:
    """A `SqlStorage` on an emptied database holding the users and clients the contracts name."""
    storage = await open_store(database_url)
    yield storage
    await storage.close()
