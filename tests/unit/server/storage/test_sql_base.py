"""`DriverStatement` (PostgreSQL): a hot statement run on the asyncpg connection inside
SQLAlchemy's transaction behaves as `execute` would: its values bound through the types' bind
processors, in the transaction (rolled back with it), seen by the cursor events, and its errors
raised as `execute` raises them, a dead connection invalidated."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, IntegrityError

from authgate.server.storage import Database
from authgate.server.storage.sql_base import DriverStatement

_TABLE = "driver_statement_test"
_INSERT = DriverStatement(
    sa.text(
        f"INSERT INTO {_TABLE} (id, doc) VALUES (:id, :doc) RETURNING id, doc"  # noqa: S608
    ).bindparams(sa.bindparam("doc", type_=sa.JSON))
)
_SELECT = DriverStatement(
    sa.select(sa.literal(7, sa.Integer).label("fixed"), sa.bindparam("n", type_=sa.Integer))
)


@pytest.fixture
async def db(pg_url: str) -> Any:
    database = Database(pg_url, pool_size=1, statement_timeout=5, pool_timeout=5)
    async with database.begin() as conn:
        await conn.execute(sa.text(f"DROP TABLE IF EXISTS {_TABLE}"))
        await conn.execute(sa.text(f"CREATE TABLE {_TABLE} (id int PRIMARY KEY, doc json)"))
    yield database
    async with database.begin() as conn:
        await conn.execute(sa.text(f"DROP TABLE IF EXISTS {_TABLE}"))
    await database.close()


async def _ids(db: Database) -> list[int]:
    async with db.begin() as conn:
        rows = await conn.execute(sa.text(f"SELECT id FROM {_TABLE} ORDER BY id"))  # noqa: S608
        return [row.id for row in rows]


async def test_values_are_bound_by_their_types_and_rows_come_back_by_name(db: Database) -> None:
    async with db.write() as conn:
        rows = await _INSERT.fetch(conn, {"id": 1, "doc": ["a", "b"]})
        assert [(row["id"], row["doc"]) for row in rows] == [(1, ["a", "b"])]
        (row,) = await _SELECT.fetch(conn, {"n": 3})
        assert tuple(row) == (7, 3)  # the statement's own literal, then the caller's value
    assert await _ids(db) == [1]


async def test_it_runs_in_the_transaction_and_rolls_back_with_it(db: Database) -> None:
    async def insert_then_fail() -> None:
        async with db.write() as conn:
            await _INSERT.fetch(conn, {"id": 2, "doc": None})
            raise RuntimeError

    with pytest.raises(RuntimeError):
        await insert_then_fail()
    assert await _ids(db) == []


async def test_a_fresh_connection_begins_its_transaction_first(pg_url: str) -> None:
    db = Database(pg_url, pool_size=1)
    try:
        async with db.begin() as conn:  # fresh: not pinged, so no BEGIN yet
            await _SELECT.fetch(conn, {"n": 1})
            status = (await conn.execute(sa.text("SELECT now() = statement_timestamp()"))).scalar()
        assert status is False  # a transaction was open before the second statement
    finally:
        await db.close()


async def test_outside_a_transaction_it_refuses(db: Database) -> None:
    async with db.connect() as conn:
        with pytest.raises(RuntimeError):
            await _SELECT.fetch(conn, {"n": 1})


async def test_the_cursor_events_see_it(db: Database) -> None:
    seen: list[tuple[str, int]] = []

    def after(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        seen.append((statement.split(maxsplit=1)[0], cursor.rowcount))

    event.listen(db.engine.sync_engine, "after_cursor_execute", after)
    try:
        async with db.write() as conn:
            await _INSERT.fetch(conn, {"id": 3, "doc": {}})
    finally:
        event.remove(db.engine.sync_engine, "after_cursor_execute", after)
    assert seen == [("INSERT", 1)]


async def test_a_duplicate_raises_integrity_error_as_execute_does(db: Database) -> None:
    async with db.write() as conn:
        await _INSERT.fetch(conn, {"id": 4, "doc": None})
    with pytest.raises(IntegrityError):
        async with db.write() as conn:
            await _INSERT.fetch(conn, {"id": 4, "doc": None})
    assert await _ids(db) == [4]  # the pool works on


async def test_a_statement_timeout_raises_as_execute_does(pg_url: str) -> None:
    db = Database(pg_url, pool_size=1, statement_timeout=0.2, pool_timeout=5)
    slow = DriverStatement(sa.select(sa.func.pg_sleep(sa.bindparam("s", type_=sa.Float))))
    try:
        with pytest.raises(DBAPIError, match="statement timeout"):
            async with db.begin() as conn:
                await slow.fetch(conn, {"s": 2.0})
        async with db.begin() as conn:  # the connection stays usable
            assert tuple((await _SELECT.fetch(conn, {"n": 5}))[0]) == (7, 5)
    finally:
        await db.close()


async def test_a_dead_connection_is_invalidated_and_replaced(db: Database, pg_url: str) -> None:
    pids: list[int] = []

    async def fetch_on_a_dead_connection() -> None:
        async with db.begin() as conn:
            pids.append((await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one())
            with psycopg.connect(pg_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pids[0],))
            await asyncio.sleep(0.05)
            await _SELECT.fetch(conn, {"n": 1})

    with pytest.raises(DBAPIError) as raised:
        await fetch_on_a_dead_connection()
    assert raised.value.connection_invalidated
    async with db.begin() as conn:  # a new connection
        assert (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one() != pids[0]


async def test_a_cancelled_statement_leaves_no_connection_in_an_unknown_state(db: Database) -> None:
    slow = DriverStatement(sa.select(sa.func.pg_sleep(sa.bindparam("s", type_=sa.Float))))

    async def sleep_in_the_database() -> None:
        async with db.write() as conn:
            await _INSERT.fetch(conn, {"id": 5, "doc": None})
            await slow.fetch(conn, {"s": 3.0})

    task = asyncio.create_task(sleep_in_the_database())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _ids(db) == []  # nothing committed, and the pool works on


async def test_on_an_autocommit_connection_it_commits_by_itself(db: Database) -> None:
    async with db.autocommit() as conn:
        await _INSERT.fetch(conn, {"id": 6, "doc": [1]})
        with pytest.raises(IntegrityError):
            await _INSERT.fetch(conn, {"id": 6, "doc": [1]})
    assert await _ids(db) == [6]
