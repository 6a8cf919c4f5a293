"""`SqlStorage`: every storage role on one SQLite or PostgreSQL database."""

from __future__ import annotations

import asyncio
from pathlib import Path

from authgate.server.storage.database import Database
from authgate.server.storage.locks import FileLock, LoopLocal
from authgate.server.storage.retention import Retention
from authgate.server.storage.sql_audit import SqlAudit
from authgate.server.storage.sql_codes import SqlAuthorizationCodes
from authgate.server.storage.sql_consent import SqlConsents
from authgate.server.storage.sql_device import SqlDeviceAuthorizations
from authgate.server.storage.sql_grants import SqlGrants
from authgate.server.storage.sql_keys import SqlSigningKeys
from authgate.server.storage.sql_purge import SqlMaintenance
from authgate.server.storage.sql_pushed import SqlPushedRequests
from authgate.server.storage.sql_refresh import SqlRefreshTokens
from authgate.server.storage.sql_registration import SqlInitialAccessTokens
from authgate.server.storage.sql_registry import SqlRegistry
from authgate.server.storage.sql_sessions import SqlSessions
from authgate.server.storage.sql_throttle import SqlThrottle
from authgate.server.storage.sql_tokens import SqlTokens

__all__ = ["SqlStorage"]


class SqlStorage(
    SqlRegistry,
    SqlSigningKeys,
    SqlTokens,
    SqlAuthorizationCodes,
    SqlPushedRequests,
    SqlGrants,
    SqlRefreshTokens,
    SqlDeviceAuthorizations,
    SqlConsents,
    SqlSessions,
    SqlThrottle,
    SqlAudit,
    SqlInitialAccessTokens,
    SqlMaintenance,
):
    """The `Storage` roles (the user-facing flows' stores included) implemented with SQLAlchemy
    Core on one `Database`. `retention` says how long `purge_expired` keeps the flows' records
    (by default the configuration's defaults)."""

    def __init__(self, db: Database, *, retention: Retention | None = None) -> None:
        self._db = db
        self._retention = retention or Retention()
        self._family_lock = FileLock(_lock_path(db), db.lock_timeout)
        # Refreshes holding a family lock each need one more pooled connection to issue tokens.
        holders = max(1, db.pool_capacity // 2)
        self._refresh_slots = LoopLocal(lambda: asyncio.Semaphore(holders))

    @property
    def database(self) -> Database:
        """The connection pool (for migrations and health checks)."""
        return self._db

    async def close(self) -> None:
        self._family_lock.close()
        await self._db.close()


def _lock_path(db: Database) -> Path | None:
    """The lock file beside a SQLite database file; None for PostgreSQL or an in-memory one."""
    name = db.url.database
    if not db.is_sqlite or not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name + "-authgate.lock")
