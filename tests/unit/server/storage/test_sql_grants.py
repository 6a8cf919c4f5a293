"""Revoking everything issued under one grant (RFC 6749 §4.1.2 code replay, RFC 9700 §4.14.2
refresh reuse, RFC 7009 §2.1), including tokens recorded while the revocation happens."""

from __future__ import annotations

import asyncio
import dataclasses

from authgate.oauth.errors import InvalidGrant
from authgate.server.flows.codes import redeem_code
from authgate.server.flows.refresh_tokens import new_family
from authgate.server.models import OpaqueAccessToken, RefreshFamily
from authgate.server.storage import SqlStorage
from tests.support.storage import T0, keyed_hash, open_store
from tests.support.store_contracts import _code

CALLERS = 16


def _opaque(name: str, grant_id: str | None, expires_at: int = T0 + 300) -> OpaqueAccessToken:
    return OpaqueAccessToken(
        token_hash=keyed_hash(name),
        jti=name,
        client_id="c",
        subject="u",
        audience="https://api",
        scope="read",
        roles=(),
        issued_at=T0,
        expires_at=expires_at,
        grant_id=grant_id,
    )


def _new_family(
    grant_id: str, user_id: str = "u", client_id: str = "c"
) -> tuple[str, RefreshFamily]:
    return new_family(
        hash_token=keyed_hash,
        grant_id=grant_id,
        client_id=client_id,
        user_id=user_id,
        scopes=("offline_access",),
        audiences=("https://api",),
        auth_time=T0,
        amr=("pwd",),
        now=T0,
    )


async def _revoked(store: SqlStorage, name: str) -> bool:
    record = await store.get_opaque_token(keyed_hash(name))
    assert record is not None
    return record.revoked


async def test_revoke_grant_reaches_every_kind_of_token_and_nothing_else(store: SqlStorage) -> None:
    await store.record_grant_token("g1", "jwt-live", T0 + 300)
    await store.record_grant_token("g1", "jwt-expired", T0 + 5)
    await store.record_grant_token("g2", "jwt-other", T0 + 300)
    await store.save_opaque_token(_opaque("opaque-1", "g1"))
    await store.save_opaque_token(_opaque("opaque-2", "g2"))
    await store.save_opaque_token(_opaque("opaque-cc", None))  # client credentials: no grant
    token_1, family_1 = _new_family("g1")
    token_2, family_2 = _new_family("g2")
    await store.create_family(family_1)
    await store.create_family(family_2)

    await store.revoke_grant("g1", T0 + 10)
    await store.revoke_grant("g1", T0 + 20)  # idempotent: the first revocation time stays

    assert await store.is_jti_revoked("jwt-live")
    assert not await store.is_jti_revoked("jwt-expired")  # expired anyway: not listed
    assert not await store.is_jti_revoked("jwt-other")
    assert await _revoked(store, "opaque-1")
    assert not await _revoked(store, "opaque-2")
    assert not await _revoked(store, "opaque-cc")
    revoked = await store.find_family(keyed_hash(token_1))
    assert revoked == dataclasses.replace(family_1, revoked_at=T0 + 10)
    assert await store.find_family(keyed_hash(token_2)) == family_2


async def test_tokens_recorded_after_the_revocation_are_born_revoked(store: SqlStorage) -> None:
    await store.revoke_grant("late", T0)
    await store.record_grant_token("late", "jwt-late", T0 + 300)
    await store.save_opaque_token(_opaque("opaque-late", "late"))
    token, family = _new_family("late")
    await store.create_family(family)
    assert await store.is_jti_revoked("jwt-late")
    assert await _revoked(store, "opaque-late")
    stored = await store.find_family(keyed_hash(token))
    assert stored is not None
    assert stored.revoked_at == T0
    # Another grant is not affected.
    await store.record_grant_token("fresh", "jwt-fresh", T0 + 300)
    assert not await store.is_jti_revoked("jwt-fresh")


async def test_concurrent_redemptions_of_one_code(database_url: str) -> None:
    """Exactly one redemption wins; every replay revokes the grant, and the winner's tokens end up
    revoked whether they were recorded before or after a replay's revocation."""
    first = await open_store(database_url)
    second = await open_store(database_url, seeded=False)
    try:
        code = dataclasses.replace(_code(keyed_hash("the code")), grant_id="grant-of-the-code")
        await first.save_code(code)

        async def redeem(store: SqlStorage, i: int) -> str:
            try:
                redeemed, audiences = await redeem_code(
                    store,
                    store,
                    code.code_hash,
                    client_id="c",
                    redirect_uri="https://a/cb",
                    code_verifier=None,
                    now=T0 + 1,
                )
            except InvalidGrant:
                return "refused"
            assert audiences == ("https://api",)
            await asyncio.sleep(0.005)  # issue the tokens while the replays come in
            await store.record_grant_token(redeemed.grant_id, "jwt-won", T0 + 300)
            await store.save_opaque_token(_opaque("opaque-won", redeemed.grant_id))
            _, family = _new_family(redeemed.grant_id)
            await store.create_family(family)
            return "won"

        results = await asyncio.gather(*(redeem((first, second)[i % 2], i) for i in range(CALLERS)))
        assert results.count("won") == 1
        assert results.count("refused") == CALLERS - 1
        assert await first.is_jti_revoked("jwt-won")
        assert await _revoked(first, "opaque-won")
        with_grant = [f for f in await _families(first) if f.grant_id == code.grant_id]
        assert len(with_grant) == 1
        assert with_grant[0].revoked_at is not None
    finally:
        await first.close()
        await second.close()


async def _families(store: SqlStorage) -> list[RefreshFamily]:
    from authgate.server.storage.sql_refresh import _family  # noqa: PLC0415
    from authgate.server.storage.tables import refresh_families  # noqa: PLC0415

    async with store.database.begin() as conn:
        return [_family(row._mapping) for row in await conn.execute(refresh_families.select())]


async def test_revoke_user_grants(store: SqlStorage) -> None:
    token_a, family_a = _new_family("ga", client_id="c")
    token_b, family_b = _new_family("gb", client_id="app")
    token_c, family_c = _new_family("gc", user_id="alice", client_id="c")
    for family in (family_a, family_b, family_c):
        await store.create_family(family)
    await store.record_grant_token("ga", "jwt-a", T0 + 300)
    assert await store.revoke_user_grants("u", "c", T0 + 1) == 1
    assert await store.is_jti_revoked("jwt-a")
    assert await store.revoke_user_grants("u", "c", T0 + 2) == 0  # nothing live is left
    assert await store.revoke_user_grants("u", None, T0 + 3) == 1  # client "app"
    remaining = await store.find_family(keyed_hash(token_c))
    assert remaining is not None
    assert remaining.revoked_at is None
    for token in (token_a, token_b):
        family = await store.find_family(keyed_hash(token))
        assert family is not None
        assert family.revoked_at is not None
