"""`authgate dev`: the authorization server, a gateway and a demo upstream on loopback, with a demo
API, client and user, and the commands to try them (see `authgate.dev`)."""

# ruff: noqa: PLC0415 - the dev stack (httpx, subprocess plumbing) loads only when it runs

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

_F = TypeVar("_F", bound=Callable[..., Any])

__all__ = ["dev_command"]


def _port_option(name: str, default: int, what: str) -> Callable[[_F], _F]:
    return click.option(
        name,
        default=default,
        show_default=True,
        type=click.IntRange(1, 65535),
        help=f"Port of {what}.",
    )


@click.command("dev")
@click.option(
    "--dir",
    "directory",
    default=".authgate-dev",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Working directory: SQLite database, secret key, configuration, logs, demo credentials.",
)
@_port_option("--port-server", 8000, "the authorization server (the issuer)")
@_port_option("--port-gateway", 8080, "the gateway")
@_port_option("--port-upstream", 9000, "the demo upstream (the echo service behind the gateway)")
def dev_command(directory: Path, port_server: int, port_gateway: int, port_upstream: int) -> None:
    """Run a local authorization server, gateway and demo upstream, ready to try.

    Creates (or reuses) a demo API, a client_credentials client and a user, prints the commands
    to get a token and to call the API through the gateway, and runs until Ctrl-C or SIGTERM,
    which stops everything. Re-running with the same --dir keeps the data and the credentials.

    \b
    Example:
      authgate dev
      authgate dev --dir /tmp/try --port-server 18000 --port-gateway 18080 --port-upstream 19000
    """
    from authgate.dev.environment import DevEnvironment
    from authgate.dev.processes import port_in_use
    from authgate.dev.workspace import DevPorts, Workspace, WorkspaceError

    ports = DevPorts(server=port_server, gateway=port_gateway, upstream=port_upstream)
    named = ports.named()
    if len(set(named.values())) < len(named):
        raise click.UsageError("--port-server, --port-gateway and --port-upstream must differ")
    for option, port in named.items():
        if port_in_use(port):
            raise click.ClickException(
                f"port {port} on 127.0.0.1 is already in use; choose another with {option}"
            )
    # Absolute: the services run with the directory as their working directory.
    workspace = Workspace(directory.resolve(), ports)
    try:
        workspace.check()
    except WorkspaceError as exc:
        raise click.ClickException(str(exc)) from None
    status = DevEnvironment(workspace, click.echo).run()
    if status:
        raise SystemExit(status)
