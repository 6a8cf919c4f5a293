"""`Database.connect` counts the pool's checkouts for the metrics (`PoolCounters`), on SQLite and
PostgreSQL: checkouts waiting for a free connection, and checkouts that timed out. On PostgreSQL,
the pool's pre-ping costs one round trip, none for a transaction (its BEGIN is the ping), and
still replaces a dead connection (issue 14)."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import TimeoutError as PoolTimeout

from authgate.server.storage import Database


async def _hold_every_connection(db: Database, stack: AsyncExitStack) -> None:
    for _ in range(db.pool_capacity):
        await stack.enter_async_context(db.connect())
    assert db.pool_counters.waiting == 0


async def test_a_checkout_waits_for_a_free_connection(database_url: str) -> None:
    db = Database(database_url, pool_size=2, pool_timeout=60)
    try:
        async with AsyncExitStack() as held:
            await _hold_every_connection(db, held)
            got = asyncio.Event()

            async def checkout() -> None:
                async with db.begin():
                    got.set()

            waiter = asyncio.create_task(checkout())
            for _ in range(3000):  # until the task is queued in the pool
                if db.pool_counters.waiting:
                    break
                await asyncio.sleep(0.01)
            assert db.pool_counters.waiting == 1
            assert not got.is_set()
        await waiter  # a connection came back: the waiter took it
        assert got.is_set()
        assert db.pool_counters.waiting == 0
        assert db.pool_counters.errors == {}
    finally:
        await db.close()


async def test_a_checkout_that_times_out_is_counted(database_url: str) -> None:
    # The pool timeout also bounds connecting (asyncpg's `timeout`): 0.1 s failed the two
    # connections' own connects on a loaded machine.
    db = Database(database_url, pool_size=2, pool_timeout=0.5)
    try:
        async with AsyncExitStack() as held:
            await _hold_every_connection(db, held)
            with pytest.raises(PoolTimeout):
                async with db.write():
                    pass
        assert db.pool_counters.errors == {"timeout": 1}
        assert db.pool_counters.waiting == 0
        async with db.begin():  # the pool works on
            pass
    finally:
        await db.close()


async def _backend_pid(db: Database) -> int:
    async with db.connect() as conn:
        pid = (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
    return int(pid)


async def test_a_checkout_pings_postgresql_in_one_statement_outside_a_transaction(
    pg_url: str,
) -> None:
    db = Database(pg_url, pool_size=1)
    try:
        async with db.connect() as conn:  # the pool's first connection is fresh: not pinged
            driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        sent: list[str] = []
        driver.add_query_logger(lambda record: sent.append(record.query))
        async with db.connect() as conn:
            assert (await conn.get_raw_connection()).driver_connection is driver  # reused
        await asyncio.sleep(0.01)  # asyncpg calls its query loggers soon after, not at once
        # SQLAlchemy's own ping sends BEGIN, a prepared `;` and ROLLBACK: three round trips.
        assert sent == ["SELECT 1"]
    finally:
        await db.close()


async def test_a_checkout_replaces_a_connection_postgresql_ended(pg_url: str) -> None:
    db = Database(pg_url, pool_size=1, statement_timeout=5, pool_timeout=5)
    try:
        pid = await _backend_pid(db)
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        # The ping finds the pooled connection dead and the pool opens another: no error.
        assert await _backend_pid(db) != pid
        assert db.pool_counters.errors == {}
    finally:
        await db.close()


async def _driver(db: Database) -> tuple[Any, list[str]]:
    """The pool's one connection (opened, so that the next checkout pings it), logging the SQL
    it is sent from now on."""
    async with db.connect() as conn:  # the pool's first connection is fresh: not pinged
        driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    sent: list[str] = []
    driver.add_query_logger(lambda record: sent.append(record.query))
    return driver, sent


@pytest.mark.parametrize("kind", ["begin", "write"])
async def test_a_transaction_s_checkout_is_pinged_by_its_begin(pg_url: str, kind: str) -> None:
    db = Database(pg_url, pool_size=1)
    try:
        driver, sent = await _driver(db)
        async with getattr(db, kind)() as conn:
            assert (await conn.get_raw_connection()).driver_connection is driver  # reused
            assert driver.is_in_transaction()  # begun at checkout
            await conn.execute(sa.text("SELECT 2"))
        await asyncio.sleep(0.01)
        # BEGIN at checkout (the ping) and COMMIT, no SELECT 1 (asyncpg's loggers leave out the
        # prepared statements, SELECT 2 here).
        assert sent == ["BEGIN;", "COMMIT;"]
    finally:
        await db.close()


async def test_a_transaction_begun_at_checkout_commits_and_rolls_back(pg_url: str) -> None:
    db = Database(pg_url, pool_size=1)
    try:
        driver, _sent = await _driver(db)
        async with db.begin() as conn:
            await conn.execute(sa.text("CREATE TEMP TABLE ping_tx (n int)"))

        async def fail_after_insert() -> None:
            async with db.write() as conn:
                await conn.execute(sa.text("INSERT INTO ping_tx VALUES (1)"))
                raise RuntimeError

        with pytest.raises(RuntimeError):
            await fail_after_insert()
        async with db.write() as conn:
            await conn.execute(sa.text("INSERT INTO ping_tx VALUES (2)"))
        async with db.begin():  # a block without a statement ends its transaction too
            pass
        async with db.connect() as conn:  # the plain checkout pings with SELECT 1, no BEGIN
            assert not driver.is_in_transaction()
            rows = (await conn.execute(sa.text("SELECT n FROM ping_tx"))).scalars().all()
            await conn.rollback()
        assert rows == [2]
    finally:
        await db.close()


@pytest.mark.parametrize("kind", ["begin", "write"])
async def test_a_transaction_s_checkout_replaces_a_connection_postgresql_ended(
    pg_url: str, kind: str
) -> None:
    db = Database(pg_url, pool_size=1, statement_timeout=5, pool_timeout=5)
    try:
        pid = await _backend_pid(db)
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        # The BEGIN finds the pooled connection dead and the pool opens another: no error.
        async with getattr(db, kind)() as conn:
            new_pid = (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
        assert new_pid != pid
        assert db.pool_counters.errors == {}
    finally:
        await db.close()


# `Database.driver`: the user grants' transactions on asyncpg directly keep what SQLAlchemy's
# `Connection` guarantees: commit or rollback, errors as `execute` raises them, and a connection in
# an unknown state never goes back to the pool.


async def _driver_fetch(db: Database, sql: str, *, begins: bool = True) -> list[Any]:
    async with db.driver(begins=begins) as conn:
        return await conn.fetch(sql, [])


async def test_a_driver_transaction_is_begun_by_the_ping_and_committed(pg_url: str) -> None:
    db = Database(pg_url, pool_size=1)
    try:
        driver, sent = await _driver(db)
        async with db.driver(begins=True) as conn:
            assert driver.is_in_transaction()  # begun at checkout, by the ping
            await conn.fetch("CREATE TEMP TABLE driver_tx (n int PRIMARY KEY)", [])
            await conn.fetch("INSERT INTO driver_tx VALUES (1)", [])

        async def fail_after_insert() -> None:
            async with db.driver(begins=True) as conn:
                await conn.fetch("INSERT INTO driver_tx VALUES (2)", [])
                raise RuntimeError

        with pytest.raises(RuntimeError):
            await fail_after_insert()
        assert not driver.is_in_transaction()
        async with db.driver(begins=False) as conn:  # outside a transaction: SELECT 1 pings
            assert not driver.is_in_transaction()
            rows = await conn.fetch("SELECT n FROM driver_tx", [])
            await conn.begin()
            assert driver.is_in_transaction()
        assert not driver.is_in_transaction()
        assert [row["n"] for row in rows] == [1]
        await asyncio.sleep(0.01)
        control = [sql for sql in sent if sql in {"BEGIN;", "COMMIT;", "ROLLBACK;", "SELECT 1"}]
        assert control == [
            "BEGIN;",
            "COMMIT;",
            "BEGIN;",
            "ROLLBACK;",
            "SELECT 1",
            "BEGIN;",
            "COMMIT;",
        ]
    finally:
        await db.close()


async def test_a_driver_statement_s_error_is_raised_as_execute_raises_it(pg_url: str) -> None:
    db = Database(pg_url, pool_size=1)
    try:
        driver, _sent = await _driver(db)

        async def insert_twice() -> None:
            async with db.driver(begins=True) as conn:
                await conn.fetch("CREATE TEMP TABLE driver_dup (n int PRIMARY KEY)", [])
                await conn.fetch("INSERT INTO driver_dup VALUES ($1)", [1])
                await conn.fetch("INSERT INTO driver_dup VALUES ($1)", [1])

        with pytest.raises(sa.exc.IntegrityError) as raised:
            await insert_twice()
        assert raised.value.orig is not None
        assert getattr(raised.value.orig, "pgcode", None) == "23505"
        assert "hidden due to hide_parameters" in str(raised.value)
        # Rolled back, and the same connection serves the next checkout.
        assert not driver.is_in_transaction()
        async with db.connect() as conn:
            assert (await conn.get_raw_connection()).driver_connection is driver
    finally:
        await db.close()


async def test_a_driver_connection_postgresql_ended_is_not_pooled_again(pg_url: str) -> None:
    db = Database(pg_url, pool_size=1, statement_timeout=5, pool_timeout=5)
    try:
        pid = await _backend_pid(db)

        async def ended_meanwhile() -> None:
            async with db.driver(begins=True) as conn:
                with psycopg.connect(pg_url, autocommit=True) as admin:
                    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                await asyncio.sleep(0.1)
                await conn.fetch("SELECT 1", [])

        with pytest.raises(sa.exc.DBAPIError) as raised:
            await ended_meanwhile()
        assert raised.value.connection_invalidated
        assert await _backend_pid(db) != pid
    finally:
        await db.close()


async def test_a_cancelled_driver_statement_does_not_go_back_to_the_pool(pg_url: str) -> None:
    db = Database(pg_url, pool_size=1, statement_timeout=5, pool_timeout=5)
    try:
        pid = await _backend_pid(db)
        task = asyncio.create_task(_driver_fetch(db, "SELECT pg_sleep(3)"))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Its state unknown (the statement may still run): closed, another one opened.
        async with db.driver(begins=True) as conn:
            rows = await conn.fetch("SELECT pg_backend_pid() AS pid", [])
        assert rows[0]["pid"] != pid
    finally:
        await db.close()
