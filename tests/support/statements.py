"""Counting the SQL a piece of work sends (SQLAlchemy engine events): statements, transactions
and rows written, so that tests can pin the database work of a grant (issue 14)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["StatementLog", "counting_statements"]

_WRITES = ("INSERT", "UPDATE", "DELETE")


@dataclass
class StatementLog:
    """What the engine ran: each statement's SQL (BEGIN excluded), transactions begun (a statement
    on an autocommit connection is one by itself), and the rows the INSERT/UPDATE/DELETE
    statements changed."""

    statements: list[str] = field(default_factory=list)
    transactions: int = 0
    rows_written: int = 0

    @property
    def count(self) -> int:
        return len(self.statements)

    def kinds(self) -> list[str]:
        """The first word of each statement (SELECT, INSERT, ...), in order."""
        return [sql.split(None, 1)[0].upper() for sql in self.statements]


def _autocommit(conn: Any) -> bool:
    return bool(conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT")


@contextlib.contextmanager
def counting_statements(engine: AsyncEngine) -> Iterator[StatementLog]:
    """Record the statements `engine` runs inside the block."""
    log = StatementLog()
    sync = engine.sync_engine

    def on_begin(conn: Any) -> None:
        if not _autocommit(conn):  # SQLAlchemy's begin on an autocommit connection sends nothing
            log.transactions += 1

    def after_execute(
        conn: Any, cursor: Any, statement: str, _params: Any, _context: Any, _many: bool
    ) -> None:
        sql = statement.strip()
        if sql.upper().startswith("BEGIN"):  # SQLite's explicit BEGIN (`database.py`)
            return
        log.statements.append(sql)
        if _autocommit(conn):  # a statement that is a transaction by itself
            log.transactions += 1
        if sql.upper().startswith(_WRITES) or " RETURNING " in sql.upper():
            log.rows_written += max(cursor.rowcount, 0)

    event.listen(sync, "begin", on_begin)
    event.listen(sync, "after_cursor_execute", after_execute)
    try:
        yield log
    finally:
        event.remove(sync, "after_cursor_execute", after_execute)
        event.remove(sync, "begin", on_begin)
