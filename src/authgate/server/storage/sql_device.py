"""SQL implementation of `DeviceAuthorizationStore` (contract in `storage.protocols`; RFC 8628
§3.4-§3.5 polling, decided by compare-and-set on `version`)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from authgate.server.models import DeviceAuthorization
from authgate.server.storage.sql_base import SqlBase, integrity_error
from authgate.server.storage.tables import device_authorizations

__all__ = ["DEVICE_MEMORY", "SqlDeviceAuthorizations"]

# An expired device authorization is kept this long, so late polls hear `expired_token`.
DEVICE_MEMORY = 3600

_table = device_authorizations


class SqlDeviceAuthorizations(SqlBase):
    """Device authorizations in SQL."""

    async def create_device_authorization(self, record: DeviceAuthorization) -> None:
        try:
            async with self._db.write() as conn:
                # An expired record does not keep its user code from being drawn again.
                await conn.execute(
                    _table.delete().where(
                        _table.c.user_code_hash == record.user_code_hash,
                        _table.c.expires_at <= record.created_at,
                    )
                )
                await conn.execute(_table.insert().values(_values(record)))
        except IntegrityError as exc:
            raise integrity_error(exc, "a device authorization with this code") from None

    async def get_device_authorization(self, device_code_hash: str) -> DeviceAuthorization | None:
        return await self._one_device(_table.c.device_code_hash == device_code_hash)

    async def find_device_authorization(self, user_code_hash: str) -> DeviceAuthorization | None:
        return await self._one_device(_table.c.user_code_hash == user_code_hash)

    async def _one_device(self, condition: Any) -> DeviceAuthorization | None:
        async with self._db.begin() as conn:
            row = (await conn.execute(_table.select().where(condition))).first()
        return None if row is None else _record(row._mapping)

    async def count_pending_device_authorizations(self, now: int) -> int:
        query = (
            sa.select(sa.func.count())
            .select_from(_table)
            .where(_table.c.expires_at > now, _table.c.status == "pending")
        )
        async with self._db.begin() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def replace_device_authorization(
        self, old: DeviceAuthorization, new: DeviceAuthorization
    ) -> bool:
        if new.device_code_hash != old.device_code_hash:
            raise ValueError("a device authorization can only be replaced by itself")
        values = _values(new)
        del values["device_code_hash"]
        async with self._db.write() as conn:
            result = await conn.execute(
                _table.update()
                .where(_table.c.device_code_hash == old.device_code_hash)
                .where(_table.c.version == old.version)
                .values(values)
            )
        return bool(result.rowcount)


def _values(record: DeviceAuthorization) -> dict[str, Any]:
    return {
        "device_code_hash": record.device_code_hash,
        "user_code_hash": record.user_code_hash,
        "grant_id": record.grant_id,
        "client_id": record.client_id,
        "scopes": list(record.scopes),
        "audiences": list(record.audiences),
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "interval": record.interval,
        "status": record.status,
        "last_polled_at": record.last_polled_at,
        "user_id": record.user_id,
        "auth_time": record.auth_time,
        "amr": list(record.amr),
        "version": record.version,
    }


def _record(row: Any) -> DeviceAuthorization:
    return DeviceAuthorization(
        device_code_hash=row["device_code_hash"],
        user_code_hash=row["user_code_hash"],
        grant_id=row["grant_id"],
        client_id=row["client_id"],
        scopes=tuple(row["scopes"]),
        audiences=tuple(row["audiences"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        interval=row["interval"],
        status=row["status"],
        last_polled_at=row["last_polled_at"],
        user_id=row["user_id"],
        auth_time=row["auth_time"],
        amr=tuple(row["amr"]),
        version=row["version"],
    )
