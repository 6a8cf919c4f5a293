"""SQL implementation of `AuditStore` (contract in `storage.protocols`): the audit trail, one row
per event, numbered by the database in insertion order."""

from __future__ import annotations

import sqlalchemy as sa

from authgate.server.models import AuditEvent
from authgate.server.storage.sql_base import SqlBase
from authgate.server.storage.tables import audit_events

__all__ = ["SqlAudit"]


class SqlAudit(SqlBase):
    """The audit trail in SQL."""

    async def append_audit_event(self, event: AuditEvent) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                audit_events.insert().values(
                    at=event.at,
                    kind=event.kind,
                    actor=event.actor,
                    subject=event.subject,
                    details=dict(event.details),
                )
            )

    async def list_audit_events(self, since: int, limit: int) -> list[AuditEvent]:
        newest = (
            sa.select(audit_events)
            .where(audit_events.c.at >= since)
            .order_by(audit_events.c.event_id.desc())
            .limit(limit)
        )
        async with self._db.begin() as conn:
            rows = (await conn.execute(newest)).mappings().all()
        return [
            AuditEvent(
                at=row["at"],
                kind=row["kind"],
                actor=row["actor"],
                subject=row["subject"],
                details=row["details"],
                event_id=row["event_id"],
            )
            for row in reversed(rows)
        ]
