"""Fixtures for the SQL stores of the user-facing flows, on SQLite and the real PostgreSQL.

The databases come from the server tests' fixtures (`tests/server/conftest.py`: a fresh PostgreSQL
database per session, a SQLite file, each emptied per test), loaded from there rather than copied.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parent.parent
if str(_TESTS / "server") not in sys.path:
    sys.path.insert(0, str(_TESTS / "server"))

_spec = importlib.util.spec_from_file_location(
    "server_area_fixtures", _TESTS / "server" / "conftest.py"
)
assert _spec is not None
assert _spec.loader is not None
_server_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_server_fixtures)

# Re-exported so that pytest finds them here too.
pg_url = _server_fixtures.pg_url
sqlite_url = _server_fixtures.sqlite_url
database_url = _server_fixtures.database_url
clock = _server_fixtures.clock
empty_tables = _server_fixtures.empty_tables

from storage_support import open_store  # noqa: E402 - needs the paths above

from authgate.server.storage import SqlStorage  # noqa: E402


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStorage]:
    """A `SqlStorage` on an emptied database holding the users and clients the contracts name."""
    storage = await open_store(database_url)
    yield storage
    await storage.close()
