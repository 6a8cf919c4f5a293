"""`authgate dev` run as a user runs it: the real command in a subprocess, its printed text read
back and parsed."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

AUTHGATE = Path(sys.executable).with_name("authgate")
START_TIMEOUT = 180.0  # a first start on a busy CI machine: three Python services, RSA keys


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class Printed:
    """What `authgate dev` printed, parsed."""

    text: str
    client_id: str
    client_secret: str
    username: str
    password: str
    token_command: str
    call_command: str
    urls: dict[str, str] = field(default_factory=dict)


def parse(text: str) -> Printed:
    def one(pattern: str) -> str:
        match = re.search(pattern, text, re.MULTILINE)
        assert match, f"{pattern!r} not found in the printed text:\n{text}"
        return match.group(1)

    names = "issuer metadata|issuer JWKS|resource metadata|gateway readiness|gateway metrics|"
    names += "X-Auth-Token JWKS"
    urls = dict(re.findall(rf"^  ({names})\s+(\S+)$", text, re.MULTILINE))
    return Printed(
        text=text,
        client_id=one(r"client_id: (\S+)$"),
        client_secret=one(r"client_secret: (\S+)$"),
        username=one(r"username: (\S+) "),
        password=one(r"password: (\S+)$"),
        token_command=one(r"^  (TOKEN=\$\(curl .*)$"),
        call_command=one(r'^  (curl -H "Authorization: Bearer \$TOKEN" \S+)$'),
        urls=urls,
    )


class DevRun:
    """One `authgate dev` process; `printed` once it is ready."""

    def __init__(self, directory: Path, ports: list[int], *, relative: bool = False) -> None:
        """`relative`: run in the directory's parent and name it relatively, as users do."""
        self.directory = directory
        self.server, self.gateway, self.upstream = ports
        self.issuer = f"http://127.0.0.1:{self.server}"
        self.gateway_url = f"http://127.0.0.1:{self.gateway}"
        self.api = f"{self.gateway_url}/api"
        self._stdout: list[str] = []
        self._ready = threading.Event()
        self.stderr_path = directory.parent / f"{directory.name}-dev-stderr.txt"
        stderr = self.stderr_path.open("ab")
        env = {k: v for k, v in os.environ.items() if k != "AUTHGATE_CONFIG"}
        self.process = subprocess.Popen(
            [str(AUTHGATE), "dev", "--dir", directory.name if relative else str(directory),
             "--port-server", str(self.server), "--port-gateway", str(self.gateway),
             "--port-upstream", str(self.upstream)],
            stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=directory.parent,
        )  # fmt: skip
        stderr.close()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._stdout.append(line)
            if line.lstrip().startswith("logs "):
                self._ready.set()
        self._ready.set()

    def wait_ready(self) -> Printed:
        if not self._ready.wait(START_TIMEOUT) or not any("logs " in x for x in self._stdout):
            self.stop()
            raise AssertionError(
                f"authgate dev did not get ready; stdout:\n{''.join(self._stdout)}\n"
                f"stderr:\n{self.stderr_path.read_text(errors='replace')}"
            )
        return parse("".join(self._stdout))

    def children(self) -> list[int]:
        """The direct children of the dev process (from /proc)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                # pid (comm) state ppid …; comm may hold spaces, so split after the last ')'.
                if int(stat.rpartition(")")[2].split()[1]) == self.process.pid:
                    found.append(int(entry.name))
        return found

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)

    def token(self, printed: Printed, scope: str = "demo:read") -> str:
        response = httpx.post(
            f"{self.issuer}/token",
            auth=(printed.client_id, printed.client_secret),
            data={"grant_type": "client_credentials", "scope": scope, "resource": self.api},
            trust_env=False,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie has exited; only its parent has not collected it yet.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True


def wait_gone(pids: list[int], timeout: float = 30) -> list[int]:
    """The pids still alive after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if not gone(p)]
        time.sleep(0.1)
    return alive


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
