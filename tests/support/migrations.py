"""What the migration tests share: an empty database on SQLite and on the real PostgreSQL (a
database of its own, dropped afterwards), and Alembic's downgrade on an open connection."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic import command
from alembic.config import Config as AlembicConfig

from tests.support.server_harness import PG_ADMIN

__all__ = ["downgrade", "empty_url"]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
        return
    name = f"authgate_migrate_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def downgrade(sync_connection: Any, target: str) -> None:
    """Alembic's downgrade to `target` on `sync_connection` (run it with `run_sync`)."""
    config = AlembicConfig()
    config.set_main_option("script_location", "authgate.server:migrations")
    config.attributes["connection"] = sync_connection
    command.downgrade(config, target)
