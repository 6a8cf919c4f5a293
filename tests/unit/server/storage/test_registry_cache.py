"""The per-process client/API cache: hits expire after `cache_ttl`; client misses are cached for as
long, API misses are not."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from typing import Any

from authgate.server.config import HttpSettings
from authgate.server.models import Api, Client, User
from authgate.server.storage.protocols import RegistryReader
from authgate.server.storage.registry_cache import RegistryCache
from tests.support.server_harness import FakeClock, make_config, running

API = "https://api.example.test"


async def test_cached_client_expires_after_ttl(database_url: str) -> None:
    clock = FakeClock()
    config = make_config(database_url)
    config = replace(config, http=HttpSettings(cache_ttl=5))
    async with running(config, clock) as h:
        await h.create_api(API)
        # A client created after the server started works at once (misses are not cached).
        client, secret = await h.create_client(scopes=("read",))
        assert (await h.token(client, secret)).status_code == 200
        assert await h.server.storage.delete_client(client.client_id)
        # Within the cache lifetime the deletion is not yet seen by this process...
        assert (await h.token(client, secret)).status_code == 200
        clock.advance(6)
        # ...and afterwards it is.
        assert (await h.token(client, secret)).status_code == 401


class CountingStore:
    """The real store, counting the client lookups that reach it."""

    def __init__(self, store: RegistryReader) -> None:
        self.store = store
        self.client_lookups: Counter[str] = Counter()

    async def get_client(self, client_id: str) -> Client | None:
        self.client_lookups[client_id] += 1
        return await self.store.get_client(client_id)

    async def get_api(self, identifier: str) -> Api | None:
        return await self.store.get_api(identifier)

    async def get_user(self, user_id: str) -> User | None:
        return await self.store.get_user(user_id)


async def test_unknown_client_ids_are_cached_like_known_ones(database_url: str) -> None:
    """An unknown client id reaches the database once per `cache_ttl`, as a known one does, so
    response times do not tell which client ids exist."""
    clock = FakeClock()
    async with running(make_config(database_url), clock) as h:
        client, _ = await h.create_client()
        store = CountingStore(h.server.storage)
        cache = RegistryCache(store, 5, clock)
        for _ in range(3):
            assert await cache.get_client(client.client_id) == client
            assert await cache.get_client("no-such-client") is None
        assert store.client_lookups == {client.client_id: 1, "no-such-client": 1}
        clock.advance(6)  # both expire alike
        assert await cache.get_client(client.client_id) == client
        assert await cache.get_client("no-such-client") is None
        assert store.client_lookups == {client.client_id: 2, "no-such-client": 2}
        # With the cache off, every lookup reaches the database, for both.
        uncached = RegistryCache(store, 0, clock)
        for _ in range(2):
            await uncached.get_client(client.client_id)
            await uncached.get_client("no-such-client")
        assert store.client_lookups == {client.client_id: 4, "no-such-client": 4}


class SlowStore:
    """A store whose lookups wait for `release`, counting them; `fail` makes them raise."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.lookups = 0
        self.release = asyncio.Event()
        self.fail = False

    async def get_client(self, client_id: str) -> Client | None:
        self.lookups += 1
        await self.release.wait()
        if self.fail:
            raise RuntimeError("database down")
        return self.client if client_id == self.client.client_id else None

    async def get_api(self, identifier: str) -> Api | None:
        return None

    async def get_user(self, user_id: str) -> User | None:
        return None


async def _started(count: int, coroutine: Any) -> list[asyncio.Task[Any]]:
    tasks = [asyncio.ensure_future(coroutine()) for _ in range(count)]
    await asyncio.sleep(0)
    return tasks


async def test_requests_that_miss_together_share_one_load(database_url: str) -> None:
    clock = FakeClock()
    async with running(make_config(database_url), clock) as h:
        client, _ = await h.create_client()
        store = SlowStore(client)
        cache = RegistryCache(store, 5, clock)
        tasks = await _started(20, lambda: cache.get_client(client.client_id))
        gone = tasks.pop()
        gone.cancel()  # one request goes away: the others' load goes on
        store.release.set()
        assert {t.client_id for t in await asyncio.gather(*tasks)} == {client.client_id}
        assert store.lookups == 1
        assert (await cache.get_client(client.client_id)) is not None
        assert store.lookups == 1  # cached
        clock.advance(6)
        unknown = await _started(5, lambda: cache.get_client("nobody"))
        again = await _started(5, lambda: cache.get_client(client.client_id))  # one reload
        assert await asyncio.gather(*unknown) == [None] * 5
        assert all(c is not None for c in await asyncio.gather(*again))
        assert store.lookups == 3


async def test_a_failed_load_fails_its_waiters_and_the_next_miss_loads_again(
    database_url: str,
) -> None:
    clock = FakeClock()
    async with running(make_config(database_url), clock) as h:
        client, _ = await h.create_client()
        store = SlowStore(client)
        store.fail = True
        cache = RegistryCache(store, 5, clock)
        tasks = await _started(3, lambda: cache.get_client(client.client_id))
        store.release.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, RuntimeError) for r in results)
        assert store.lookups == 1
        store.fail = False
        assert (await cache.get_client(client.client_id)) is not None
        assert store.lookups == 2


async def test_without_a_ttl_every_request_loads(database_url: str) -> None:
    clock = FakeClock()
    async with running(make_config(database_url), clock) as h:
        client, _ = await h.create_client()
        store = SlowStore(client)
        store.release.set()
        cache = RegistryCache(store, 0, clock)
        await asyncio.gather(*(cache.get_client(client.client_id) for _ in range(3)))
        assert store.lookups == 3
