"""SQL implementation of `ThrottleStore` (contract in `storage.protocols`): throttle counters
shared by every process, each update atomic (RFC 6749 §10.10, RFC 8628 §5.1-§5.2 brute-force
limits).

PostgreSQL reads the counter `FOR UPDATE`; when there is none yet, the first of several racing
inserts wins (`ON CONFLICT DO NOTHING`) and the others read its row and apply their change again.
SQLite runs each update in a write transaction, which already excludes every other writer.
Keys longer than the column, or holding what a database cannot store (NUL, lone surrogates: they
come from what people type), are stored under their SHA-256, which keeps them distinct.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from authgate.server.models import ThrottleState
from authgate.server.storage.sql_base import SqlBase, storable
from authgate.server.storage.tables import throttle

__all__ = ["SqlThrottle"]

_MAX_KEY = 255
_ATTEMPTS = 3  # a row inserted and deleted between our reads is the only reason to go round again

Change = Callable[[ThrottleState | None], tuple[int | None, ThrottleState | None]]


def _stored_key(key: str) -> str:
    # Keys are "account:…" or "address:…", so a hashed key never equals a stored plain one.
    if len(key) <= _MAX_KEY and storable(key):
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class SqlThrottle(SqlBase):
    """Throttle counters in SQL."""

    async def update_throttle(self, key: str, change: Change) -> int | None:
        key = _stored_key(key)
        where = throttle.c.key == key
        async with self._db.write() as conn:
            for _ in range(_ATTEMPTS):
                query = throttle.select().where(where)
                if not self._db.is_sqlite:
                    query = query.with_for_update()
                row = (await conn.execute(query)).first()
                state = (
                    None
                    if row is None
                    else ThrottleState(row.failures, row.last_failure, row.blocked_until)
                )
                result, new = change(state)
                if new is None:
                    if row is not None:
                        await conn.execute(throttle.delete().where(where))
                    return result
                values = {
                    "failures": new.failures,
                    "last_failure": new.last_failure,
                    "blocked_until": new.blocked_until,
                }
                if row is not None:
                    await conn.execute(throttle.update().where(where).values(values))
                    return result
                inserted = await conn.execute(
                    self._insert(throttle)
                    .values(key=key, **values)
                    .on_conflict_do_nothing(index_elements=["key"])
                )
                if inserted.rowcount:
                    return result
        raise RuntimeError("throttle counter kept changing under a concurrent update")

    async def clear_throttle(self, key: str) -> None:
        async with self._db.write() as conn:
            await conn.execute(throttle.delete().where(throttle.c.key == _stored_key(key)))
