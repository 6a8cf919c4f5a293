"""A PostgreSQL instance of a test's own (never the shared one at 5432), on a free loopback port,
which the test may freeze (SIGSTOP), stop and start again. Shared by the stall and fault tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.server_harness import free_port


@dataclass
class OwnPostgres:
    """A running instance: its URL (database `postgres`), data folder and the means to manage it."""

    url: str
    data: Path
    root: Path
    port: int

    def processes(self) -> list[int]:
        """The postmaster and its children (the backends)."""
        main = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == main:
                    children.append(int(stat.parent.name))
        return [main, *children]

    def signal(self, sig: signal.Signals) -> None:
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def start(self) -> None:
        """Start the instance; pg_ctl -w waits (60 s at most) until it accepts connections."""
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.root / "log")
        pg_ctl = _tool("pg_ctl")
        run_as_postgres([pg_ctl, "-D", str(self.data), "-o", options, "-l", log, "-w", "start"])

    def stop(self, mode: str = "fast") -> None:
        """Stop it (`fast`: backends are terminated, clients see their connections die)."""
        run_as_postgres(
            [_tool("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"]
        )


@contextlib.contextmanager
def own_postgres_instance() -> Iterator[OwnPostgres]:
    """Create, start, and in the end stop and delete an instance of the caller's own."""
    # Not under pytest's temporary folder, which the postgres user may not enter.
    root = Path(tempfile.mkdtemp(prefix="authgate-own-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    port = free_port()
    own = OwnPostgres(f"postgresql://postgres@127.0.0.1:{port}/postgres", root / "data", root, port)
    try:
        run_as_postgres(
            [_tool("initdb"), "-D", str(own.data), "-A", "trust", "-U", "postgres", "--no-sync"]
        )
        own.start()
        yield own
    finally:
        if (own.data / "postmaster.pid").exists():
            own.signal(signal.SIGCONT)
            own.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is needed to start a PostgreSQL of the test's own")
    return path


def run_as_postgres(command: list[str]) -> None:
    # PostgreSQL refuses to run as root.
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
