"""A short-lived per-process cache of clients, APIs and users in front of the store.

The token endpoint reads one client and one API per request (and one user for the user grants);
caching them for `ttl` seconds keeps that off the database. The price, documented in the
configuration: a deleted client, a rotated secret, a deleted API or a user's changed roles take
effect in every process within `ttl` seconds. API and user misses are not cached, so a new API works
at once. Client misses are: otherwise every request naming an unknown client id would reach the
database while a known one is answered from memory, and the response time would tell which client
ids exist (enumeration). Client ids are random (`generate_client_id`), so no id is looked up before
its client exists and a new client still works at once.

One load per entry at a time: the requests that miss while it runs wait for it rather than each
reading the database (at an expiry under load, every request in flight would otherwise miss).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from authgate.server.models import Api, Client, User
from authgate.server.storage.protocols import RegistryReader

__all__ = ["RegistryCache", "UrlClients"]

_V = TypeVar("_V")
_MAX_ENTRIES = 10_000


class UrlClients(Protocol):
    """Clients that are not in the store: those named by a metadata document URL
    (`metadata_clients`), which keeps its own cache."""

    def handles(self, client_id: str) -> bool:
        """Whether `client_id` is one of these (rather than one of the store's)."""

    async def client_for(self, client_id: str) -> Client:
        """The client; an `OAuthError` (invalid_client) naming why there is none."""

    async def get_client(self, client_id: str) -> Client | None:
        """The client, or None when there is none."""


class RegistryCache:
    """`get_client` / `get_api` / `get_user` with a time-to-live."""

    def __init__(
        self,
        store: RegistryReader,
        ttl: float,
        clock: Callable[[], float],
        url_clients: UrlClients | None = None,
        *,
        profile: str | None = None,
    ) -> None:
        self._store = store
        self._profile = profile  # `[security] profile`: held by every client without its own
        self._url_clients = url_clients
        self._ttl = ttl
        self._clock = clock
        self._clients: dict[str, tuple[float, Client]] = {}
        self._unknown_clients: dict[str, float] = {}  # client id -> until when it is known missing
        self._apis: dict[str, tuple[float, Api]] = {}
        self._users: dict[str, tuple[float, User]] = {}
        # The loads running now, by (cache, key): the requests that miss meanwhile share them.
        self._loading: dict[tuple[int, str], asyncio.Future[Any]] = {}

    async def get_client(self, client_id: str) -> Client | None:
        """The client, from the cache when fresh; an unknown id is remembered for `ttl` too. The
        server's security profile applies to every client without one of its own."""
        client = await self._get_client(client_id)
        return None if client is None else client.held_to(self._profile)

    async def _get_client(self, client_id: str) -> Client | None:
        if self._url_clients is not None and self._url_clients.handles(client_id):
            return await self._url_clients.get_client(client_id)
        now = self._clock()
        if self._unknown_clients.get(client_id, now) > now:
            return None
        client = await self._cached(self._clients, client_id, self._store.get_client)
        if client is None and self._ttl > 0:
            # A separate map, so that a flood of made-up ids never evicts the known clients.
            if len(self._unknown_clients) >= _MAX_ENTRIES:
                self._unknown_clients.clear()
            self._unknown_clients[client_id] = now + self._ttl
        return client

    async def get_api(self, identifier: str) -> Api | None:
        """The API, from the cache when fresh."""
        return await self._cached(self._apis, identifier, self._store.get_api)

    async def get_user(self, user_id: str) -> User | None:
        """The user, from the cache when fresh (sign-in reads users by name, uncached)."""
        return await self._cached(self._users, user_id, self._store.get_user)

    async def _cached(
        self,
        cache: dict[str, tuple[float, _V]],
        key: str,
        load: Callable[[str], Awaitable[_V | None]],
    ) -> _V | None:
        now = self._clock()
        hit = cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        if self._ttl <= 0:
            return await load(key)
        flight = (id(cache), key)
        loading = self._loading.get(flight)
        if loading is None:
            loading = asyncio.ensure_future(self._load(cache, key, load, now))
            self._loading[flight] = loading
            loading.add_done_callback(lambda done: self._landed(flight, done))
        # Shielded: a request that goes away does not cancel the load the others wait for.
        value: _V | None = await asyncio.shield(loading)
        return value

    async def _load(
        self,
        cache: dict[str, tuple[float, _V]],
        key: str,
        load: Callable[[str], Awaitable[_V | None]],
        now: float,
    ) -> _V | None:
        value = await load(key)
        if value is None:
            cache.pop(key, None)
            return value
        if len(cache) >= _MAX_ENTRIES:
            cache.clear()
        cache[key] = (now + self._ttl, value)
        return value

    def _landed(self, flight: tuple[int, str], done: asyncio.Future[Any]) -> None:
        if self._loading.get(flight) is done:
            del self._loading[flight]
        if not done.cancelled():
            done.exception()  # retrieved: every waiter may have gone (each got it otherwise)
