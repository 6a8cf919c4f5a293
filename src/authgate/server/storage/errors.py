"""Why the database could not be used, in words: which database (host, port and name, or the
SQLite file; never the password) and the reason (`connection refused`, `name not resolved`,
`database does not exist`, ...), for the command line and start-up.

`describe_database_error` is the one translation; `database_errors` wraps a block so that a
driver error leaves it as a `DatabaseUnavailableError` carrying that sentence.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

__all__ = [
    "DatabaseUnavailableError",
    "check_sqlite_file",
    "database_errors",
    "describe_database_error",
    "where",
]

_MAX_DETAIL = 200
# PostgreSQL error codes (SQLSTATE, PostgreSQL manual appendix A) that a start-up can meet.
_SQLSTATES = {
    "3D000": "database does not exist",
    "28000": "authentication failed (the role is not allowed or does not exist)",
    "28P01": "authentication failed (wrong password)",
    "57P03": "the server is starting up or shutting down",
    "53300": "too many connections",
    "42501": "permission denied",
}
_SQLITE = {
    "unable to open database file": (
        "cannot open the file (does its directory exist, and may this user write there?)"
    ),
    "attempt to write a readonly database": "the file is read-only for this user",
    "database is locked": "the file is locked by another process",
    "file is not a database": "the file is not a SQLite database",
}


class DatabaseUnavailableError(Exception):
    """The configured database could not be used; `str()` says which one and why."""


def where(url: str) -> str:
    """The database of `url` without credentials: `database "auth" on db:5432`, or the file."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "the database (its URL is malformed)"
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite database {parsed.database or ':memory:'}"
    socket_dir = parsed.query.get("host")  # `?host=/run/postgresql`: a Unix socket
    host = parsed.host or (socket_dir if isinstance(socket_dir, str) else None) or "localhost"
    shown = f"[{host}]" if ":" in host else host
    return f'database "{parsed.database or parsed.username or ""}" on {shown}:{parsed.port or 5432}'


def check_sqlite_file(url: str) -> None:
    """Raise `DatabaseUnavailableError` when the SQLite file of `url` cannot be opened, before any
    connection is tried: aiosqlite's failed connect leaves its worker thread posting to the event
    loop after the loop has closed, which prints a thread traceback after the one-line error."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.exists():
        return  # SQLite says what is wrong with an existing file once it reads it
    parent = path.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        reason = _SQLITE["unable to open database file"]
        raise DatabaseUnavailableError(f"{where(url)}: {reason}")


def describe_database_error(exc: BaseException, url: str | None) -> str:
    """`exc`, met while connecting to or using `url`, as one line: where, then why."""
    reason = _reason(exc)
    return f"{where(url)}: {reason}" if url else f"database unavailable: {reason}"


@asynccontextmanager
async def database_errors(url: str) -> AsyncIterator[None]:
    """Driver and connection errors raised inside become `DatabaseUnavailableError`."""
    try:
        yield
    except (DBAPIError, OSError) as exc:
        raise DatabaseUnavailableError(describe_database_error(exc, url)) from exc


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)  # SQLAlchemy's wrapper keeps the driver's error
        current = orig if isinstance(orig, BaseException) else current.__cause__


def _reason(exc: BaseException) -> str:
    chain = list(_chain(exc))
    for error in chain:
        if isinstance(error, socket.gaierror):  # before OSError: it is one
            return "name not resolved"
        if isinstance(error, ConnectionRefusedError):
            return "connection refused"
        if isinstance(error, TimeoutError):
            return "no answer in time (connection or statement timed out)"
        state = getattr(error, "sqlstate", None)
        if isinstance(state, str) and state in _SQLSTATES:
            return _SQLSTATES[state]
        if isinstance(error, sqlite3.Error):
            text = str(error)
            return _SQLITE.get(text, _detail(text))
        if isinstance(error, OSError):
            return _detail(error.strerror or str(error)) or "connection failed"
    last = chain[-1]
    return _detail(str(last)) or "failed"


def _detail(text: str) -> str:
    """A driver's own message, first line only, printable and bounded (no SQL, no URL)."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = "".join(ch if ch.isprintable() else "?" for ch in line)
    return line[:_MAX_DETAIL]
