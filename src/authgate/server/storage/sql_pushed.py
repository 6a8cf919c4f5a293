"""SQL implementation of `PushedRequestStore` (contract in `storage.protocols`; RFC 9126 §2.2 and
§4: a `request_uri` is used once, only by the client that pushed it, before it expires)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from authgate.server.models import PushedRequest
from authgate.server.storage.sql_base import SqlBase, integrity_error
from authgate.server.storage.tables import pushed_requests

__all__ = ["SqlPushedRequests"]


class SqlPushedRequests(SqlBase):
    """Pushed authorization requests in SQL."""

    async def save_pushed_request(self, request: PushedRequest) -> None:
        try:
            async with self._db.write() as conn:
                await conn.execute(
                    pushed_requests.insert().values(
                        uri_hash=request.uri_hash,
                        client_id=request.client_id,
                        params=[list(pair) for pair in request.params],
                        created_at=request.created_at,
                        expires_at=request.expires_at,
                        used_at=None,
                    )
                )
        except IntegrityError as exc:
            raise integrity_error(exc, "the pushed request") from None

    async def use_pushed_request(
        self, uri_hash: str, client_id: str, now: int
    ) -> PushedRequest | None:
        table = pushed_requests
        async with self._db.write() as conn:
            # The conditional update decides the race: only one caller finds used_at empty.
            marked = await conn.execute(
                table.update()
                .where(table.c.uri_hash == uri_hash)
                .where(table.c.client_id == client_id)
                .where(table.c.used_at.is_(None))
                .where(table.c.expires_at > now)
                .values(used_at=now)
            )
            if not marked.rowcount:
                return None
            row = (await conn.execute(table.select().where(table.c.uri_hash == uri_hash))).one()
        return PushedRequest(
            uri_hash=row.uri_hash,
            client_id=row.client_id,
            params=tuple((str(name), str(value)) for name, value in row.params),
            created_at=row.created_at,
            expires_at=row.expires_at,
        )
