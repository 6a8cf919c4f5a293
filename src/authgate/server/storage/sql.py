"""`SqlStorage`: every storage role on one SQLite or PostgreSQL database."""

from __future__ import annotations

from authgate.server.storage.database import Database
from authgate.server.storage.sql_keys import SqlSigningKeys
from authgate.server.storage.sql_registry import SqlRegistry
from authgate.server.storage.sql_tokens import SqlTokens

__all__ = ["SqlStorage"]


class SqlStorage(SqlRegistry, SqlSigningKeys, SqlTokens):
    """The `Storage` roles implemented with SQLAlchemy Core on one `Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @property
    def database(self) -> Database:
        """The connection pool (for migrations and health checks)."""
        return self._db

    async def close(self) -> None:
        await self._db.close()
