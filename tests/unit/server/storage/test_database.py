"""`Database.connect` counts the pool's checkouts for the metrics (`PoolCounters`), on SQLite and
PostgreSQL: checkouts waiting for a free connection, and checkouts that timed out. On PostgreSQL,
the pool's pre-ping costs one round trip and still replaces a dead connection (issue 14)."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

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
    db = Database(database_url, pool_size=2, pool_timeout=0.1)
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
