"""The store contracts, run against the in-memory stores (`authgate.server.storage.memory`); the SQL
stores run the same `tests.support.store_contracts` checks (`test_sql.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from authgate.server.models import CodeRedemption, PushedRequest
from authgate.server.storage.memory import (
    MemoryCodeStore,
    MemoryConsentStore,
    MemoryDeviceStore,
    MemoryInitialAccessTokenStore,
    MemoryLockedFamily,
    MemoryPushedRequestStore,
    MemoryRefreshStore,
    MemorySessionStore,
    MemoryThrottleStore,
)
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


async def test_code_store_contract() -> None:
    await check_code_store(MemoryCodeStore())


async def test_pushed_request_store_contract() -> None:
    await check_pushed_request_store(MemoryPushedRequestStore())


async def test_the_checks_catch_a_pushed_store_that_forgets_the_client() -> None:
    class AnyClient(MemoryPushedRequestStore):
        async def use_pushed_request(
            self, uri_hash: str, client_id: str, now: int
        ) -> PushedRequest | None:
            entry = self.requests.get(uri_hash)
            owner = entry[0].client_id if entry else client_id
            return await super().use_pushed_request(uri_hash, owner, now)

    with pytest.raises(AssertionError):
        await check_pushed_request_store(AnyClient())


async def test_refresh_store_contract() -> None:
    await check_refresh_store(MemoryRefreshStore())


async def test_device_store_contract() -> None:
    await check_device_store(MemoryDeviceStore())


async def test_consent_store_contract() -> None:
    await check_consent_store(MemoryConsentStore())


async def test_session_store_contract() -> None:
    await check_session_store(MemorySessionStore())


async def test_throttle_store_contract() -> None:
    await check_throttle_store(MemoryThrottleStore())


async def test_the_checks_catch_a_store_that_forgets_single_use() -> None:
    """The contract checks can fail: a code store that never marks codes used is caught."""

    class Forgetful(MemoryCodeStore):
        async def consume_code(self, code_hash: str, now: int) -> CodeRedemption | None:
            redemption = await super().consume_code(code_hash, now)
            self.codes.update({k: (v[0], None) for k, v in self.codes.items()})
            return redemption

    with pytest.raises(AssertionError):
        await check_code_store(Forgetful())


async def test_the_checks_catch_a_refresh_store_without_rollback() -> None:
    class NoRollback(MemoryRefreshStore):
        @asynccontextmanager
        async def lock_family(self, token_hash: str) -> AsyncIterator[MemoryLockedFamily | None]:
            entry = self.tokens.get(token_hash)
            if entry is None:
                yield None
                return
            family_id, generation = entry
            self.pending = None
            try:
                yield MemoryLockedFamily(self, self.families[family_id], generation)
            finally:  # commits even when the block raised
                if self.pending is not None:
                    self.tokens[self.pending.current_hash] = (family_id, self.pending.generation)
                    self.families[family_id] = self.pending

    with pytest.raises(AssertionError):
        await check_refresh_store(NoRollback())


async def test_initial_access_token_store_contract() -> None:
    await check_initial_access_token_store(MemoryInitialAccessTokenStore())
