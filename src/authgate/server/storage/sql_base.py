"""What every SQL store mixin shares: the `Database`, dialect-specific INSERT … ON CONFLICT, and the
per-grant guard that keeps revocation and token recording from interleaving."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
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


@dataclass(slots=True)
class _GrantTransaction:
    """A transaction that the token records of `grant_id` join (see `SqlBase._joining_grant`
    and `SqlBase.grant_transaction`); `conn` None: opened on the first record, in `opener`."""

    grant_id: str
    conn: AsyncConnection | None
    opener: AsyncExitStack | None = None
    guarded: bool = False


# On PostgreSQL, set while a refresh holds its family's row lock (the access token it issues is
# recorded in the same transaction) and while a grant's first tokens are issued
# (`grant_transaction`): one commit per grant, one connection.
_joined: ContextVar[_GrantTransaction | None] = ContextVar("authgate_grant_tx", default=None)


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

    @asynccontextmanager
    async def _grant_write(self, grant_id: str) -> AsyncIterator[AsyncConnection]:
        """A write transaction for a token record of `grant_id`, holding the grant guard (shared):
        the transaction of the refresh under way for that grant when there is one (whose commit
        or rollback then covers the record too), else a new one."""
        joined = _joined.get()
        if joined is not None and joined.grant_id == grant_id:
            if joined.conn is None and joined.opener is not None:
                joined.conn = await joined.opener.enter_async_context(self._db.write())
            if joined.conn is not None:
                if not joined.guarded:
                    await self._guard_grant(joined.conn, grant_id, exclusive=False)
                    joined.guarded = True
                yield joined.conn
                return
        async with self._db.write() as conn:
            await self._guard_grant(conn, grant_id, exclusive=False)
            yield conn

    @asynccontextmanager
    async def _joining_grant(self, grant_id: str, conn: AsyncConnection) -> AsyncIterator[None]:
        """Within the block, token records of `grant_id` made by this task are written in `conn`'s
        transaction (`_grant_write`)."""
        token = _joined.set(_GrantTransaction(grant_id, conn))
        try:
            yield
        finally:
            _joined.reset(token)

    @asynccontextmanager
    async def grant_transaction(self, grant_id: str) -> AsyncIterator[None]:
        """On PostgreSQL, the token records of `grant_id` made by this task within the block share
        one transaction (opened by the first), committed when the block ends without an exception
        and rolled back otherwise. SQLite: each record keeps its own short write transaction, so
        that the database's single write lock is not held while tokens are signed."""
        if self._db.is_sqlite or _joined.get() is not None:
            yield
            return
        async with AsyncExitStack() as opener:
            token = _joined.set(_GrantTransaction(grant_id, None, opener))
            try:
                yield
            finally:
                _joined.reset(token)

    def _revoked_marker(self, grant_id: str) -> Any:
        """SQL true when `grant_id` has been revoked (its marker in `revoked_grants`)."""
        return sa.exists().where(revoked_grants.c.grant_id == grant_id)

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
