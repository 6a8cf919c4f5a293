"""The demo API, client and user of `authgate dev`, created through the admin commands
(`authgate api|client|user … --json`) against the working directory's server configuration.

Every step first looks at what exists, so a second start reuses the data: the same API, the same
client and user with the same credentials. Client secrets are stored by the server only as
hashes, so the credentials the environment printed are kept in the directory's
`demo-credentials.json` (mode 0600, like the server's own secret key file beside it). When that
file is lost, the demo client gets a new secret (`client rotate-secret`) and the demo user a new
password, rather than a second client or user.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from authgate.dev.workspace import DEMO_SCOPES, Workspace

__all__ = [
    "CLIENT_NAME",
    "DEMO_USERNAME",
    "AdminCli",
    "DemoCredentials",
    "ProvisioningError",
    "authgate_command",
    "load_state",
    "provision",
    "save_state",
]

API_NAME = "authgate dev demo API"
CLIENT_NAME = "authgate dev demo client"
CLIENT_ROLE = "demo"
DEMO_USERNAME = "demo"


class ProvisioningError(RuntimeError):
    """An admin command failed; the message is its one-line error (never a secret)."""


def authgate_command(*args: str) -> list[str]:
    """The argv that runs `authgate ARGS…` with this interpreter (`-P`: the working directory
    is not put on the import path, so no file there can shadow a module)."""
    run = "import sys; from authgate.cli import main; sys.exit(main(prog_name='authgate'))"
    return [sys.executable, "-P", "-c", run, *args]


Command = tuple[tuple[str, ...], str | None]  # the arguments after `authgate`, and stdin


class AdminCli:
    """Runs admin commands against the workspace's server configuration."""

    def __init__(self, workspace: Workspace, environ: Mapping[str, str]) -> None:
        self.workspace = workspace
        self.environ = dict(environ)

    def run_all(self, commands: Sequence[Command]) -> list[Any]:
        """Run `authgate ARGS… --config … --json` for each command at once (each one is a
        Python start-up, most of its cost); return their JSON outputs in order."""
        config = ("--config", str(self.workspace.server_config), "--json")
        running = [
            (
                args,
                stdin,
                subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                    authgate_command(*args, *config),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=self.environ,
                    cwd=self.workspace.directory,
                ),
            )
            for args, stdin in commands
        ]
        results = []
        for args, stdin, process in running:
            out, err = process.communicate(stdin, timeout=120)
            if process.returncode != 0:
                lines = err.strip().splitlines() or [f"exit status {process.returncode}"]
                raise ProvisioningError(f"authgate {args[0]} {args[1]}: {lines[-1]}")
            results.append(json.loads(out))
        return results


@dataclass(frozen=True, slots=True)
class DemoCredentials:
    """What the environment prints: the demo client's and the demo user's credentials."""

    client_id: str
    client_secret: str
    username: str
    password: str


def provision(cli: AdminCli) -> DemoCredentials:
    """Ensure the demo API, client and user (the server has created the database); save the
    credentials in the state file and return them.

    Reads first (all at once), then the writes that depend on nothing, then the client, which
    needs the API."""
    identifier = cli.workspace.api_identifier
    state = load_state(cli.workspace.state_file)
    apis, clients, users = cli.run_all(
        [(("api", "list"), None), (("client", "list"), None), (("user", "list"), None)]
    )
    known_client = state.get("clients", {}).get(identifier)
    known_user = state.get("user")
    password = known_user["password"] if known_user else secrets.token_urlsafe(12)
    first: list[Command] = []
    if not any(api["identifier"] == identifier for api in apis):
        scopes = [arg for scope in DEMO_SCOPES for arg in ("--scope", scope)]
        first.append(
            (("api", "create", "--identifier", identifier, "--name", API_NAME, *scopes), None)
        )
    if not any(u["username"] == DEMO_USERNAME for u in users):
        first.append((("user", "create", DEMO_USERNAME, "--password-stdin", "--name", "Demo User",
                       "--email", "demo@example.com"), password + "\n"))  # fmt: skip
    elif not known_user:
        first.append((("user", "set-password", DEMO_USERNAME, "--password-stdin"), password + "\n"))
    cli.run_all(first)
    if known_client and any(c["client_id"] == known_client["client_id"] for c in clients):
        client_id, client_secret = known_client["client_id"], known_client["client_secret"]
    else:
        client_id, client_secret = _new_client_secret(cli, clients, identifier)
    state.setdefault("clients", {})[identifier] = {
        "client_id": client_id,
        "client_secret": client_secret,
    }
    state["user"] = {"username": DEMO_USERNAME, "password": password}
    save_state(cli.workspace.state_file, state)
    return DemoCredentials(client_id, client_secret, DEMO_USERNAME, password)


def _new_client_secret(cli: AdminCli, clients: list[Any], identifier: str) -> tuple[str, str]:
    """The demo client with a secret we know: our client found by name (its secret was lost
    with the state file) gets a new one; otherwise a client is created."""
    ours = [c for c in clients if c["name"] == CLIENT_NAME and _serves(c, identifier)]
    if ours:
        (rotated,) = cli.run_all([(("client", "rotate-secret", ours[0]["client_id"]), None)])
        return rotated["client_id"], rotated["client_secret"]
    scopes = [arg for scope in DEMO_SCOPES for arg in ("--scope", f"{identifier}#{scope}")]
    (created,) = cli.run_all(
        [(("client", "create", "--name", CLIENT_NAME, "--grant", "client_credentials",
           "--role", CLIENT_ROLE, *scopes), None)]
    )  # fmt: skip
    return created["client_id"], created["client_secret"]


def _serves(client: Mapping[str, Any], identifier: str) -> bool:
    return any(a["api"] == identifier and a["may_request"] for a in client.get("access", []))


def load_state(path: Path) -> dict[str, Any]:
    """The saved credentials; parts that are absent, unreadable or malformed are left out (and
    made again)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    state: dict[str, Any] = {"clients": {}}
    clients = data.get("clients")
    for api, entry in clients.items() if isinstance(clients, dict) else ():
        if _strings(entry, "client_id", "client_secret"):
            state["clients"][api] = entry
    if _strings(data.get("user"), "username", "password"):
        state["user"] = data["user"]
    return state


def _strings(entry: object, *names: str) -> bool:
    return isinstance(entry, dict) and all(isinstance(entry.get(n), str) for n in names)


def save_state(path: Path, state: Mapping[str, Any]) -> None:
    """Write the credentials readable by the owner only, replacing the file atomically."""
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(state, file, indent=2)
    os.replace(temporary, path)
