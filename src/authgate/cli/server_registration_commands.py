"""`authgate registration-token …`: the initial access tokens of dynamic client registration
(`[registration] mode = "token"`, RFC 7591 §3). A token is printed once, at creation, and only its
keyed hash is stored; it is listed and revoked by its public id.
"""

# Imports inside commands keep `authgate --help` from loading the server stack.
# ruff: noqa: PLC0415

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from authgate.cli.durations import duration_option
from authgate.cli.exit_codes import CliError
from authgate.cli.server_shell import (
    config_option,
    emit,
    iso,
    json_option,
    load,
    now,
    run,
    table,
    with_storage,
)

if TYPE_CHECKING:
    from authgate.server.models import InitialAccessToken

__all__ = ["registration_token_group"]


def _token_dict(token: InitialAccessToken, at: int) -> dict[str, Any]:
    return {
        "id": token.token_id,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "max_uses": token.max_uses,
        "uses": token.uses,
        "revoked_at": token.revoked_at,
        "usable": token.usable(at),
    }


@click.group("registration-token")
def registration_token_group() -> None:
    """Initial access tokens for dynamic client registration (mode "token")."""


@registration_token_group.command("create")
@click.option(
    "--expires",
    "expires_in",
    default=None,
    callback=duration_option(whole=True),
    metavar="DURATION",
    help="how long the token may register clients, e.g. 1h (default: until revoked)",
)
@click.option(
    "--max-uses",
    type=click.IntRange(min=1),
    default=None,
    help="how many clients it may register (default: any number)",
)
@config_option
@json_option
def registration_token_create(
    *, expires_in: int | None, max_uses: int | None, config_path: str | None, as_json: bool
) -> None:
    """Create an initial access token and print it once.

    \b
    Examples:
      authgate registration-token create --expires 1h --max-uses 1
      curl -H "Authorization: Bearer TOKEN" -H "Content-Type: application/json" \\
          -d '{"client_name": "ci", "grant_types": ["client_credentials"]}' ISSUER/register
    """
    from authgate.server.registration.initial_tokens import create_initial_access_token
    from authgate.server.secret_key import ServerSecret

    config = load(config_path)
    secret = ServerSecret(config.secret_key)
    at = now()
    token, value = run(
        with_storage(
            config,
            lambda s: create_initial_access_token(
                s, secret, expires_in=expires_in, max_uses=max_uses, now=at
            ),
        )
    )
    uses = "any number" if max_uses is None else str(max_uses)
    emit(
        as_json,
        {**_token_dict(token, at), "token": value},
        [
            f"id:       {token.token_id}",
            f"token:    {value}",
            f"expires:  {iso(token.expires_at) if token.expires_at else 'when revoked'}",
            f"max uses: {uses}",
            "(the token is shown only now; store it safely)",
        ],
    )
    if config.registration.mode != "token":
        click.echo(
            f'note: [registration] mode is "{config.registration.mode}"; the registration '
            'endpoint asks for this token only in mode "token"',
            err=True,
        )


@registration_token_group.command("list")
@config_option
@json_option
def registration_token_list(*, config_path: str | None, as_json: bool) -> None:
    """List the initial access tokens (never their values)."""
    tokens = run(with_storage(load(config_path), lambda s: s.list_initial_access_tokens()))
    at = now()
    emit(
        as_json,
        [_token_dict(t, at) for t in tokens],
        table(
            ("ID", "CREATED", "EXPIRES", "USES", "STATE"),
            (
                (
                    t.token_id,
                    iso(t.created_at),
                    iso(t.expires_at),
                    f"{t.uses}/{'-' if t.max_uses is None else t.max_uses}",
                    _state(t, at),
                )
                for t in tokens
            ),
        ),
    )


def _state(token: InitialAccessToken, at: int) -> str:
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and at >= token.expires_at:
        return "expired"
    if token.max_uses is not None and token.uses >= token.max_uses:
        return "used up"
    return "usable"


@registration_token_group.command("revoke")
@click.argument("token_id")
@config_option
@json_option
def registration_token_revoke(*, token_id: str, config_path: str | None, as_json: bool) -> None:
    """Revoke an initial access token (the clients it registered stay)."""
    from authgate.server.registration.initial_tokens import revoke_initial_access_token

    revoking = with_storage(
        load(config_path), lambda s: revoke_initial_access_token(s, token_id, now=now())
    )
    if not run(revoking):
        raise CliError(f"no usable registration token with id {token_id!r}")
    emit(as_json, {"revoked": token_id}, [f"revoked registration token {token_id}"])
