"""`authgate user …`: the people who sign in, with argon2id password hashes (RFC 9106).

Passwords come from a prompt (typed twice) or, for scripts, one line on standard input; they are
never accepted as command-line arguments, where other users could read them.
"""

# Imports inside commands keep `authgate --help` from loading the server stack.
# ruff: noqa: PLC0415

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from authgate.cli.exit_codes import CliError
from authgate.cli.server_shell import (
    config_option,
    emit,
    json_option,
    load,
    now,
    run,
    table,
    with_storage,
)

if TYPE_CHECKING:
    from authgate.server.models import User

__all__ = ["user_group"]


def _user_dict(user: User) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "username": user.username,
        "email": user.email,
        "email_verified": user.email_verified,
        "name": user.name,
        "roles": list(user.roles),
        "created_at": user.created_at,
    }


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@click.group("user")
def user_group() -> None:
    """Manage the people who sign in (argon2id password hashes)."""


@user_group.command("create")
@click.argument("username")
@click.option("--role", "roles", multiple=True, help="role (repeatable)")
@click.option("--email", help="email address")
@click.option("--email-verified", is_flag=True, help="the email address is known to be theirs")
@click.option("--name", help="full name")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@config_option
@json_option
def user_create(
    *,
    username: str,
    roles: tuple[str, ...],
    email: str | None,
    email_verified: bool,
    name: str | None,
    password_stdin: bool,
    config_path: str | None,
    as_json: bool,
) -> None:
    """Create a user; the password is prompted for (or read with --password-stdin)."""
    from authgate.server.admin import create_user

    config = load(config_path)
    password = _read_password(password_stdin)
    user = run(
        with_storage(
            config,
            lambda s: create_user(
                s,
                username=username,
                password=password,
                email=email,
                email_verified=email_verified,
                name=name,
                roles=roles,
                now=now(),
            ),
        )
    )
    emit(as_json, _user_dict(user), [f"created user {user.username} ({user.user_id})"])


@user_group.command("list")
@config_option
@json_option
def user_list(*, config_path: str | None, as_json: bool) -> None:
    """List the users."""
    users = run(with_storage(load(config_path), lambda s: s.list_users()))
    emit(
        as_json,
        [_user_dict(u) for u in users],
        table(
            ("USERNAME", "EMAIL", "ROLES"),
            ((u.username, u.email or "-", " ".join(u.roles)) for u in users),
        ),
    )


def _user_lines(user: User) -> list[str]:
    verified = " (verified)" if user.email_verified else ""
    return [
        f"username: {user.username}",
        f"user_id:  {user.user_id}",
        f"name:     {user.name or '-'}",
        f"email:    {user.email or '-'}{verified if user.email else ''}",
        f"roles:    {' '.join(user.roles) or '-'}",
    ]


@user_group.command("show")
@click.argument("username")
@config_option
@json_option
def user_show(*, username: str, config_path: str | None, as_json: bool) -> None:
    """Show one user (never the password hash)."""
    user = run(with_storage(load(config_path), lambda s: s.get_user_by_username(username)))
    if user is None:
        raise CliError(f"no user named {username!r}")
    emit(as_json, _user_dict(user), _user_lines(user))


@user_group.command("update")
@click.argument("username")
@click.option("--email", help="new email address (unverified unless --email-verified)")
@click.option("--no-email", is_flag=True, help="remove the email address")
@click.option(
    "--email-verified/--email-unverified",
    default=None,
    help="whether the email address is known to be theirs",
)
@click.option("--name", help="new full name")
@click.option("--no-name", is_flag=True, help="remove the name")
@config_option
@json_option
def user_update(
    *,
    username: str,
    email: str | None,
    no_email: bool,
    email_verified: bool | None,
    name: str | None,
    no_name: bool,
    config_path: str | None,
    as_json: bool,
) -> None:
    """Change the profile claims (name, email, email_verified) a user's ID tokens and userinfo
    release."""
    from authgate.server.admin import UNCHANGED, update_user_profile

    if (email is not None and no_email) or (name is not None and no_name):
        raise CliError("give a new value or remove it, not both")
    user = run(
        with_storage(
            load(config_path),
            lambda s: update_user_profile(
                s,
                username,
                email=None if no_email else UNCHANGED if email is None else email,
                email_verified=email_verified,
                name=None if no_name else UNCHANGED if name is None else name,
            ),
        )
    )
    emit(as_json, _user_dict(user), _user_lines(user))


@user_group.command("delete")
@click.argument("username")
@config_option
@json_option
def user_delete(*, username: str, config_path: str | None, as_json: bool) -> None:
    """Delete a user with their sessions, consents and refresh tokens (whose access tokens are
    revoked too)."""
    from authgate.server.admin import delete_user

    revoked = run(with_storage(load(config_path), lambda s: delete_user(s, username, now=now())))
    emit(
        as_json,
        {"deleted": username, "grants_revoked": revoked},
        [f"deleted user {username}" + (f" and revoked {revoked} grant(s)" if revoked else "")],
    )


@user_group.command("revoke-sessions")
@click.argument("username")
@config_option
@json_option
def user_revoke_sessions(*, username: str, config_path: str | None, as_json: bool) -> None:
    """Sign a user out everywhere: end their browser sessions and revoke their refresh tokens and
    tracked access tokens with every client. The account stays."""
    from authgate.server.admin import revoke_user_sessions

    done = run(
        with_storage(load(config_path), lambda s: revoke_user_sessions(s, username, now=now()))
    )
    emit(
        as_json,
        {
            "username": username,
            "sessions": done.sessions,
            "grants": done.tokens.grants,
            "opaque_tokens": done.tokens.opaque_tokens,
        },
        [
            f"user {username}: ended {done.sessions} session(s), revoked {done.tokens.grants} "
            f"grant(s) and {done.tokens.opaque_tokens} other opaque access token(s)"
        ],
    )


@user_group.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@config_option
@json_option
def user_set_password(
    *, username: str, password_stdin: bool, config_path: str | None, as_json: bool
) -> None:
    """Replace a user's password; this signs them out of every browser session."""
    from authgate.server.admin import set_user_password

    config = load(config_path)
    password = _read_password(password_stdin)
    ended = run(with_storage(config, lambda s: set_user_password(s, username, password)))
    emit(
        as_json,
        {"username": username, "password_changed": True, "sessions_ended": ended},
        [f"password changed for {username}; {ended} session(s) ended"],
    )
