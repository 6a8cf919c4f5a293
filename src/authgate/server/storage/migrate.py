"""Schema migrations (Alembic), packaged with the server so that an installed package can upgrade.

`upgrade` holds the server's database lock while it runs, so processes that start together upgrade
once. `schema_status` tells whether a database is at the revision this code needs.
"""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from authgate.server.storage.database import Database

__all__ = ["SchemaVersionError", "head_revision", "schema_revision", "upgrade"]

_SCRIPTS = "authgate.server:migrations"


class SchemaVersionError(Exception):
    """The database schema is older (or newer) than this version of authgate expects."""


def _alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", _SCRIPTS)
    return config


def head_revision() -> str:
    """The newest revision the packaged migrations reach."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migrations packaged")
    return head


async def schema_revision(db: Database) -> str | None:
    """The revision the database is at, or None for an empty database."""
    async with db.begin() as conn:
        revision: str | None = await conn.run_sync(_current_revision)
    return revision


async def upgrade(db: Database, target: str = "head") -> tuple[str | None, str]:
    """Bring the schema to `target` (the newest revision unless told); return (revision before,
    revision after)."""
    async with db.exclusive() as conn:
        before = await conn.run_sync(_current_revision)
        await conn.run_sync(_run_upgrade, target)
        after: str | None = await conn.run_sync(_current_revision)
    if after is None:
        raise SchemaVersionError(f"upgrading to {target} left the database without a revision")
    return before, after


def _current_revision(sync_connection: Any) -> str | None:
    revision: str | None = MigrationContext.configure(sync_connection).get_current_revision()
    return revision


def _run_upgrade(sync_connection: Any, target: str) -> None:
    config = _alembic_config()
    config.attributes["connection"] = sync_connection
    command.upgrade(config, target)


async def check_schema(db: Database) -> None:
    """Raise `SchemaVersionError` unless the database is at the newest revision."""
    current = await schema_revision(db)
    head = head_revision()
    if current != head:
        raise SchemaVersionError(
            f"database schema is at {current or 'nothing'}, this authgate needs {head}: "
            "run `authgate db upgrade`"
        )
