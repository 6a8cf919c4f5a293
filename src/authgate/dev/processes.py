"""The child processes of `authgate dev`: start, wait until ready, stop, and never leave one behind.

Each child writes its output to a log file in the working directory. On Linux each child also asks
the kernel for SIGTERM when `authgate dev` itself dies (`PR_SET_PDEATHSIG`), so that even a killed
parent leaves no orphan listening on a port. A stop sends SIGTERM to every child (each one stops
gracefully), waits, and kills whatever is still running after the grace period.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = [
    "Child",
    "ChildFailedError",
    "port_in_use",
    "start_child",
    "stop_children",
    "wait_until_ready",
]

_PR_SET_PDEATHSIG = 1
_POLL = 0.1


class ChildFailedError(RuntimeError):
    """A child exited or did not become ready; the message names it and shows its last log
    lines."""


@dataclass(slots=True)
class Child:
    """One running service."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 12) -> str:
        """The end of the child's log, for error messages."""
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def failure(self, what: str) -> ChildFailedError:
        tail = self.tail()
        detail = f"\n--- last lines of {self.log} ---\n{tail}" if tail else ""
        return ChildFailedError(f"the {self.name} {what}{detail}")


def port_in_use(port: int) -> bool:
    """Whether 127.0.0.1:`port` cannot be bound (the servers bind with SO_REUSEADDR too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None

    def ask_kernel() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return ask_kernel


def start_child(
    name: str, argv: Sequence[str], log: Path, *, environ: Mapping[str, str], cwd: Path
) -> Child:
    """Start `argv` with stdout and stderr appended to `log`."""
    with log.open("ab") as output:
        output.write(f"--- authgate dev: {name} starting at {time.ctime()} ---\n".encode())
        output.flush()
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=dict(environ),
            cwd=cwd,
            preexec_fn=_die_with_parent(os.getpid()),  # noqa: PLW1509 - no threads run here
        )
    return Child(name, process, log)


def wait_until_ready(
    child: Child, url: str, *, timeout: float, stop_requested: Callable[[], bool]
) -> bool:
    """Poll `url` until it answers 200; False if a stop was requested meanwhile.

    Raises `ChildFailedError` when the child exits or the time runs out."""
    deadline = time.monotonic() + timeout
    with httpx.Client(trust_env=False, timeout=2.0) as client:
        while not stop_requested():
            if child.process.poll() is not None:
                raise child.failure(f"exited with status {child.process.returncode}")
            try:
                if client.get(url).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise child.failure(f"was not ready after {timeout:.0f} seconds ({url})")
            time.sleep(_POLL)
    return False


def stop_children(children: Sequence[Child], grace: float = 10.0) -> None:
    """SIGTERM every child, wait up to `grace` seconds in all, then SIGKILL the rest."""
    for child in children:
        if child.process.poll() is None:
            child.process.terminate()
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
