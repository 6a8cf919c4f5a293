"""SQL implementation of `InitialAccessTokenStore` (see its contract)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from authgate.server.models import InitialAccessToken
from authgate.server.storage.protocols import AlreadyExistsError
from authgate.server.storage.sql_base import SqlBase, storable
from authgate.server.storage.tables import initial_access_tokens

__all__ = ["SqlInitialAccessTokens"]

_t = initial_access_tokens


class SqlInitialAccessTokens(SqlBase):
    """Initial access tokens in SQL."""

    async def create_initial_access_token(self, token: InitialAccessToken) -> None:
        try:
            async with self._db.write() as conn:
                await conn.execute(
                    _t.insert().values(
                        token_id=token.token_id,
                        token_hash=token.token_hash,
                        created_at=token.created_at,
                        expires_at=token.expires_at,
                        max_uses=token.max_uses,
                        uses=token.uses,
                        revoked_at=token.revoked_at,
                    )
                )
        except IntegrityError:
            raise AlreadyExistsError(f"an initial access token {token.token_id!r} exists") from None

    async def list_initial_access_tokens(self) -> list[InitialAccessToken]:
        async with self._db.begin() as conn:
            rows = await conn.execute(_t.select().order_by(_t.c.created_at, _t.c.token_id))
            return [_token(row._mapping) for row in rows]

    async def find_initial_access_token(self, token_hash: str) -> InitialAccessToken | None:
        if not storable(token_hash):
            return None
        async with self._db.begin() as conn:
            row = (await conn.execute(_t.select().where(_t.c.token_hash == token_hash))).first()
        return _token(row._mapping) if row else None

    async def revoke_initial_access_token(self, token_id: str, now: int) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(
                _t.update()
                .where(_t.c.token_id == token_id, _t.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        return bool(result.rowcount)

    async def use_initial_access_token(
        self, token_hash: str, now: int
    ) -> InitialAccessToken | None:
        if not storable(token_hash):
            return None
        async with self._db.write() as conn:
            # One conditional UPDATE decides: concurrent callers cannot both take the last use.
            result = await conn.execute(
                _t.update()
                .where(
                    _t.c.token_hash == token_hash,
                    _t.c.revoked_at.is_(None),
                    sa.or_(_t.c.expires_at.is_(None), _t.c.expires_at > now),
                    sa.or_(_t.c.max_uses.is_(None), _t.c.uses < _t.c.max_uses),
                )
                .values(uses=_t.c.uses + 1)
            )
            if not result.rowcount:
                return None
            row = (await conn.execute(_t.select().where(_t.c.token_hash == token_hash))).first()
        if row is None:  # pragma: no cover - the row was just updated in this transaction
            return None
        token = _token(row._mapping)
        return replace(token, uses=token.uses - 1)


def _token(row: Any) -> InitialAccessToken:
    return InitialAccessToken(
        token_id=row["token_id"],
        token_hash=row["token_hash"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        max_uses=row["max_uses"],
        uses=row["uses"],
        revoked_at=row["revoked_at"],
    )
