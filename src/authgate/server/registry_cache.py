"""A short-lived per-process cache of clients, APIs and users in front of the store.

The token endpoint reads one client and one API per request (and one user for the user grants);
caching them for `ttl` seconds keeps that off the database. The price, documented in the
configuration: a deleted client, a rotated secret, a deleted API or a user's changed roles take
effect in every process within `ttl` seconds. Misses are not cached, so a new client works at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from authgate.server.models import Api, Client, User

__all__ = ["RegistryCache", "RegistryReader"]

_V = TypeVar("_V")
_MAX_ENTRIES = 10_000


class RegistryReader(Protocol):
    """The lookups cached here (an `ApiStore`, `ClientStore` and `UserStore`)."""

    async def get_client(self, client_id: str) -> Client | None: ...

    async def get_api(self, identifier: str) -> Api | None: ...

    async def get_user(self, user_id: str) -> User | None: ...


class RegistryCache:
    """`get_client` / `get_api` / `get_user` with a time-to-live."""

    def __init__(self, store: RegistryReader, ttl: float, clock: Callable[[], float]) -> None:
        self._store = store
        self._ttl = ttl
        self._clock = clock
        self._clients: dict[str, tuple[float, Client]] = {}
        self._apis: dict[str, tuple[float, Api]] = {}
        self._users: dict[str, tuple[float, User]] = {}

    async def get_client(self, client_id: str) -> Client | None:
        """The client, from the cache when fresh."""
        return await self._cached(self._clients, client_id, self._store.get_client)

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
        value = await load(key)
        if value is None or self._ttl <= 0:
            cache.pop(key, None)
            return value
        if len(cache) >= _MAX_ENTRIES:
            cache.clear()
        cache[key] = (now + self._ttl, value)
        return value
