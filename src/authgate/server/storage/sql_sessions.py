"""SQL implementation of `SessionStore` (contract in `storage.protocols`): browser sessions under
the keyed hash of their cookie, so logout and expiry are real (OWASP Session Management)."""

from __future__ import annotations

from typing import Any

from authgate.server.models import Session
from authgate.server.storage.sql_base import SqlBase
from authgate.server.storage.tables import sessions

__all__ = ["SqlSessions"]


class SqlSessions(SqlBase):
    """Sessions in SQL."""

    async def get_session(self, session_hash: str) -> Session | None:
        async with self._db.begin() as conn:
            row = (
                await conn.execute(sessions.select().where(sessions.c.session_hash == session_hash))
            ).first()
        if row is None:
            return None
        m: Any = row._mapping
        return Session(
            session_hash=m["session_hash"],
            user_id=m["user_id"],
            auth_time=m["auth_time"],
            amr=tuple(m["amr"]),
            created_at=m["created_at"],
            last_seen=m["last_seen"],
        )

    async def save_session(self, session: Session) -> None:
        statement = self._insert(sessions).values(
            session_hash=session.session_hash,
            user_id=session.user_id,
            auth_time=session.auth_time,
            amr=list(session.amr),
            created_at=session.created_at,
            last_seen=session.last_seen,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["session_hash"],
            set_={
                name: statement.excluded[name]
                for name in ("user_id", "auth_time", "amr", "created_at", "last_seen")
            },
        )
        async with self._db.write() as conn:
            await conn.execute(statement)

    async def delete_session(self, session_hash: str) -> None:
        async with self._db.write() as conn:
            await conn.execute(sessions.delete().where(sessions.c.session_hash == session_hash))

    async def delete_user_sessions(self, user_id: str) -> int:
        async with self._db.write() as conn:
            result = await conn.execute(sessions.delete().where(sessions.c.user_id == user_id))
        return result.rowcount or 0
