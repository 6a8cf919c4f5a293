"""`authgate serve` start-up failures, each in a real subprocess: exactly one line on stderr that
names what failed and why, never a traceback, and the exit status docs/cli.md documents."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from authgate.cli.exit_codes import ExitCode

AUTHGATE = str(Path(sys.executable).parent / "authgate")
_SECRET = "s" * 43


def _environment(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHGATE_")}
    return {**env, "AUTHGATE_SECRET_KEY": _SECRET, **variables}


def _serve(cwd: Path, env: dict[str, str], *args: str) -> tuple[int, list[str]]:
    done = subprocess.run(
        [AUTHGATE, "serve", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert _SECRET not in done.stderr + done.stdout
    return done.returncode, done.stderr.splitlines()


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port that this test listens on, so that the server cannot."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A loopback port that nothing listens on (bound without listening, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_taken_port_is_one_line(tmp_path: Path, held_port: int) -> None:
    status, lines = _serve(tmp_path, _environment(), "--port", str(held_port))
    assert status == ExitCode.LISTEN
    assert lines == [f"Error: cannot listen on 127.0.0.1:{held_port}: address already in use"]
    assert not (tmp_path / "authgate.db").exists()  # refused before touching the database


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("missing", "cannot read the configuration file: No such file or directory"),
        ("not-utf8", "the configuration file is not UTF-8"),
        ("not-toml", "the configuration file is not valid TOML"),
    ],
)
def test_an_unreadable_configuration_is_one_line(
    tmp_path: Path, closed_port: int, setup: str, expected: str
) -> None:
    file = tmp_path / "authgate.toml"
    if setup == "not-utf8":
        file.write_bytes(b"issuer = '\xff\xfe'\n")
    elif setup == "not-toml":
        file.write_text("[http\nport = 1\n")
    status, lines = _serve(tmp_path, _environment(AUTHGATE_CONFIG=str(file)))
    assert status == ExitCode.CONFIG
    assert len(lines) == 1
    assert lines[0].startswith(f"Error: configuration: {file}: {expected}")


def test_a_secret_key_file_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "authgate.secret"
    env = _environment(AUTHGATE_SECRET_KEY_FILE=str(missing))
    del env["AUTHGATE_SECRET_KEY"]
    status, lines = _serve(tmp_path, env)
    assert status == ExitCode.CONFIG
    assert lines == [
        f"Error: configuration: cannot create secret key file {missing}: No such file or directory"
    ]


def test_a_misspelt_or_malformed_variable_is_one_line(tmp_path: Path) -> None:
    status, lines = _serve(tmp_path, _environment(AUTHGATE_HTTP_PROT="9000"))
    assert status == ExitCode.CONFIG
    assert lines == [
        "Error: configuration: AUTHGATE_HTTP_PROT: not a setting's variable (docs/server.md "
        "lists them)"
    ]
    status, lines = _serve(tmp_path, _environment(AUTHGATE_HTTP_WORKERS="two"))
    assert (status, lines) == (
        ExitCode.CONFIG,
        ["Error: configuration: AUTHGATE_HTTP_WORKERS: must be an integer"],
    )


def test_a_database_that_does_not_exist_is_named(tmp_path: Path, closed_port: int) -> None:
    name = f"authgate_missing_{secrets.token_hex(6)}"
    url = f"postgresql://postgres:hunter2@127.0.0.1:5432/{name}"
    env = _environment(AUTHGATE_DATABASE_URL=url)
    status, lines = _serve(tmp_path, env, "--port", str(closed_port))
    assert status == ExitCode.DATABASE
    assert lines == [f'Error: database "{name}" on 127.0.0.1:5432: database does not exist']


def test_a_closed_database_port_is_named(tmp_path: Path, closed_port: int) -> None:
    url = f"postgresql://postgres:hunter2@127.0.0.1:{closed_port}/authgate"
    status, lines = _serve(tmp_path, _environment(AUTHGATE_DATABASE_URL=url))
    assert status == ExitCode.DATABASE
    assert lines == [f'Error: database "authgate" on 127.0.0.1:{closed_port}: connection refused']
    assert "hunter2" not in lines[0]


def test_an_unresolvable_database_host_is_named(tmp_path: Path) -> None:
    url = "postgresql://postgres@no-such-host.invalid/authgate"  # RFC 6761: never resolves
    status, lines = _serve(tmp_path, _environment(AUTHGATE_DATABASE_URL=url))
    assert status == ExitCode.DATABASE
    assert lines == ['Error: database "authgate" on no-such-host.invalid:5432: name not resolved']


def test_a_sqlite_file_in_a_missing_directory_is_named(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "authgate.db"
    status, lines = _serve(tmp_path, _environment(AUTHGATE_DATABASE_URL=f"sqlite:///{path}"))
    assert status == ExitCode.DATABASE
    assert len(lines) == 1
    assert lines[0].startswith(f"Error: SQLite database {path}: cannot open the file")


def test_a_short_secret_key_is_one_line_without_the_key(tmp_path: Path) -> None:
    status, lines = _serve(tmp_path, _environment(AUTHGATE_SECRET_KEY="hunter2-too-short"))
    assert status == ExitCode.CONFIG
    assert lines == [
        "Error: configuration: AUTHGATE_SECRET_KEY: the secret key needs at least 32 bytes"
    ]


def test_a_taken_admin_port_is_one_line(tmp_path: Path, held_port: int, closed_port: int) -> None:
    env = _environment(AUTHGATE_ADMIN_LISTEN=f"127.0.0.1:{held_port}")
    status, lines = _serve(tmp_path, env, "--port", str(closed_port))
    assert status == ExitCode.LISTEN
    assert lines == [
        f"Error: cannot listen on 127.0.0.1:{held_port} (admin.listen): address already in use"
    ]
    assert not (tmp_path / "authgate.db").exists()  # refused before touching the database
