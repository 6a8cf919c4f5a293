"""SQL implementation of the token-related roles: opaque tokens, the JWT revocation list,
single-use values and settings (see the contracts in `protocols`)."""

from __future__ import annotations

import sqlalchemy as sa

from authgate.server.models import OpaqueAccessToken
from authgate.server.storage.sql_base import SqlBase, execute
from authgate.server.storage.tables import opaque_access_tokens, revoked_jwts, settings, used_values

__all__ = ["SqlTokens"]


class SqlTokens(SqlBase):
    """Token state in SQL."""

    async def save_opaque_token(self, record: OpaqueAccessToken) -> None:
        values = {
            "token_hash": record.token_hash,
            "jti": record.jti,
            "client_id": record.client_id,
            "subject": record.subject,
            "audience": record.audience,
            "scope": record.scope,
            "roles": list(record.roles),
            "issued_at": record.issued_at,
            "expires_at": record.expires_at,
            "revoked": record.revoked,
            "grant_id": record.grant_id,
            "jkt": record.jkt,
        }
        if record.grant_id is None:
            async with self._db.write() as conn:
                await conn.execute(opaque_access_tokens.insert().values(values))
            return
        if not record.revoked:
            # Issued while its grant was being revoked (see `SqlGrants`): born revoked, decided
            # in the insert itself.
            values["revoked"] = self._revoked_marker(record.grant_id)
        async with self._grant_write(record.grant_id) as conn:
            await execute(conn, opaque_access_tokens.insert().values(values))

    async def get_opaque_token(self, token_hash: str) -> OpaqueAccessToken | None:
        async with self._db.begin() as conn:
            row = (
                await conn.execute(
                    opaque_access_tokens.select().where(
                        opaque_access_tokens.c.token_hash == token_hash
                    )
                )
            ).first()
        if row is None:
            return None
        m = row._mapping
        return OpaqueAccessToken(
            token_hash=m["token_hash"],
            jti=m["jti"],
            client_id=m["client_id"],
            subject=m["subject"],
            audience=m["audience"],
            scope=m["scope"],
            roles=tuple(m["roles"]),
            issued_at=m["issued_at"],
            expires_at=m["expires_at"],
            revoked=bool(m["revoked"]),
            grant_id=m["grant_id"],
            jkt=m["jkt"],
        )

    async def revoke_opaque_token(self, token_hash: str) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(
                opaque_access_tokens.update()
                .where(opaque_access_tokens.c.token_hash == token_hash)
                .values(revoked=True)
            )
        return bool(result.rowcount)

    async def revoke_jti(self, jti: str, expires_at: int) -> None:
        statement = self._insert(revoked_jwts).values(jti=jti, expires_at=expires_at)
        async with self._db.write() as conn:
            await conn.execute(statement.on_conflict_do_nothing(index_elements=["jti"]))

    async def is_jti_revoked(self, jti: str) -> bool:
        async with self._db.begin() as conn:
            row = await conn.execute(sa.select(revoked_jwts.c.jti).where(revoked_jwts.c.jti == jti))
            return row.first() is not None

    async def consume_once(self, namespace: str, value: str, expires_at: int, now: int) -> bool:
        statement = self._insert(used_values).values(
            namespace=namespace, value=value, expires_at=expires_at
        )
        # One statement, so the database decides the race: a fresh row, or an expired one taken
        # over, counts as the first use; a live row means the value was already used.
        statement = statement.on_conflict_do_update(
            index_elements=["namespace", "value"],
            set_={"expires_at": statement.excluded.expires_at},
            where=used_values.c.expires_at <= now,
        )
        async with self._db.write() as conn:
            result = await conn.execute(statement)
        return bool(result.rowcount)

    async def get_or_set_setting(self, name: str, value: str) -> str:
        statement = self._insert(settings).values(name=name, value=value)
        async with self._db.write() as conn:
            await conn.execute(statement.on_conflict_do_nothing(index_elements=["name"]))
            row = await conn.execute(sa.select(settings.c.value).where(settings.c.name == name))
            return str(row.scalar_one())
