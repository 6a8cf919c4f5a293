"""`authgate token revoke`: revoke one access or refresh token by value (incident response).

The token is read from the argument or, with `-` or no argument, from standard input (so it
stays out of shell history and process listings); it is never printed back.
"""

# Imports inside commands keep `authgate --help` from loading the server stack.
# ruff: noqa: PLC0415

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from authgate.cli.exit_codes import CliError, ExitCode
from authgate.cli.server_shell import config_option, emit, json_option, load, now, run

if TYPE_CHECKING:
    from authgate.server.admin import TokenRevocation

__all__ = ["token_group"]

# Longer than any token this server issues; the inspector refuses anything over 16 KiB anyway.
_MAX_INPUT = 64 * 1024


@click.group("token")
def token_group() -> None:
    """Revoke tokens this server issued."""


def _read_token(argument: str) -> str:
    if argument == "-":
        raw = sys.stdin.read(_MAX_INPUT + 1)
        if len(raw) > _MAX_INPUT:
            raise CliError("the token on standard input is too long", ExitCode.INPUT)
        argument = raw
    token = argument.strip()
    if not token:
        raise CliError(
            "no token given (pass it as the argument or on standard input)", ExitCode.INPUT
        )
    if any(not ch.isprintable() or ch.isspace() for ch in token):
        raise CliError("the token contains spaces or control characters", ExitCode.INPUT)
    return token


@token_group.command("revoke")
@click.argument("token", default="-", metavar="[TOKEN|-]")
@config_option
@json_option
def token_revoke(*, token: str, config_path: str | None, as_json: bool) -> None:
    """Revoke an access or refresh token, whichever it is (a refresh token takes its family and
    the access tokens of its grant with it).

    \b
    Examples:
      authgate token revoke < leaked-token.txt
      printf %s "$TOKEN" | authgate token revoke -
      authgate token revoke -- "$TOKEN"   (a token may start with "-")
    """
    from authgate.server.admin import revoke_token
    from authgate.server.auth_server import AuthServer

    value = _read_token(token)
    config = load(config_path)

    async def action() -> TokenRevocation:
        server = await AuthServer.start(config)
        try:
            return await revoke_token(server.storage, server.inspector, value, now=now())
        finally:
            await server.close()

    outcome = run(action())
    state = (
        "revoked" if outcome.was_active or outcome.kind == "refresh_token" else "already inactive"
    )
    emit(
        as_json,
        {
            "kind": outcome.kind,
            "client_id": outcome.client_id,
            "sub": outcome.subject,
            "was_active": outcome.was_active,
        },
        [f"{outcome.kind} of client {outcome.client_id} (sub {outcome.subject}): {state}"],
    )
