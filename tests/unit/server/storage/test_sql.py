"""Every executable contract of the flow stores (`tests/support/store_contracts.py`), run against
`SqlStorage` on SQLite and on the real PostgreSQL, as the in-memory stores run them."""

from __future__ import annotations

import pytest

from authgate.server.storage import SqlStorage
from tests.support.storage import open_store
from tests.support.store_contracts import (
    check_code_store,
    check_consent_store,
    check_device_store,
    check_pushed_request_store,
    check_refresh_store,
    check_session_store,
    check_throttle_store,
)
from tests.support.store_contracts_registration import check_initial_access_token_store


async def test_code_store_contract(store: SqlStorage) -> None:
    await check_code_store(store)


async def test_pushed_request_store_contract(store: SqlStorage) -> None:
    await check_pushed_request_store(store)


async def test_refresh_store_contract(store: SqlStorage) -> None:
    await check_refresh_store(store)


async def test_device_store_contract(store: SqlStorage) -> None:
    await check_device_store(store)


async def test_consent_store_contract(store: SqlStorage) -> None:
    await check_consent_store(store)


async def test_session_store_contract(store: SqlStorage) -> None:
    await check_session_store(store)


async def test_throttle_store_contract(store: SqlStorage) -> None:
    await check_throttle_store(store)


@pytest.mark.parametrize(
    "check",
    [
        check_code_store,
        check_refresh_store,
        check_device_store,
        check_throttle_store,
        check_pushed_request_store,
    ],
    ids=["codes", "refresh", "device", "throttle", "pushed"],
)
async def test_contracts_hold_across_two_connection_pools(database_url: str, check: object) -> None:
    """The atomicity checks again, with each store call going through one of two `SqlStorage`
    objects (two pools, two lock files): what two processes would do."""
    first = await open_store(database_url)
    second = await open_store(database_url, seeded=False)
    try:
        await check(_Alternating(first, second))  # type: ignore[operator]
    finally:
        await first.close()
        await second.close()


class _Alternating:
    """Sends each call to the next of several stores in turn."""

    def __init__(self, *stores: SqlStorage) -> None:
        self._stores = stores
        self._calls = 0

    def __getattr__(self, name: str) -> object:
        self._calls += 1
        return getattr(self._stores[self._calls % len(self._stores)], name)


async def test_initial_access_token_store_contract(store: SqlStorage) -> None:
    await check_initial_access_token_store(store)
