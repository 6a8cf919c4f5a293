"""One database connection pool, SQLite or PostgreSQL, with the transaction kinds the stores need.

`sqlite:///PATH` runs on aiosqlite in WAL mode with foreign keys on and a busy timeout, so several
processes may share the file; `postgresql://…` runs on asyncpg. `exclusive()` is the one
cross-process lock of the server: a transaction-scoped advisory lock on PostgreSQL, `BEGIN
IMMEDIATE` (the database's single write lock) on SQLite.

The server bounds every wait on the database (`[database]` lock, statement and pool timeouts): a
stalled or frozen database makes a request fail, and roll back, instead of hanging and committing
long after its client gave up. Without them (the admin commands' migrations), waits are unbounded
except SQLite's busy timeout.

Every connection is taken through `connect()` (or, for the user grants' hot transactions on
PostgreSQL, `driver()`: the same pool, used through asyncpg directly), which counts for the metrics
(`PoolCounters`) the checkouts under way (waiting for a free connection, or opening or pinging one)
and the checkouts that failed: no free connection within the pool timeout, or no connection to the
database.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, NoReturn

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import await_only, immutabledict
from sqlalchemy.util.concurrency import greenlet_spawn

from authgate import tracing

__all__ = [
    "DEFAULT_POOL_SIZE",
    "POOL_ERRORS",
    "Database",
    "DriverConnection",
    "PoolCounters",
    "async_url",
]

# Connections a process keeps open to PostgreSQL: the default of `[database] pool_size` and of any
# caller that names none. More than SQLAlchemy's 5 (benchmarks/README.md has the measurement): a
# code redemption or a refresh holds several connections in turn, and with too few the user grants
# wait for connections.
DEFAULT_POOL_SIZE = 15

# pg_advisory_xact_lock key: "authgate" in ASCII, so other tools' locks do not collide by chance.
_ADVISORY_LOCK_ID = 0x6175746867617465
_SQLITE_BUSY_TIMEOUT = 10.0
# The driver's own limit on a statement is the server's plus this, so that a live server's
# statement_timeout (which leaves the connection usable) fires first; the driver's catches a
# frozen server or a dead network.
_DRIVER_TIMEOUT_MARGIN = 2.0
# Connections opened on top of the pool under load; the refresh store sizes its concurrency from
# the sum (`pool_capacity`).
_POOL_OVERFLOW = 10
_SQLITE_POOL_SIZE = 5


# `timeout`: no free connection within the pool timeout; `connect`: the database refused, did not
# answer, or dropped the connection while it was opened or pinged.
POOL_ERRORS = ("timeout", "connect")


# Set while `begin` and `write` check out a connection: the pool's pre-ping of a pooled connection
# is then the transaction's own BEGIN (`_ping_outside_transaction`), one round trip for both.
_CHECKOUT_BEGINS: ContextVar[bool] = ContextVar("authgate_checkout_begins", default=False)


@dataclass(slots=True)
class PoolCounters:
    """Checkouts under way (`waiting`) and failed checkouts by `POOL_ERRORS` kind."""

    waiting: int = 0
    errors: Counter[str] = field(default_factory=Counter)


def async_url(url: str) -> str:
    """The SQLAlchemy async URL for `sqlite:///…` or `postgresql://…` (driver added)."""
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


class Database:
    """An async engine plus the dialect-specific rules for transactions and locks."""

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        pool_size: int = DEFAULT_POOL_SIZE,
        lock_timeout: float | None = None,
        statement_timeout: float | None = None,
        pool_timeout: float | None = None,
    ) -> None:
        """Timeouts in seconds; None leaves the driver's default (no limit on PostgreSQL)."""
        self.url = make_url(async_url(url))
        self.dialect: str = self.url.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise ValueError("database_url: use sqlite:///PATH or postgresql://…")
        self.lock_timeout = lock_timeout
        self.pool_timeout = pool_timeout
        # SQLite keeps SQLAlchemy's pool (5); `pool_size` sizes the PostgreSQL one.
        self._pool_size = pool_size if self.dialect == "postgresql" else _SQLITE_POOL_SIZE
        kwargs: dict[str, Any] = {
            "echo": echo,
            # A dead connection (database restarted) is replaced at checkout instead of failing a
            # request; on PostgreSQL the ping costs one round trip, none for a transaction, whose
            # BEGIN is the ping (`_ping_outside_transaction`).
            "pool_pre_ping": self.dialect == "postgresql",
            "hide_parameters": True,  # errors and logs never show bound values
        }
        if pool_timeout is not None:
            kwargs["pool_timeout"] = pool_timeout
        if self.dialect == "postgresql":
            kwargs.update(pool_size=pool_size, max_overflow=_POOL_OVERFLOW)
            kwargs["connect_args"] = _asyncpg_limits(lock_timeout, statement_timeout, pool_timeout)
        busy = lock_timeout if lock_timeout is not None else _SQLITE_BUSY_TIMEOUT
        if self.dialect == "sqlite":
            kwargs["connect_args"] = {"timeout": busy}
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.dialect == "postgresql":
            # The pool pings through the engine's dialect instance; only this engine's is changed.
            self.engine.dialect.do_ping = _ping_outside_transaction  # type: ignore[method-assign]
        self.pool_counters = PoolCounters()
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine, busy)
        tracing.instrument_engine(self.engine.sync_engine, self.dialect)  # when tracing is on

    @property
    def pool_capacity(self) -> int:
        """The most connections this process opens to the database at once."""
        return self._pool_size + _POOL_OVERFLOW

    @property
    def is_sqlite(self) -> bool:
        """True for SQLite, whose SQL differs in a few statements."""
        return self.dialect == "sqlite"

    @contextmanager
    def _checking_out(self, *, begins: bool) -> Iterator[None]:
        """Around a pool checkout: counted as waiting meanwhile, its failure counted by kind, and
        `begins` told to the checkout's ping."""
        counters = self.pool_counters
        counters.waiting += 1
        begins_token = _CHECKOUT_BEGINS.set(begins)
        try:
            yield
        except PoolTimeout:
            counters.errors["timeout"] += 1
            raise
        except (DBAPIError, OSError, TimeoutError):
            counters.errors["connect"] += 1
            raise
        finally:
            _CHECKOUT_BEGINS.reset(begins_token)
            counters.waiting -= 1

    @asynccontextmanager
    async def connect(self, *, begins: bool = False) -> AsyncIterator[AsyncConnection]:
        """A pooled connection, counted in `pool_counters` while it is being checked out.

        `begins`: the caller opens a transaction on it at once (`begin`, `write`); on PostgreSQL
        the checkout then begins it (the BEGIN is the pool's ping), and a block that runs no
        statement still ends it (a COMMIT or ROLLBACK)."""
        conn = self.engine.connect()
        with self._checking_out(begins=begins):
            await conn.start()
        async with AsyncExitStack() as closing:
            closing.push_async_exit(conn)  # closed as `async with conn` would (started above)
            yield conn

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A transaction: `async with db.begin() as conn:` (committed on success)."""
        async with self.connect(begins=True) as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that will write: on SQLite it takes the write lock at once, so it waits
        for (rather than fails against) another writer."""
        async with self.connect(begins=True) as plain:
            conn = await plain.execution_options(sqlite_immediate=True) if self.is_sqlite else plain
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection whose statements each commit on their own: for one statement that is a
        transaction by itself. PostgreSQL then sends no BEGIN and COMMIT (two round trips of the
        three); SQLite: a write transaction (`write`), as its single write lock wants."""
        if self.is_sqlite:
            async with self.write() as conn:
                yield conn
            return
        async with self.connect() as plain:
            yield await plain.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def driver(self, *, begins: bool) -> AsyncIterator[DriverConnection]:
        """PostgreSQL: a pooled connection used through asyncpg directly (`DriverConnection`), for
        the hot transactions of the user grants. `begins`: in a transaction, begun by the checkout
        (its ping) and committed when the block ends without an exception, else rolled back;
        otherwise each statement commits by itself until `DriverConnection.begin`."""
        if self.is_sqlite:
            raise ValueError("a driver connection is PostgreSQL's only")
        with self._checking_out(begins=begins):
            fairy = await greenlet_spawn(_checkout, self.engine.sync_engine)
        conn = DriverConnection(fairy, self.engine.sync_engine)
        try:
            if begins:
                # A fresh connection was not pinged, so its BEGIN is still to be sent.
                await conn.begin()
            yield conn
            await conn.end(commit=True)
        except BaseException:
            await conn.end(commit=False)
            raise
        finally:
            await conn.release()

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[AsyncConnection]:
        """A transaction holding the database-wide server lock until it ends."""
        async with self.write() as conn:
            if not self.is_sqlite:
                await conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID}
                )
            yield conn

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def _checkout(sync_engine: Any) -> Any:
    """A pooled connection (pinged by the pool), its errors wrapped as `Connection` wraps them."""
    try:
        return sync_engine.raw_connection()
    except sync_engine.dialect.loaded_dbapi.Error as error:
        Connection._handle_dbapi_exception_noconnection(error, sync_engine.dialect, sync_engine)
        raise


# What a driver connection tells the engine's event listeners of its mode: a statement outside a
# transaction commits by itself, as on a connection with SQLAlchemy's AUTOCOMMIT.
_AUTOCOMMIT_OPTIONS = immutabledict({"isolation_level": "AUTOCOMMIT"})
_NO_OPTIONS: immutabledict[str, Any] = immutabledict()


class DriverConnection:
    """A pooled PostgreSQL connection used through asyncpg directly (`Database.driver`).

    SQLAlchemy's `Connection`, `Transaction` and their greenlets cost a user grant about as much
    CPU as its round trips; its hot transactions run here instead (statements:
    `sql_base.DriverStatement`). What `Connection` would do stays: the transaction is committed
    or rolled back (never left open in the pool), errors are raised as `execute` raises them
    (`IntegrityError`, `DBAPIError` with its parameters hidden, a driver `TimeoutError`), a
    connection whose state is unknown afterwards (a disconnect, a timeout, a cancellation) is
    invalidated, and a disconnect also retires the pool's older connections. The engine's event
    listeners (tracing, the tests' statement counts) see the transactions begun and every
    statement; this connection stands in for the `Connection` they are given."""

    __slots__ = ("_adapter", "_events", "_fairy", "_pool", "dialect", "engine", "valid")

    def __init__(self, fairy: Any, sync_engine: Any) -> None:
        self._fairy = fairy
        self._adapter = fairy.dbapi_connection
        self._pool = sync_engine.pool
        self._events = bool(sync_engine._has_events)
        self.engine = sync_engine
        self.dialect = sync_engine.dialect
        self.valid = True

    @property
    def info(self) -> dict[Any, Any]:
        """The pooled connection's `info`, as `Connection.info`."""
        info: dict[Any, Any] = self._fairy.info
        return info

    def in_transaction(self) -> bool:
        return self._adapter._transaction is not None

    def get_execution_options(self) -> immutabledict[str, Any]:
        """For the event listeners: AUTOCOMMIT outside a transaction."""
        return _NO_OPTIONS if self.in_transaction() else _AUTOCOMMIT_OPTIONS

    async def begin(self) -> None:
        """Begin a transaction, unless the checkout's ping began it (`Database.driver`)."""
        adapter = self._adapter
        if adapter._transaction is None:
            try:
                transaction = adapter._connection.transaction()
                await transaction.start()
            except BaseException as error:  # noqa: BLE001 -- re-raised as `execute` would
                self._raise(error, "BEGIN", ())
            adapter._transaction = transaction
        if self._events:
            self.engine.dispatch.begin(self)

    async def fetch(self, sql: str, args: list[Any]) -> list[Any]:
        """Run `sql` with positional `args` (asyncpg's `$n`); its rows (asyncpg records)."""
        if not self.valid:
            raise RuntimeError("the connection was invalidated")
        events = self._events
        if events:
            self.engine.dispatch.before_cursor_execute(self, None, sql, args, None, False)
        try:
            rows: list[Any] = await self._adapter._connection.fetch(sql, *args)
        except BaseException as error:  # noqa: BLE001 -- re-raised as `execute` would
            self._raise(error, sql, args)
        if events:
            self.engine.dispatch.after_cursor_execute(self, _Ran(len(rows)), sql, args, None, False)
        return rows

    async def end(self, *, commit: bool) -> None:
        """End the transaction, if one is open: commit it or roll it back."""
        adapter = self._adapter
        transaction = adapter._transaction
        if transaction is None or not self.valid:
            return
        adapter._transaction = None
        try:
            if commit:
                if self._events:
                    self.engine.dispatch.commit(self)
                await transaction.commit()
            else:
                if self._events:
                    self.engine.dispatch.rollback(self)
                await transaction.rollback()
        except BaseException as error:  # noqa: BLE001 -- re-raised as `execute` would
            if commit or not isinstance(error, Exception):
                self._raise(error, "COMMIT" if commit else "ROLLBACK", ())
            # A failed rollback (the block's own error is being raised): the connection is
            # invalidated, which ends the transaction.
            self._failed(error, "ROLLBACK", ())

    async def release(self) -> None:
        """Back to the pool (or closed, when invalidated)."""
        await greenlet_spawn(self._fairy.close)

    def _raise(self, error: BaseException, sql: str, args: Any) -> NoReturn:
        failed = self._failed(error, sql, args)
        if failed is error:
            raise error
        raise failed from error

    def _failed(self, error: BaseException, sql: str, args: Any) -> BaseException:
        """`error` as SQLAlchemy's `execute` would raise it; the connection is invalidated when
        its state is unknown (a disconnect, a timeout, a cancellation, anything unexpected)."""
        adapter = self._adapter
        dbapi_error = adapter.dbapi.Error
        translated = error
        if isinstance(error, Exception) and not isinstance(error, dbapi_error):
            try:
                adapter._handle_exception(error)  # raises the translated error (or `error`)
            except Exception as raised:  # noqa: BLE001 -- the translation is what is wanted
                translated = raised
        if isinstance(translated, dbapi_error):
            disconnect = self.dialect.is_disconnect(translated, adapter, None)
            wrapped: BaseException = DBAPIError.instance(
                sql,
                args,
                translated,
                dbapi_error,
                hide_parameters=True,
                connection_invalidated=disconnect,
                dialect=self.dialect,
                ismulti=False,
            )
            if disconnect:
                self._invalidate(wrapped, retire_pool=True)
            return wrapped
        self._invalidate(translated, retire_pool=False)
        return translated

    def _invalidate(self, error: BaseException, *, retire_pool: bool) -> None:
        if not self.valid:
            return
        self.valid = False
        self._adapter._transaction = None  # ended by closing the connection
        if retire_pool:
            self._pool._invalidate(self._fairy, error)
        else:
            self._fairy.invalidate(error)


@dataclass(frozen=True, slots=True)
class _Ran:
    """What the cursor events are given for a driver statement: its row count."""

    rowcount: int


def _ping_outside_transaction(dbapi_connection: Any) -> bool:
    """The pool's pre-ping on asyncpg in one round trip: `SELECT 1` in the simple query protocol,
    outside a transaction (asyncpg's simple protocol fails on an empty statement's answer); for a
    checkout that begins a transaction at once (`Database.begin`, `Database.write`), the
    transaction's BEGIN, which SQLAlchemy's adapter would otherwise send with the first statement:
    the round trip of the ping is saved. A BEGIN that fails leaves no transaction behind and is
    translated as any ping error, so a dead connection is replaced all the same.

    SQLAlchemy's own asyncpg ping wraps a prepared `;` in BEGIN … ROLLBACK (three round trips, for
    pgbouncer's transaction mode, where a prepared statement may meet another backend); the simple
    protocol prepares nothing, so it is safe there too. The driver's `command_timeout` bounds it as
    before (a frozen server fails the checkout), and errors are translated as the dialect's ping
    translates them, so that a dead connection reads as a disconnect: the pool then discards the
    connections older than it and opens a new one (a restarted database).
    """
    if (
        _CHECKOUT_BEGINS.get()
        and dbapi_connection._transaction is None
        and not dbapi_connection.autocommit
    ):
        # The adapter's own start (`BEGIN` through asyncpg's transaction), as the first statement
        # would run it; it translates its errors as the ping below does.
        await_only(dbapi_connection._start_transaction())
        return True
    try:
        await_only(dbapi_connection.driver_connection.execute("SELECT 1"))
    except Exception as error:  # noqa: BLE001 -- re-raised, translated as the dialect's ping does
        dbapi_connection._handle_exception(error)
    return True


def _asyncpg_limits(
    lock_timeout: float | None, statement_timeout: float | None, connect_timeout: float | None
) -> dict[str, Any]:
    """asyncpg's connect arguments for the timeouts: the server enforces lock and statement
    timeouts (and ends a transaction left idle that long: a stalled holder must not keep its row
    locks), the driver its own limit on every command and on connecting."""
    settings: dict[str, str] = {}
    args: dict[str, Any] = {}
    if lock_timeout is not None:
        settings["lock_timeout"] = f"{round(lock_timeout * 1000)}ms"
    if statement_timeout is not None:
        settings["statement_timeout"] = f"{round(statement_timeout * 1000)}ms"
        settings["idle_in_transaction_session_timeout"] = settings["statement_timeout"]
        args["command_timeout"] = statement_timeout + _DRIVER_TIMEOUT_MARGIN
    if connect_timeout is not None:
        args["timeout"] = connect_timeout
    if settings:
        args["server_settings"] = settings
    return args


def _configure_sqlite(engine: AsyncEngine, busy_timeout: float) -> None:
    # pysqlite's implicit transactions are replaced by explicit BEGINs (SQLAlchemy's documented
    # recipe), which lets `exclusive()` ask for BEGIN IMMEDIATE.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={round(busy_timeout * 1000)}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
