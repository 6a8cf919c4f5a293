"""SQL implementation of `ConsentStore` (contract in `storage.protocols`): remembered consent per
user and client, replaced as a whole, revocable by `authgate consent revoke`."""

from __future__ import annotations

from typing import Any

from authgate.server.models import ConsentGrant
from authgate.server.storage.sql_base import SqlBase
from authgate.server.storage.tables import consents

__all__ = ["SqlConsents"]


class SqlConsents(SqlBase):
    """Consent grants in SQL."""

    async def get_consent(self, user_id: str, client_id: str) -> ConsentGrant | None:
        async with self._db.begin() as conn:
            row = (
                await conn.execute(
                    consents.select().where(
                        consents.c.user_id == user_id, consents.c.client_id == client_id
                    )
                )
            ).first()
        return None if row is None else _grant(row._mapping)

    async def save_consent(self, grant: ConsentGrant) -> None:
        statement = self._insert(consents).values(
            user_id=grant.user_id,
            client_id=grant.client_id,
            scopes=sorted(grant.scopes),
            audiences=sorted(grant.audiences),
            granted_at=grant.granted_at,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["user_id", "client_id"],
            set_={
                "scopes": statement.excluded.scopes,
                "audiences": statement.excluded.audiences,
                "granted_at": statement.excluded.granted_at,
            },
        )
        async with self._db.write() as conn:
            await conn.execute(statement)

    async def list_consents(self, user_id: str | None = None) -> list[ConsentGrant]:
        query = consents.select().order_by(consents.c.user_id, consents.c.client_id)
        if user_id is not None:
            query = query.where(consents.c.user_id == user_id)
        async with self._db.begin() as conn:
            return [_grant(row._mapping) for row in await conn.execute(query)]

    async def revoke_consent(self, user_id: str, client_id: str) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(
                consents.delete().where(
                    consents.c.user_id == user_id, consents.c.client_id == client_id
                )
            )
        return bool(result.rowcount)


def _grant(row: Any) -> ConsentGrant:
    return ConsentGrant(
        user_id=row["user_id"],
        client_id=row["client_id"],
        scopes=frozenset(row["scopes"]),
        audiences=frozenset(row["audiences"]),
        granted_at=row["granted_at"],
    )
