"""Checking, before a server starts, that its address can be listened on, so that a taken port
is one line and `ExitCode.LISTEN` rather than a traceback or the web server's own log line."""

from __future__ import annotations

import socket

from authgate.cli.exit_codes import CliError, ExitCode

__all__ = ["check_listen"]


def check_listen(host: str, port: int, setting: str | None = None) -> None:
    """Bind `host`:`port` once, as the server will (SO_REUSEADDR), and let it go again.

    Another process can still take the port between this check and the server's bind; then the
    server's own error is what the user sees. Port 0 (any free port) always succeeds. `setting`
    names the address in the message when it is not the main one (`admin.listen`).
    """
    if port == 0:
        return
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if setting is not None:
        shown = f"{shown} ({setting})"
    if not 0 < port <= 65535:  # getaddrinfo would wrap it around
        raise CliError(f"cannot listen on {shown}: not a port number", ExitCode.LISTEN)
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not resolved"
        raise CliError(f"cannot listen on {shown}: {reason}", ExitCode.LISTEN) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise CliError(f"cannot listen on {shown}: {reason}", ExitCode.LISTEN) from None
