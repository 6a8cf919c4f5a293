"""SQL implementation of `MaintenanceStore`: deleting the records that no longer mean anything.

Each table is purged in its own short transaction, so a purge never holds SQLite's write lock for
long. Codes and device authorizations are kept an hour past their expiry (a late replay or poll
is then still recognised), revoked grants a day, the rest until their lifetime has passed.
"""

from __future__ import annotations

import sqlalchemy as sa

from authgate.server.storage.retention import Retention
from authgate.server.storage.sql_base import SqlBase
from authgate.server.storage.sql_codes import CODE_MEMORY
from authgate.server.storage.sql_device import DEVICE_MEMORY
from authgate.server.storage.tables import (
    audit_events,
    authorization_codes,
    clients,
    device_authorizations,
    grant_tokens,
    opaque_access_tokens,
    pushed_requests,
    refresh_families,
    revoked_grants,
    revoked_jwts,
    sessions,
    throttle,
    used_values,
)

__all__ = ["SqlMaintenance"]

_REVOKED_FAMILY_MEMORY = 86400  # a revoked family still answers "revoked" for a day


class SqlMaintenance(SqlBase):
    """Purging in SQL."""

    _retention: Retention

    async def purge_expired(self, now: int) -> int:
        keep = self._retention
        conditions: list[tuple[sa.Table, sa.ColumnElement[bool]]] = [
            (opaque_access_tokens, opaque_access_tokens.c.expires_at <= now),
            (revoked_jwts, revoked_jwts.c.expires_at <= now),
            (used_values, used_values.c.expires_at <= now),
            (grant_tokens, grant_tokens.c.expires_at <= now),
            (revoked_grants, revoked_grants.c.expires_at <= now),
            (authorization_codes, authorization_codes.c.expires_at <= now - CODE_MEMORY),
            (device_authorizations, device_authorizations.c.expires_at <= now - DEVICE_MEMORY),
            # Expired pushed requests can no longer be used: nothing to remember (RFC 9126 §2.2).
            (pushed_requests, pushed_requests.c.expires_at <= now),
            (
                refresh_families,
                sa.or_(
                    refresh_families.c.created_at <= now - keep.refresh_absolute,
                    refresh_families.c.current_issued_at <= now - keep.refresh_idle,
                    refresh_families.c.revoked_at <= now - _REVOKED_FAMILY_MEMORY,
                ),
            ),
            (
                sessions,
                sa.or_(
                    sessions.c.last_seen <= now - keep.session_idle,
                    sessions.c.created_at <= now - keep.session_absolute,
                ),
            ),
            (throttle, throttle.c.last_failure <= now - keep.throttle_memory),
            (audit_events, audit_events.c.at <= now - keep.audit),
        ]
        if keep.unused_registered_client > 0:
            # A client registered at the endpoint (open registration lets anyone add one) and
            # never used since is removed after the configured time; CLI clients never are.
            conditions.append(
                (
                    clients,
                    sa.and_(
                        clients.c.origin == "registration",
                        clients.c.first_used_at.is_(None),
                        clients.c.created_at <= now - keep.unused_registered_client,
                    ),
                )
            )
        removed = 0
        for table, condition in conditions:
            async with self._db.write() as conn:
                result = await conn.execute(table.delete().where(condition))
            removed += result.rowcount or 0
        return removed
