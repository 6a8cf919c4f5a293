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
from authgate.server.storage.database import DriverConnection
from authgate.server.storage.locks import LoopLocal
from authgate.server.storage.sql_base import (
    GRANT_LOCK_CLASS,
    JTI_CTES,
    DriverStatement,
    SqlBase,
    chained,
    execute,
    grant_lock_key,
    integrity_error,
)
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
        if not self._db.is_sqlite:
            listed = self._listing(family.grant_id)
            try:
                async with self._grant_write(family.grant_id) as conn:
                    variant = _with_listed(values, listed, family.grant_id)
                    await _CREATE_POSTGRESQL[variant].fetch(conn, values)
            except IntegrityError as exc:
                raise integrity_error(exc, "the refresh-token family or token") from None
            return
        if family.revoked_at is None:
            # The grant was revoked while this family was being issued (a replayed code): the
            # family is stored revoked, decided in the insert itself.
            values["revoked_at"] = sa.case(
                (self._revoked_marker(family.grant_id), family.created_at), else_=sa.null()
            )
        try:
            async with self._grant_write(family.grant_id) as conn:
                await execute(conn, refresh_families.insert().values(values))
                await execute(
                    conn,
                    refresh_tokens.insert().values(
                        token_hash=family.current_hash,
                        family_id=family.family_id,
                        generation=family.generation,
                    ),
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
            # On the driver's connection: the transaction's BEGIN is the checkout's ping.
            async with self._db.driver(begins=True) as conn:
                # The family locked, and the guard of its grant taken, in one statement.
                rows = await _LOCK_POSTGRESQL.fetch(conn, {"token_hash": token_hash})
                if not rows:
                    yield None
                    return
                m = rows[0]
                locked = SqlLockedFamily(_family(m), m["presented_generation"])
                # The access token issued meanwhile is recorded in this transaction.
                grant_id = locked.family.grant_id
                async with self._joining_grant(grant_id, conn, guarded=True) as listed:
                    yield locked
                    # Reached only when the block raised nothing; an exception rolls everything
                    # back. The JWT ids the refresh recorded go with the rotation.
                    await _write(conn, locked, listed)
                    await self._record_listed(conn, listed, grant_id)
        finally:
            slots.release()

    @asynccontextmanager
    async def _lock_family_sqlite(self, token_hash: str) -> AsyncIterator[SqlLockedFamily | None]:
        async with self._family_lock.hold():
            async with self._db.begin() as conn:
                found = await _find(conn, token_hash)
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
            found = await _find(conn, token_hash)
        return None if found is None else found[0]


async def _find(conn: AsyncConnection, token_hash: str) -> tuple[RefreshFamily, int] | None:
    # One statement: the presented token's generation (never changes) with its family (locked on
    # PostgreSQL by `_LOCK_POSTGRESQL` instead).
    query = sa.select(refresh_families, _PRESENTED_GENERATION).join_from(
        refresh_tokens, refresh_families, refresh_tokens.c.family_id == refresh_families.c.family_id
    )
    query = query.where(refresh_tokens.c.token_hash == token_hash)
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


async def _write(
    conn: AsyncConnection | DriverConnection,
    locked: SqlLockedFamily,
    listed: list[tuple[str, int]] | None = None,
) -> None:
    """Store the locked family's replacement; on PostgreSQL a rotation also records the first
    JWT id of `listed` (PostgreSQL: the one the refresh issued), in the same statement."""
    new = locked.pending
    if new is None:
        return
    values = _values(new)
    rotated = new.generation > locked.family.generation
    changed = {name: values[name] for name in _CHANGING}
    changed["family_id"] = new.family_id
    if isinstance(conn, DriverConnection):
        if not rotated:  # a revocation
            await _SAVE_POSTGRESQL.fetch(conn, changed)
            return
        # One round trip: the rotation, the new token's hash and the access token's record.
        variant = _with_listed(changed, listed, new.grant_id)
        await _ROTATE_POSTGRESQL[variant].fetch(conn, changed)
        return
    await conn.execute(
        refresh_families.update()
        .where(refresh_families.c.family_id == new.family_id)
        .values({name: values[name] for name in _CHANGING})
    )
    if rotated:
        await conn.execute(
            refresh_tokens.insert().values(
                token_hash=new.current_hash, family_id=new.family_id, generation=new.generation
            )
        )


# PostgreSQL's statements of the hot path, built once (none is built per call, each is compiled
# once), from the table's own column names and constants only; refresh_families' JSON and binary
# values are bound with the table's types.
_FAMILY_COLUMNS = [column.name for column in refresh_families.c]
_TYPED = {
    name: refresh_families.c[name].type for name in ("scopes", "audiences", "amr", "replay_scopes")
} | {"replay": refresh_families.c.replay.type}


def _bound(statement: str, names: Any) -> sa.TextClause:
    return sa.text(statement).bindparams(
        *(sa.bindparam(name, type_=_TYPED[name]) for name in names if name in _TYPED)
    )


# The presented token's generation (never changes) with its family, whose row alone is locked (a
# waiter gets the row as the holder committed it), with the grant guard (`SqlBase._guard_grant`)
# taken once the row is locked: the tokens the refresh records need no statement of their own
# for it. The outer select evaluates the lock function on the one locked row.
_LOCKED = (
    sa.select(refresh_families, _PRESENTED_GENERATION)
    .join_from(
        refresh_tokens, refresh_families, refresh_tokens.c.family_id == refresh_families.c.family_id
    )
    .where(refresh_tokens.c.token_hash == sa.bindparam("token_hash"))
    .with_for_update(of=refresh_families)
    .subquery("locked")
)
_LOCK_POSTGRESQL = DriverStatement(
    sa.select(
        _LOCKED,
        sa.func.pg_advisory_xact_lock_shared(
            sa.literal(GRANT_LOCK_CLASS, sa.Integer),
            sa.literal_column(grant_lock_key("locked.grant_id"), sa.Integer),
        ).label("guard"),
    )
)

_NEW_TOKEN = """INSERT INTO refresh_tokens (token_hash, family_id, generation)
  SELECT CAST(:current_hash AS VARCHAR), family_id, CAST(:generation AS INTEGER) FROM {}
  RETURNING 1"""
_ROTATION = (
    "UPDATE refresh_families SET "  # noqa: S608 - column names of the table, no input
    + ", ".join(f"{name} = :{name}" for name in _CHANGING)
    + " WHERE family_id = :family_id RETURNING family_id"
)
_FAMILY = (
    "INSERT INTO refresh_families ("  # noqa: S608 - column names of the table, no input
    + ", ".join(_FAMILY_COLUMNS)
    + ") VALUES ("
    + ", ".join(
        # stored revoked when its grant was revoked meanwhile (a replayed code), decided here
        "COALESCE(CAST(:revoked_at AS BIGINT), CASE WHEN EXISTS (SELECT 1 FROM revoked_grants "
        "WHERE grant_id = CAST(:grant_id AS VARCHAR)) THEN CAST(:created_at AS BIGINT) END)"
        if name == "revoked_at"
        else f":{name}"
        for name in _FAMILY_COLUMNS
    )
    + ") RETURNING family_id"
)
# One statement each, indexed by whether it also records the one JWT id the grant's transaction
# listed (`SqlBase._listing`): the rotation (the columns that change) and the new token's hash;
# a new family and its first token's hash.
# The hot statements run on the driver's connection (`DriverStatement`): the lock and the
# rotation (a refresh's two statements), a new family (a code redemption's).
_ROTATE_POSTGRESQL = tuple(
    DriverStatement(
        _bound(
            chained(("rotated", _ROTATION), ("token", _NEW_TOKEN.format("rotated")), *jti),
            _CHANGING,
        )
    )
    for jti in ((), JTI_CTES)
)
_CREATE_POSTGRESQL = tuple(
    DriverStatement(
        _bound(
            chained(("family", _FAMILY), ("token", _NEW_TOKEN.format("family")), *jti),
            _FAMILY_COLUMNS,
        )
    )
    for jti in ((), JTI_CTES)
)


# A family's changed columns without a rotation (a revocation).
_SAVE_POSTGRESQL = DriverStatement(_bound(_ROTATION.replace(" RETURNING family_id", ""), _CHANGING))


def _with_listed(
    values: dict[str, Any], listed: list[tuple[str, int]] | None, grant_id: str
) -> int:
    """Add the first listed JWT id to a statement's `values` (taking it off the list); 1 if
    there was one, else 0: the index of the statement variant."""
    if not listed:
        return 0
    jti, expires_at = listed.pop(0)
    values.update(jti=jti, expires_at=expires_at, grant_id=grant_id)
    return 1


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
