"""Fixtures of the limits tests (helpers live in `tests.support.limits`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from authgate.limits.redis_store import RedisStore
from tests.support.limits import (
    SHARED_REDIS,
    Clock,
    delete_namespace,
    new_namespace,
    shared_redis,
)


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = shared_redis()
    yield client
    client.close()


@pytest.fixture
def namespace(redis_client: redis.Redis) -> Iterator[str]:
    """A fresh key prefix; its keys are deleted from the shared Redis afterwards."""
    name = new_namespace()
    yield name
    delete_namespace(redis_client, name)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def redis_store() -> AsyncIterator[RedisStore]:
    """A store on the shared Redis that uses Redis's own clock."""
    store = RedisStore(SHARED_REDIS, timeout=2.0)
    yield store
    await store.aclose()


@pytest.fixture
async def clocked_redis_store(clock: Clock) -> AsyncIterator[RedisStore]:
    """A store on the shared Redis whose script takes `clock`'s time instead of Redis's."""
    store = RedisStore(SHARED_REDIS, timeout=2.0, clock=clock)
    yield store
    await store.aclose()
