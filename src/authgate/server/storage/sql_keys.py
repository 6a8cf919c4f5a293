"""SQL implementation of `SigningKeyStore` and its schedule lock (see the contracts)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from authgate.server.models import SigningKeyRecord
from authgate.server.storage.database import Database
from authgate.server.storage.protocols import AlreadyExistsError, KeyScheduleSession
from authgate.server.storage.tables import signing_keys

__all__ = ["SqlKeyScheduleSession", "SqlSigningKeys"]

_ORDER = (signing_keys.c.activate_at, signing_keys.c.kid)


class SqlKeyScheduleSession:
    """The signing-key table inside the transaction that holds the database lock."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def list_signing_keys(self) -> list[SigningKeyRecord]:
        rows = await self._conn.execute(signing_keys.select().order_by(*_ORDER))
        return [_record(row._mapping) for row in rows]

    async def insert_signing_key(self, record: SigningKeyRecord) -> None:
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(
                    signing_keys.insert().values(
                        kid=record.kid,
                        alg=record.alg,
                        public_jwk=dict(record.public_jwk),
                        sealed_private_key=record.sealed_private_key,
                        created_at=record.created_at,
                        activate_at=record.activate_at,
                        retire_at=record.retire_at,
                        remove_at=record.remove_at,
                    )
                )
        except IntegrityError:
            raise AlreadyExistsError(f"a signing key with kid {record.kid!r} exists") from None

    async def update_key_schedule(
        self, kid: str, *, activate_at: int, retire_at: int | None, remove_at: int | None
    ) -> None:
        await self._conn.execute(
            signing_keys.update()
            .where(signing_keys.c.kid == kid)
            .values(activate_at=activate_at, retire_at=retire_at, remove_at=remove_at)
        )

    async def delete_signing_key(self, kid: str) -> None:
        await self._conn.execute(signing_keys.delete().where(signing_keys.c.kid == kid))


class SqlSigningKeys:
    """Signing keys in SQL."""

    _db: Database

    async def list_signing_keys(self) -> list[SigningKeyRecord]:
        async with self._db.begin() as conn:
            rows = await conn.execute(signing_keys.select().order_by(*_ORDER))
            return [_record(row._mapping) for row in rows]

    @asynccontextmanager
    async def key_schedule_lock(self) -> AsyncIterator[KeyScheduleSession]:
        async with self._db.exclusive() as conn:
            yield SqlKeyScheduleSession(conn)


def _record(row: Any) -> SigningKeyRecord:
    return SigningKeyRecord(
        kid=row["kid"],
        alg=row["alg"],
        public_jwk=row["public_jwk"],
        sealed_private_key=bytes(row["sealed_private_key"]),
        created_at=row["created_at"],
        activate_at=row["activate_at"],
        retire_at=row["retire_at"],
        remove_at=row["remove_at"],
    )
