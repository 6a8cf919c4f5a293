"""Refresh-token rotation under concurrency, through `exchange_refresh_token` and the SQL store
(RFC 9700 §4.14.2): many simultaneous refreshes of one token, from several coroutines, pools and
processes, rotate exactly once; every caller gets the same new pair within the grace window; no
caller sees an exception and no reuse alarm goes off."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from authgate.oauth.errors import InvalidGrant
from authgate.server.flows.refresh_tokens import RefreshPolicy, exchange_refresh_token, new_family
from authgate.server.models import OpaqueAccessToken, RefreshFamily
from authgate.server.secret_key import generate_token
from authgate.server.storage import SqlStorage
from tests.support.storage import T0, keyed_hash, open_store
from tests.support.storage_workers import refresh_in_process

CALLERS = 40
POLICY = RefreshPolicy(grace_period=10)


async def _family(store: SqlStorage) -> tuple[str, RefreshFamily]:
    token, family = new_family(
        hash_token=keyed_hash,
        grant_id="grant-1",
        client_id="c",
        user_id="u",
        scopes=("openid", "offline_access"),
        audiences=("https://api",),
        auth_time=T0,
        amr=("pwd",),
        now=T0,
    )
    await store.create_family(family)
    return token, family


class Issuer:
    """Stands in for the token endpoint's `issue_pair`: writes an opaque access token and a JWT
    record (so the database is written while the family lock is held), counts its calls."""

    def __init__(self, store: SqlStorage) -> None:
        self.store = store
        self.issued: list[str] = []

    async def __call__(self, family: RefreshFamily, scopes: tuple[str, ...]) -> tuple[str, bytes]:
        new_token = generate_token()
        self.issued.append(new_token)
        n = len(self.issued)
        await asyncio.sleep(0.01)
        await self.store.save_opaque_token(
            OpaqueAccessToken(
                token_hash=keyed_hash(f"access-{n}"),
                jti=f"opaque-{n}",
                client_id=family.client_id,
                subject=family.user_id,
                audience=family.audiences[0],
                scope=" ".join(scopes),
                roles=(),
                issued_at=T0,
                expires_at=T0 + 300,
                grant_id=family.grant_id,
            )
        )
        await self.store.record_grant_token(family.grant_id, f"jwt-{n}", T0 + 300)
        body = {"access_token": f"access-{n}", "refresh_token": new_token, "scope": scopes}
        return keyed_hash(new_token), json.dumps(body).encode()


async def _exchange(
    store: SqlStorage, token: str, issuer: Issuer, now: int
) -> bytes | BaseException:
    try:
        return await exchange_refresh_token(
            store,
            store,
            keyed_hash(token),
            client_id="c",
            scopes=None,
            clock=lambda: now,
            policy=POLICY,
            issue_pair=issuer,
        )
    except Exception as exc:  # the test asserts there is none
        return exc


async def test_simultaneous_refreshes_rotate_once_and_share_the_response(database_url: str) -> None:
    first = await open_store(database_url)
    second = await open_store(database_url, seeded=False)
    try:
        token, _ = await _family(first)
        issuer = Issuer(first)
        stores = (first, second)
        results = await asyncio.gather(
            *(_exchange(stores[i % 2], token, issuer, T0 + 1) for i in range(CALLERS))
        )
        assert [r for r in results if not isinstance(r, bytes)] == []
        assert len(set(results)) == 1  # the very same response for everyone
        assert len(issuer.issued) == 1  # exactly one rotation
        rotated = await first.find_family(keyed_hash(token))
        assert rotated is not None
        assert rotated.generation == 1
        assert rotated.revoked_at is None  # no false reuse alarm
        assert rotated.current_hash == keyed_hash(issuer.issued[0])
        assert not await first.is_jti_revoked("jwt-1")
        access = await first.get_opaque_token(keyed_hash("access-1"))
        assert access is not None
        assert not access.revoked

        # The new token rotates on; the old one, after the grace window, is reuse.
        later = await _exchange(second, issuer.issued[0], issuer, T0 + 30)
        assert isinstance(later, bytes)
        alarm = await _exchange(first, token, issuer, T0 + 60)
        assert isinstance(alarm, InvalidGrant)
        revoked = await first.find_family(keyed_hash(token))
        assert revoked is not None
        assert revoked.revoked_at == T0 + 60
        assert await first.is_jti_revoked("jwt-1")
        assert await first.is_jti_revoked("jwt-2")
        for n in (1, 2):
            opaque = await first.get_opaque_token(keyed_hash(f"access-{n}"))
            assert opaque is not None
            assert opaque.revoked
    finally:
        await first.close()
        await second.close()


async def test_a_failed_issue_leaves_the_family_as_it_was(store: SqlStorage) -> None:
    token, family = await _family(store)

    async def broken(family: RefreshFamily, scopes: tuple[str, ...]) -> tuple[str, bytes]:
        raise RuntimeError("signing failed")

    with pytest.raises(RuntimeError):
        await exchange_refresh_token(
            store,
            store,
            keyed_hash(token),
            client_id="c",
            scopes=None,
            clock=lambda: T0 + 1,
            policy=POLICY,
            issue_pair=broken,
        )
    assert await store.find_family(keyed_hash(token)) == family
    # The lock was released: the next refresh goes through.
    assert isinstance(await _exchange(store, token, Issuer(store), T0 + 2), bytes)


def test_simultaneous_refreshes_from_several_processes(database_url: str) -> None:
    """Three processes (each with its own pool and lock file handle) refresh one token at once."""
    token = asyncio.run(_prepare(database_url))
    start_at = time.time() + 3  # after every process has imported and connected
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [
            pool.submit(refresh_in_process, database_url, token, start_at, 8) for _ in range(3)
        ]
        results = [r for f in futures for r in f.result(timeout=60)]
    assert len(results) == 24
    assert len(set(results)) == 1, set(results)  # one new token, given to every caller
    assert results[0] not in (token, "InvalidGrant")
    check = asyncio.run(_generation(database_url, token))
    assert check == (1, None)


async def _prepare(url: str) -> str:
    store = await open_store(url)
    try:
        token, _ = await _family(store)
        return token
    finally:
        await store.close()


async def _generation(url: str, token: str) -> tuple[int, int | None]:
    store = await open_store(url, seeded=False)
    try:
        family = await store.find_family(keyed_hash(token))
        assert family is not None
        return family.generation, family.revoked_at
    finally:
        await store.close()
