"""What every SQL store mixin shares: the `Database`, dialect-specific INSERT … ON CONFLICT, and the
per-grant guard that keeps revocation and token recording from interleaving."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.util.concurrency import greenlet_spawn

from authgate.server.storage.database import Database, DriverConnection
from authgate.server.storage.locks import FileLock
from authgate.server.storage.protocols import AlreadyExistsError
from authgate.server.storage.tables import revoked_grants

__all__ = [
    "GRANT_LOCK_CLASS",
    "JTI_CTES",
    "RECORD_JTI",
    "DriverStatement",
    "SqlBase",
    "chained",
    "execute",
    "grant_lock_key",
    "integrity_error",
    "storable",
]

# First key of the two-int advisory locks on grants ("ag" + "gr"); the two-int key space is
# separate from the one-bigint key of the server's schedule lock.
GRANT_LOCK_CLASS = 0x61676772


def grant_lock_key(grant_id: str) -> str:
    """SQL for the second key of a grant's guard: the first four bytes of the SHA-256 of the
    `grant_id` expression, as a signed int. Computed in SQL, so that a statement can take the
    guard of a grant it has just read (`SqlRefreshTokens.lock_family`); every guard uses it."""
    digest = f"encode(sha256(convert_to({grant_id}, 'UTF8')), 'hex')"
    return f"CAST(CAST(concat('x', left({digest}, 8)) AS BIT(32)) AS INTEGER)"


# Prebuilt (parsed and compiled once): recorders take the guard shared, the revoker exclusively.
_GUARDS = {
    exclusive: sa.text(
        f"SELECT {function}(:lock_class, {grant_lock_key('CAST(:grant_id AS TEXT)')})"
    )
    for exclusive, function in (
        (False, "pg_advisory_xact_lock_shared"),
        (True, "pg_advisory_xact_lock"),
    )
}


# A JWT id listed under its grant and, if the grant is revoked already (a redemption racing the
# replay that revoked it), put on the revocation list at once: two inserts, as the CTEs of one
# PostgreSQL statement (`chained`); parameters `jti`, `expires_at`, `grant_id`.
JTI_CTES = (
    (
        "listed",
        """INSERT INTO grant_tokens (jti, grant_id, expires_at)
  VALUES (CAST(:jti AS VARCHAR), CAST(:grant_id AS VARCHAR), CAST(:expires_at AS BIGINT))
  ON CONFLICT (jti) DO NOTHING RETURNING 1""",
    ),
    (
        "revoked",
        """INSERT INTO revoked_jwts (jti, expires_at)
  SELECT CAST(:jti AS VARCHAR), CAST(:expires_at AS BIGINT)
  WHERE EXISTS (SELECT 1 FROM revoked_grants WHERE grant_id = CAST(:grant_id AS VARCHAR))
  ON CONFLICT (jti) DO NOTHING RETURNING 1""",
    ),
)


def chained(*ctes: tuple[str, str]) -> str:
    """PostgreSQL: several writes (`(name, INSERT/UPDATE … RETURNING …)`) in one statement, one
    round trip; it returns a row per row written. PostgreSQL runs every data-modifying CTE, in
    one snapshot: a CTE that depends on another selects from it."""
    body = ",\n".join(f"{name} AS (\n  {sql}\n)" for name, sql in ctes)
    # Only the module constants' names and SQL, never input (values are bound parameters).
    rows = " UNION ALL ".join(f"SELECT 1 FROM {name}" for name, _ in ctes)  # noqa: S608
    return f"WITH {body}\n{rows}"


RECORD_JTI = sa.text(chained(*JTI_CTES))


# A DriverStatement's SQL, its parameters' names in order, their bind processors, and the values
# the statement carries itself.
_Compiled = tuple[str, tuple[str, ...], dict[str, Any], dict[str, Any]]


class DriverStatement:
    """A PostgreSQL statement of a hot path, run on the asyncpg connection under SQLAlchemy's
    (`fetch`): SQLAlchemy's execution machinery costs about as much CPU again as asyncpg's own
    round trip, for statements whose SQL never changes.

    Compiled once by SQLAlchemy (asyncpg's `$n` placeholders with their casts, the bound values
    converted by the types' own bind processors, as `execute` would), the SQLAlchemy
    connection's transaction, time limits and error handling stay in force: a failure is raised
    as `execute` raises it (`IntegrityError`, `DBAPIError`, a driver `TimeoutError`), and a dead
    or cancelled connection is invalidated. The engine's cursor events see the statement (tracing,
    the tests' statement counts), with the rows returned as its row count."""

    __slots__ = ("_compiled", "_statement")

    def __init__(self, statement: sa.Executable) -> None:
        self._statement = statement
        self._compiled: _Compiled | None = None

    def _compile(self, dialect: Dialect) -> _Compiled:
        if self._compiled is None:
            if dialect.driver != "asyncpg":
                raise ValueError("a DriverStatement runs on asyncpg only")
            compiled = self._statement.compile(dialect=dialect)  # type: ignore[attr-defined]
            names = tuple(compiled.positiontup or ())
            # Values the statement carries itself (`sa.literal`), which the caller does not pass.
            fixed = {
                name: compiled.binds[name].effective_value
                for name in names
                if compiled.binds[name].value is not None
            }
            self._compiled = (compiled.string, names, dict(compiled._bind_processors), fixed)
        return self._compiled

    async def fetch(
        self, conn: AsyncConnection | DriverConnection, values: Mapping[str, Any]
    ) -> list[Any]:
        """Run the statement in `conn`'s transaction, or by itself on an autocommit connection
        (`Database.autocommit`, a `DriverConnection` outside a transaction); its rows (asyncpg
        records, by name)."""
        sql, names, processors, fixed = self._compile(conn.dialect)
        args = []
        for name in names:
            value = fixed[name] if name in fixed else values[name]
            processor = processors.get(name)
            args.append(value if processor is None or value is None else processor(value))
        if isinstance(conn, DriverConnection):
            return await conn.fetch(sql, args)
        sync = conn.sync_connection
        if sync is None:
            raise RuntimeError("the connection is closed")
        fairy = await conn.get_raw_connection()
        adapter: Any = fairy.dbapi_connection
        if not conn.in_transaction() and not adapter.autocommit:
            raise RuntimeError("a DriverStatement runs in a transaction or on its own")
        events = sync._has_events or sync.engine._has_events
        if events:
            sync.dispatch.before_cursor_execute(sync, None, sql, args, None, False)
        try:
            async with adapter._execute_mutex:
                # A fresh connection was not pinged, so its BEGIN is still to be sent (as
                # SQLAlchemy's cursor sends it with the first statement).
                if adapter._transaction is None:
                    await adapter._start_transaction()
                rows: list[Any] = await adapter._connection.fetch(sql, *args)
        except BaseException as error:
            await greenlet_spawn(_raise_as_execute, sync, adapter, error, sql, args)
            raise  # not reached: `_raise_as_execute` always raises
        if events:
            sync.dispatch.after_cursor_execute(sync, _Ran(len(rows)), sql, args, None, False)
        return rows


# The grant guards (`SqlBase._guard_grant`), run on the driver's connection.
_GUARD_STATEMENTS = {exclusive: DriverStatement(guard) for exclusive, guard in _GUARDS.items()}
_RECORD_JTI_STATEMENT = DriverStatement(RECORD_JTI)


async def execute(conn: AsyncConnection | DriverConnection, statement: sa.Executable) -> None:
    """Run a statement built per call (its values bound in it), on either kind of connection: on
    a `DriverConnection` compiled here, its values converted by their types' bind processors."""
    if isinstance(conn, AsyncConnection):
        await conn.execute(statement)
        return
    compiled: Any = statement.compile(dialect=conn.dialect)  # type: ignore[attr-defined]
    params = compiled.construct_params()
    processors = compiled._bind_processors
    args = []
    for name in compiled.positiontup or ():
        value = params[name]
        processor = processors.get(name)
        args.append(value if processor is None or value is None else processor(value))
    await conn.fetch(compiled.string, args)


@dataclass(frozen=True, slots=True)
class _Ran:
    """What the cursor events are given for a `DriverStatement`: its row count."""

    rowcount: int


def _raise_as_execute(
    sync: Connection, adapter: Any, error: BaseException, sql: str, args: list[Any]
) -> None:
    """Raise `error` as SQLAlchemy's `execute` would have: asyncpg's errors translated to the
    DB-API ones by the dialect's adapter, then wrapped (`IntegrityError`, …) by the connection,
    which invalidates it after a disconnect or a cancellation. SQLAlchemy's handler reads the
    exception being handled (`sys.exc_info`), so it is called in an `except` block."""
    try:
        if isinstance(error, Exception) and not isinstance(error, adapter.dbapi.Error):
            adapter._handle_exception(error)  # raises the translated error (or `error`)
        raise error  # noqa: TRY301
    except BaseException as translated:  # noqa: BLE001 -- SQLAlchemy's handler raises it
        sync._handle_dbapi_exception(translated, sql, args, None, None)


@dataclass(slots=True)
class _GrantTransaction:
    """A transaction that the token records of `grant_id` join (see `SqlBase._joining_grant`
    and `SqlBase.grant_transaction`); `conn` None: opened on the first record, in `opener`."""

    grant_id: str
    conn: AsyncConnection | DriverConnection | None
    opener: AsyncExitStack | None = None
    guarded: bool = False
    # The JWT ids recorded under the grant (`SqlGrants.record_grant_token`), written by the
    # statement that ends the grant's work (a rotation, a new family) or, without one, before the
    # transaction commits: `(jti, expires_at)`.
    listed: list[tuple[str, int]] = field(default_factory=list)


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

    async def _guard_grant(
        self, conn: AsyncConnection | DriverConnection, grant_id: str, *, exclusive: bool
    ) -> None:
        """Order token recording against revocation of one grant, until `conn`'s transaction ends.

        Recorders take the guard shared, the revoker exclusively, so a token is either recorded
        before the revocation reads the grant's tokens or sees the revocation marker afterwards.
        SQLite needs nothing: its write transactions (`Database.write`) run one at a time.
        """
        if self._db.is_sqlite:
            return
        await _GUARD_STATEMENTS[exclusive].fetch(
            conn, {"lock_class": GRANT_LOCK_CLASS, "grant_id": grant_id}
        )

    def _write_transaction(self) -> AbstractAsyncContextManager[AsyncConnection | DriverConnection]:
        """A write transaction: on PostgreSQL on the driver's connection (`Database.driver`)."""
        if self._db.is_sqlite:
            return self._db.write()
        return self._db.driver(begins=True)

    @asynccontextmanager
    async def _grant_write(
        self, grant_id: str
    ) -> AsyncIterator[AsyncConnection | DriverConnection]:
        """A write transaction for a token record of `grant_id`, holding the grant guard (shared):
        the transaction of the refresh under way for that grant when there is one (whose commit
        or rollback then covers the record too), else a new one (PostgreSQL: on the driver's
        connection)."""
        joined = _joined.get()
        if joined is not None and joined.grant_id == grant_id:
            if joined.conn is None and joined.opener is not None:
                joined.conn = await joined.opener.enter_async_context(self._write_transaction())
            if joined.conn is not None:
                if not joined.guarded:
                    await self._guard_grant(joined.conn, grant_id, exclusive=False)
                    joined.guarded = True
                yield joined.conn
                return
        async with self._write_transaction() as conn:
            await self._guard_grant(conn, grant_id, exclusive=False)
            yield conn

    def _listing(self, grant_id: str) -> list[tuple[str, int]] | None:
        """The JWT ids waiting to be recorded in the transaction of `grant_id` that this task has
        joined (PostgreSQL), which the caller takes over; None outside one."""
        joined = _joined.get()
        if joined is None or joined.grant_id != grant_id:
            return None
        return joined.listed

    async def _record_listed(
        self, conn: AsyncConnection | DriverConnection, listed: list[tuple[str, int]], grant_id: str
    ) -> None:
        """PostgreSQL: write the JWT ids of `listed` that no other statement took (and forget
        them)."""
        for jti, expires_at in listed:
            await _RECORD_JTI_STATEMENT.fetch(
                conn, {"jti": jti, "expires_at": expires_at, "grant_id": grant_id}
            )
        listed.clear()

    @asynccontextmanager
    async def _joining_grant(
        self, grant_id: str, conn: AsyncConnection | DriverConnection, *, guarded: bool = False
    ) -> AsyncIterator[list[tuple[str, int]]]:
        """Within the block, token records of `grant_id` made by this task are written in `conn`'s
        transaction (`_grant_write`); `guarded`: that transaction holds the grant guard already.
        Yields the JWT ids recorded meanwhile, which the caller writes before committing."""
        joined = _GrantTransaction(grant_id, conn, guarded=guarded)
        token = _joined.set(joined)
        try:
            yield joined.listed
        finally:
            _joined.reset(token)

    @asynccontextmanager
    async def grant_transaction(self, grant_id: str) -> AsyncIterator[None]:
        """On PostgreSQL, the token records of `grant_id` made by this task within the block share
        one transaction (opened by the first write), committed when the block ends without an
        exception and rolled back otherwise; an access token's record waits for the new family's
        insert (`create_family`) and shares its statement, or is written as the block ends.
        SQLite: each record keeps its own short write transaction, so that the database's single
        write lock is not held while tokens are signed."""
        if self._db.is_sqlite or _joined.get() is not None:
            yield
            return
        async with AsyncExitStack() as opener:
            joined = _GrantTransaction(grant_id, None, opener)
            token = _joined.set(joined)
            try:
                yield
                # Reached only without an exception: the JWT ids that no family took.
                if joined.listed:
                    async with self._grant_write(grant_id) as conn:
                        await self._record_listed(conn, joined.listed, grant_id)
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
