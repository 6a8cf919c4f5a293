"""`authgate dev` from start to stop: the authorization server, the demo upstream and the gateway
as child processes on loopback, the demo data, the printed instructions, and a clean stop.

Order matters. The server starts first: it creates (or upgrades) the SQLite database and its
secret key, and creates its signing keys, before it answers. Then the gateway starts (it fetches
the issuer's keys at start and is ready only once it holds them) while the demo API, client and
user are provisioned through the admin commands; the demo upstream starts with the server.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType

from authgate.dev.banner import banner
from authgate.dev.processes import (
    Child,
    ChildFailedError,
    start_child,
    stop_children,
    wait_until_ready,
)
from authgate.dev.provisioning import AdminCli, ProvisioningError, authgate_command, provision
from authgate.dev.workspace import Workspace

__all__ = ["DevEnvironment", "child_environment"]

SERVER_START_TIMEOUT = 90.0  # the first start generates signing keys (RSA included)
GATEWAY_START_TIMEOUT = 60.0


def child_environment() -> dict[str, str]:
    """This process's environment without `AUTHGATE_*` (the dev data must never go to a database
    or issuer configured for something else) and with unbuffered Python output for the logs."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AUTHGATE_")}
    environ["PYTHONUNBUFFERED"] = "1"
    return environ


class DevEnvironment:
    """Runs one workspace until SIGINT or SIGTERM; `run` returns the exit status."""

    def __init__(self, workspace: Workspace, echo: Callable[[str], None]) -> None:
        self.workspace = workspace
        self.echo = echo
        self.children: list[Child] = []
        self._stop = False
        self._environ = child_environment()

    def run(self) -> int:
        previous = {
            sig: signal.signal(sig, self._request_stop) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            text = self._start()
            if text is not None:
                self.echo(text)
                self._supervise()
        except (ChildFailedError, ProvisioningError) as exc:
            if self._stop:  # Ctrl-C reaches the children too: their exit is no failure then
                return 0
            print(f"authgate dev: {exc}", file=sys.stderr)
            return 1
        else:
            return 0
        finally:
            stop_children(list(reversed(self.children)))
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self.children:
                print("authgate dev: stopped", file=sys.stderr)

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        self._stop = True

    def _start(self) -> str | None:
        """Start everything and return the text to print; None when a stop was requested."""
        ws = self.workspace
        ws.prepare()
        server = self._spawn("authorization server", "server", authgate_command(
            "serve", "--config", str(ws.server_config)
        ))  # fmt: skip
        upstream = self._spawn("demo upstream", "upstream", [
            sys.executable, "-P", "-m", "authgate.dev.demo_upstream",
            "--port", str(ws.ports.upstream),
        ])  # fmt: skip
        metadata = f"{ws.issuer}/.well-known/oauth-authorization-server"
        if not self._wait(server, metadata, SERVER_START_TIMEOUT):
            return None
        gateway = self._spawn("gateway", "gateway", authgate_command(
            "gateway", "--config", str(ws.gateway_config)
        ))  # fmt: skip
        credentials = provision(AdminCli(ws, self._environ))
        if not (
            self._wait(upstream, ws.upstream_url + "/", GATEWAY_START_TIMEOUT)
            and self._wait(gateway, f"{ws.gateway_url}/readyz", GATEWAY_START_TIMEOUT)
        ):
            return None
        return banner(ws, credentials)

    def _wait(self, child: Child, url: str, timeout: float) -> bool:
        return wait_until_ready(child, url, timeout=timeout, stop_requested=lambda: self._stop)

    def _spawn(self, name: str, log: str, argv: list[str]) -> Child:
        child = start_child(
            name,
            argv,
            self.workspace.log_file(log),
            environ=self._environ,
            cwd=self.workspace.directory,
        )
        self.children.append(child)
        return child

    def _supervise(self) -> None:
        """Wait for a stop signal; a child that exits on its own ends the environment."""
        while not self._stop:
            for child in self.children:
                if child.process.poll() is not None and not self._stop:
                    raise child.failure(f"exited unexpectedly (status {child.process.returncode})")
            time.sleep(0.2)
