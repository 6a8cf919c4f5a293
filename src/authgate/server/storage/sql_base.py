"""What every SQL store mixin shares: the `Database`, dialect-specific INSERT … ON CONFLICT, and the
per-grant guard that keeps revocation and token recording from interleaving."""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from authgate.server.storage.database import Database
from authgate.server.storage.locks import FileLock
from authgate.server.storage.protocols import AlreadyExistsError
from authgate.server.storage.tables import revoked_grants

__all__ = ["SqlBase", "integrity_error", "storable"]

# First key of the two-int advisory locks on grants ("ag" + "gr"); the two-int key space is
# separate from the one-bigint key of the server's schedule lock.
_GRANT_LOCK_CLASS = 0x61676772


class SqlBase:
    """Shared plumbing of the SQL store mixins; `SqlStorage` sets `_db`."""

    _db: Database
    # SQLite: serialises refresh-family updates and grant revocation across processes.
    _family_lock: FileLock

    def _insert(self, table: sa.Table) -> Any:
        # Both dialects speak INSERT … ON CONFLICT; SQLAlchemy exposes it per dialect.
        return (sqlite.insert if self._db.is_sqlite else postgresql.insert)(table)

    async def _guard_grant(self, conn: AsyncConnection, grant_id: str, *, exclusive: bool) -> None:
        """Order token recording against revocation of one grant, until `conn`'s transaction ends.

        Recorders take the guard shared, the revoker exclusively, so a token is either recorded
        before the revocation reads the grant's tokens or sees the revocation marker afterwards.
        SQLite needs nothing: its write transactions (`Database.write`) run one at a time.
        """
        if self._db.is_sqlite:
            return
        key = int.from_bytes(hashlib.sha256(grant_id.encode()).digest()[:4], "big", signed=True)
        function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        await conn.execute(
            sa.text(f"SELECT {function}(:class, :key)"), {"class": _GRANT_LOCK_CLASS, "key": key}
        )

    async def _grant_is_revoked(self, conn: AsyncConnection, grant_id: str) -> bool:
        row = await conn.execute(
            sa.select(revoked_grants.c.grant_id).where(revoked_grants.c.grant_id == grant_id)
        )
        return row.first() is not None


def storable(value: str) -> bool:
    """Whether `value` can be stored at all: PostgreSQL refuses NUL in text and no database takes
    lone surrogates. A lookup by anything else finds nothing (and must not become a 5xx)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def integrity_error(exc: IntegrityError, what: str) -> Exception:
    """The store error for a failed insert: `AlreadyExistsError` when the key is taken,
    `LookupError` when a referenced client or user does not exist (any more)."""
    orig = exc.orig
    code = getattr(orig, "pgcode", None) or getattr(orig, "sqlite_errorname", "")
    if code in {"23503", "SQLITE_CONSTRAINT_FOREIGNKEY"}:
        return LookupError(f"{what}: its client or user does not exist")
    return AlreadyExistsError(f"{what} exists already")
