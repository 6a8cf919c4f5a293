"""One database connection pool, SQLite or PostgreSQL, with the transaction kinds the stores need.

`sqlite:///PATH` runs on aiosqlite in WAL mode with foreign keys on and a busy timeout, so several
processes may share the file; `postgresql://…` runs on asyncpg. `exclusive()` is the one
cross-process lock of the server: a transaction-scoped advisory lock on PostgreSQL, `BEGIN
IMMEDIATE` (the database's single write lock) on SQLite.

The server bounds every wait on the database (`[database]` lock, statement and pool timeouts): a
stalled or frozen database makes a request fail, and roll back, instead of hanging and committing
long after its client gave up. Without them (the admin commands' migrations), waits are unbounded
except SQLite's busy timeout.

Every connection is taken through `connect()`, which counts for the metrics (`PoolCounters`) the
checkouts under way (waiting for a free connection, or opening or pinging one) and the checkouts
that failed: no free connection within the pool timeout, or no connection to the database.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import await_only

from authgate import tracing

__all__ = ["DEFAULT_POOL_SIZE", "POOL_ERRORS", "Database", "PoolCounters", "async_url"]

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

    @asynccontextmanager
    async def connect(self, *, begins: bool = False) -> AsyncIterator[AsyncConnection]:
        """A pooled connection, counted in `pool_counters` while it is being checked out.

        `begins`: the caller opens a transaction on it at once (`begin`, `write`); on PostgreSQL
        the checkout then begins it (the BEGIN is the pool's ping), and a block that runs no
        statement still ends it (a COMMIT or ROLLBACK)."""
        conn = self.engine.connect()
        counters = self.pool_counters
        counters.waiting += 1
        begins_token = _CHECKOUT_BEGINS.set(begins)
        try:
            await conn.start()
        except PoolTimeout:
            counters.errors["timeout"] += 1
            raise
        except (DBAPIError, OSError, TimeoutError):
            counters.errors["connect"] += 1
            raise
        finally:
            _CHECKOUT_BEGINS.reset(begins_token)
            counters.waiting -= 1
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
