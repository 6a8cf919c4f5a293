"""The executable contract of `InitialAccessTokenStore` (`authgate.server.storage.protocols`):
run against the in-memory store (`tests/unit/server/storage/test_memory.py`) and the SQL store on
SQLite and PostgreSQL (`test_sql.py`). Pass a fresh, empty store."""

from __future__ import annotations

import asyncio

from authgate.server.models import InitialAccessToken
from authgate.server.storage.protocols import AlreadyExistsError, InitialAccessTokenStore

T0 = 1_700_000_000
CONCURRENCY = 16


async def check_initial_access_token_store(store: InitialAccessTokenStore) -> None:
    """Uses are counted atomically up to `max_uses`; expired, revoked, unknown tokens count
    nothing; ids and hashes are unique."""
    limited = InitialAccessToken("t1", "h1", created_at=T0, expires_at=T0 + 60, max_uses=3)
    await store.create_initial_access_token(limited)
    for duplicate in (
        InitialAccessToken("t1", "other", created_at=T0),
        InitialAccessToken("t2", "h1", created_at=T0),
    ):
        try:
            await store.create_initial_access_token(duplicate)
        except AlreadyExistsError:
            pass
        else:
            raise AssertionError("a taken id or hash must raise AlreadyExistsError")
    assert await store.find_initial_access_token("h1") == limited
    assert await store.find_initial_access_token("unknown") is None
    assert await store.use_initial_access_token("unknown", T0) is None
    # Concurrent uses: exactly max_uses succeed, each returning the token as it was before.
    results = await asyncio.gather(
        *(store.use_initial_access_token("h1", T0 + 1) for _ in range(CONCURRENCY))
    )
    granted = [r for r in results if r is not None]
    assert sorted(r.uses for r in granted) == [0, 1, 2]
    stored = await store.find_initial_access_token("h1")
    assert stored is not None
    assert stored.uses == 3
    assert not stored.usable(T0 + 1)
    # Expiry: refused at and after expires_at.
    expiring = InitialAccessToken("t3", "h3", created_at=T0, expires_at=T0 + 10)
    await store.create_initial_access_token(expiring)
    assert await store.use_initial_access_token("h3", T0 + 10) is None
    assert await store.use_initial_access_token("h3", T0 + 9) is not None
    # Revocation: once; a revoked token counts nothing more.
    forever = InitialAccessToken("t4", "h4", created_at=T0 + 1)
    await store.create_initial_access_token(forever)
    assert await store.use_initial_access_token("h4", T0 + 10**6) is not None
    assert await store.revoke_initial_access_token("t4", T0 + 2)
    assert not await store.revoke_initial_access_token("t4", T0 + 3)
    assert not await store.revoke_initial_access_token("unknown", T0 + 3)
    assert await store.use_initial_access_token("h4", T0 + 4) is None
    listed = await store.list_initial_access_tokens()
    assert [t.token_id for t in listed] == ["t1", "t3", "t4"]
    assert listed[2].revoked_at == T0 + 2
    assert listed[2].uses == 1
