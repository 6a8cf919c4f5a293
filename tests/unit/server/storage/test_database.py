"""`Database.connect` counts the pool's checkouts for the metrics (`PoolCounters`), on SQLite and
PostgreSQL: checkouts waiting for a free connection, and checkouts that timed out."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest
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
