"""SQL implementation of `RefreshTokenStore` (see its contract in `storage.protocols`; RFC 9700
§4.14.2 rotation and reuse detection).

`refresh_families` holds one row per family, `refresh_tokens` the hash of every token ever issued
in it. `lock_family` serialises all changes to a family across processes:

- PostgreSQL: one transaction that reads the family `FOR UPDATE`; other refreshes of the family
  wait on the row and then read what the holder committed. The holder issues the new tokens
  meanwhile on other pooled connections, so the number of holders per process is kept to half
  the pool: every holder can then get the connection it needs and none waits forever.
- SQLite: the database's only lock is the write lock of the whole file, and the holder's token
  writes need it too, so the family is read and written in two short transactions under a
  `FileLock` that every process opening the database shares.

Every wait is bounded by the database's timeouts (a holder slot: the pool timeout; the row lock
or the lock file: the lock timeout), so a stalled database fails the refresh, which then commits
nothing, instead of rotating the family long after the client gave up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from authgate.server.models import RefreshFamily
from authgate.server.storage.locks import LoopLocal
from authgate.server.storage.sql_base import SqlBase, integrity_error
from authgate.server.storage.tables import refresh_families, refresh_tokens

__all__ = ["SqlLockedFamily", "SqlRefreshTokens"]

_PRESENTED_GENERATION = refresh_tokens.c.generation.label("presented_generation")


class SqlLockedFamily:
    """A family read under its lock; `save` records the replacement, written when the lock is
    released without an exception."""

    def __init__(self, family: RefreshFamily, generation: int) -> None:
        self._family = family
        self._generation = generation
        self.pending: RefreshFamily | None = None

    @property
    def family(self) -> RefreshFamily:
        return self._family

    @property
    def generation(self) -> int:
        return self._generation

    async def save(self, family: RefreshFamily) -> None:
        if family.family_id != self._family.family_id:
            raise ValueError("a locked family can only be replaced by itself")
        self.pending = family


class SqlRefreshTokens(SqlBase):
    """Refresh-token families in SQL."""

    _refresh_slots: LoopLocal[asyncio.Semaphore]

    async def create_family(self, family: RefreshFamily) -> None:
        values = _values(family)
        if family.revoked_at is None:
            # The grant was revoked while this family was being issued (a replayed code): the
            # family is stored revoked, decided in the insert itself.
            values["revoked_at"] = sa.case(
                (self._revoked_marker(family.grant_id), family.created_at), else_=sa.null()
            )
        try:
            async with self._grant_write(family.grant_id) as conn:
                await conn.execute(refresh_families.insert().values(values))
                await conn.execute(
                    refresh_tokens.insert().values(
                        token_hash=family.current_hash,
                        family_id=family.family_id,
                        generation=family.generation,
                    )
                )
        except IntegrityError as exc:
            raise integrity_error(exc, "the refresh-token family or token") from None

    def lock_family(self, token_hash: str) -> AbstractAsyncContextManager[SqlLockedFamily | None]:
        if self._db.is_sqlite:
            return self._lock_family_sqlite(token_hash)
        return self._lock_family_postgresql(token_hash)

    @asynccontextmanager
    async def _lock_family_postgresql(
        self, token_hash: str
    ) -> AsyncIterator[SqlLockedFamily | None]:
        slots = self._refresh_slots.get()
        async with asyncio.timeout(self._db.pool_timeout):
            await slots.acquire()
        try:
            async with self._db.begin() as conn:
                found = await _find(conn, token_hash, for_update=True)
                if found is None:
                    yield None
                    return
                locked = SqlLockedFamily(*found)
                # The access token issued meanwhile is recorded in this transaction.
                async with self._joining_grant(locked.family.grant_id, conn):
                    yield locked
                # Reached only when the block raised nothing; an exception rolls everything back.
                await _write(conn, locked)
        finally:
            slots.release()

    @asynccontextmanager
    async def _lock_family_sqlite(self, token_hash: str) -> AsyncIterator[SqlLockedFamily | None]:
        async with self._family_lock.hold():
            async with self._db.begin() as conn:
                found = await _find(conn, token_hash, for_update=False)
            if found is None:
                yield None
                return
            locked = SqlLockedFamily(*found)
            yield locked
            if locked.pending is not None:
                async with self._db.write() as conn:
                    await _write(conn, locked)

    async def find_family(self, token_hash: str) -> RefreshFamily | None:
        async with self._db.begin() as conn:
            found = await _find(conn, token_hash, for_update=False)
        return None if found is None else found[0]


async def _find(
    conn: AsyncConnection, token_hash: str, *, for_update: bool
) -> tuple[RefreshFamily, int] | None:
    # One statement: the presented token's generation (never changes) with its family, whose row
    # alone is locked; a waiter gets the row as the holder committed it.
    query = sa.select(refresh_families, _PRESENTED_GENERATION).join_from(
        refresh_tokens, refresh_families, refresh_tokens.c.family_id == refresh_families.c.family_id
    )
    query = query.where(refresh_tokens.c.token_hash == token_hash)
    if for_update:
        query = query.with_for_update(of=refresh_families)
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    m = row._mapping
    return _family(m), m["presented_generation"]


# The columns a rotation or a revocation changes; the rest of a family never does.
_CHANGING = (
    "generation",
    "current_hash",
    "current_issued_at",
    "rotated_at",
    "replay",
    "replay_scopes",
    "revoked_at",
)


async def _write(conn: AsyncConnection, locked: SqlLockedFamily) -> None:
    new = locked.pending
    if new is None:
        return
    values = _values(new)
    await conn.execute(
        refresh_families.update()
        .where(refresh_families.c.family_id == new.family_id)
        .values({name: values[name] for name in _CHANGING})
    )
    if new.generation > locked.family.generation:
        await conn.execute(
            refresh_tokens.insert().values(
                token_hash=new.current_hash, family_id=new.family_id, generation=new.generation
            )
        )


def _values(family: RefreshFamily) -> dict[str, Any]:
    return {
        "family_id": family.family_id,
        "grant_id": family.grant_id,
        "client_id": family.client_id,
        "user_id": family.user_id,
        "scopes": list(family.scopes),
        "audiences": list(family.audiences),
        "auth_time": family.auth_time,
        "amr": list(family.amr),
        "created_at": family.created_at,
        "generation": family.generation,
        "current_hash": family.current_hash,
        "current_issued_at": family.current_issued_at,
        "rotated_at": family.rotated_at,
        "replay": family.replay,
        "replay_scopes": None if family.replay_scopes is None else list(family.replay_scopes),
        "revoked_at": family.revoked_at,
        "jkt": family.jkt,
    }


def _family(row: Any) -> RefreshFamily:
    replay = row["replay"]
    replay_scopes = row["replay_scopes"]
    return RefreshFamily(
        family_id=row["family_id"],
        grant_id=row["grant_id"],
        client_id=row["client_id"],
        user_id=row["user_id"],
        scopes=tuple(row["scopes"]),
        audiences=tuple(row["audiences"]),
        auth_time=row["auth_time"],
        amr=tuple(row["amr"]),
        created_at=row["created_at"],
        generation=row["generation"],
        current_hash=row["current_hash"],
        current_issued_at=row["current_issued_at"],
        rotated_at=row["rotated_at"],
        replay=None if replay is None else bytes(replay),
        replay_scopes=None if replay_scopes is None else tuple(replay_scopes),
        revoked_at=row["revoked_at"],
        jkt=row["jkt"],
    )
