"""`describe_database_error`: which database and why, in words, never the password, bounded."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError, OperationalError

from authgate.server.storage.errors import (
    DatabaseUnavailableError,
    check_sqlite_file,
    describe_database_error,
    where,
)

_URL = "postgresql://authgate:hunter2@db.internal:6543/auth"


def _wrapped(driver_error: Exception) -> DBAPIError:
    return DBAPIError("SELECT secret_column FROM t", {"p": "hunter2"}, driver_error)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ConnectionRefusedError(111, "Connect call failed"), "connection refused"),
        (socket.gaierror(-2, "Name or service not known"), "name not resolved"),
        (TimeoutError(), "no answer in time (connection or statement timed out)"),
        (_wrapped(asyncpg.InvalidCatalogNameError('database "auth" does not exist')),
         "database does not exist"),
        (_wrapped(asyncpg.InvalidPasswordError('password authentication failed for user "a"')),
         "authentication failed (wrong password)"),
        (_wrapped(asyncpg.InvalidAuthorizationSpecificationError('role "a" does not exist')),
         "authentication failed (the role is not allowed or does not exist)"),
        (_wrapped(asyncpg.TooManyConnectionsError("sorry, too many clients already")),
         "too many connections"),
        (ConnectionError('PostgreSQL server at "db:5432" rejected SSL upgrade'),
         'PostgreSQL server at "db:5432" rejected SSL upgrade'),
    ],
)  # fmt: skip
def test_postgresql_failures_in_words(error: BaseException, reason: str) -> None:
    text = describe_database_error(error, _URL)
    assert text == f'database "auth" on db.internal:6543: {reason}'
    assert "hunter2" not in text
    assert "SELECT" not in text
    assert type(error).__name__ not in text


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("unable to open database file", "cannot open the file"),
        ("attempt to write a readonly database", "the file is read-only for this user"),
        ("database is locked", "the file is locked by another process"),
    ],
)
def test_sqlite_failures_in_words(message: str, reason: str) -> None:
    error = OperationalError("PRAGMA x", None, sqlite3.OperationalError(message))
    text = describe_database_error(error, "sqlite:////var/lib/authgate/a.db")
    assert text.startswith(f"SQLite database /var/lib/authgate/a.db: {reason}")


def test_an_unknown_driver_message_is_one_bounded_printable_line() -> None:
    error = _wrapped(asyncpg.PostgresError("first line \x1b[31m" + "x" * 1000 + "\nsecond line"))
    text = describe_database_error(error, _URL)
    assert "\n" not in text
    assert "\x1b" not in text
    assert "second line" not in text
    assert len(text) < 300


def test_where_never_shows_credentials() -> None:
    assert where(_URL) == 'database "auth" on db.internal:6543'
    assert where("postgresql://a:b@[2001:db8::1]/x") == 'database "x" on [2001:db8::1]:5432'
    assert where("postgres://a:hunter2@/x?host=/run/pg") == 'database "x" on /run/pg:5432'
    assert "hunter2" not in where("not a url hunter2")
    assert describe_database_error(ConnectionRefusedError(), None) == (
        "database unavailable: connection refused"
    )


def test_a_sqlite_file_in_a_missing_directory_is_refused_before_connecting(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "authgate.db"
    with pytest.raises(DatabaseUnavailableError, match=r"cannot open the file") as caught:
        check_sqlite_file(f"sqlite:///{path}")
    assert str(caught.value).startswith(f"SQLite database {path}:")


@pytest.mark.parametrize("name", ["authgate.db", None])
def test_sqlite_files_that_can_be_opened_pass(tmp_path: Path, name: str | None) -> None:
    path = tmp_path / "authgate.db"
    if name is None:
        path.write_bytes(b"")  # an existing file: SQLite itself says what is wrong with it
    check_sqlite_file(f"sqlite+aiosqlite:///{path}")
    check_sqlite_file("sqlite+aiosqlite:///:memory:")
