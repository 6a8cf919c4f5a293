"""`authgate consent list|revoke`: what users have allowed clients, and taking it back.

Revoking consent also revokes the client's refresh tokens for that user (and the access tokens of
those grants), unless `--keep-tokens` asks only to forget the consent.
"""

# Imports inside commands keep `authgate --help` from loading the server stack.
# ruff: noqa: PLC0415

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from authgate.cli.exit_codes import CliError
from authgate.cli.server_shell import (
    config_option,
    emit,
    iso,
    json_option,
    load,
    now,
    run,
    with_storage,
)

if TYPE_CHECKING:
    from authgate.server.admin import ConsentRecord

__all__ = ["consent_group"]


def _client_of(record: ConsentRecord) -> tuple[str, str | None]:
    """The client's name and origin as `client list` says them; a client named by the URL of its
    metadata document has no stored name (its document's is its own claim, fetched by the server
    only), so it is named by its URL's host."""
    from urllib.parse import urlsplit

    from authgate.cli.server_admin_commands import METADATA_DOCUMENT
    from authgate.server.metadata_clients import is_client_id_url

    client_id = record.grant.client_id
    if record.client_origin is None and is_client_id_url(client_id):
        host = urlsplit(client_id).hostname or client_id
        return f"{host} (metadata document)", METADATA_DOCUMENT
    return record.client_name, record.client_origin


def _record_dict(record: ConsentRecord) -> dict[str, Any]:
    name, origin = _client_of(record)
    return {
        "username": record.username,
        "user_id": record.grant.user_id,
        "client_id": record.grant.client_id,
        "client_name": name,
        "client_origin": origin,
        "scopes": sorted(record.grant.scopes),
        "apis": sorted(record.grant.audiences),
        "granted_at": record.grant.granted_at,
    }


_HEADER = "USERNAME\tCLIENT_ID\tCLIENT\tSCOPES\tAPIS\tGRANTED"


def _record_line(record: ConsentRecord) -> str:
    grant = record.grant
    return "\t".join(
        [
            record.username,
            grant.client_id,
            _client_of(record)[0],
            " ".join(sorted(grant.scopes)) or "-",
            " ".join(sorted(grant.audiences)) or "-",
            iso(grant.granted_at),
        ]
    )


@click.group("consent")
def consent_group() -> None:
    """What users have allowed clients (remembered consent)."""


@consent_group.command("list")
@click.option("--user", "username", help="only this user's consents (username)")
@click.option("--client", "client_id", help="only consents given to this client_id")
@config_option
@json_option
def consent_list(
    *, username: str | None, client_id: str | None, config_path: str | None, as_json: bool
) -> None:
    """List remembered consents: user, client, scopes, APIs, when."""
    from authgate.server.admin import list_consents

    records = run(
        with_storage(
            load(config_path),
            lambda s: list_consents(s, username=username, client_id=client_id),
        )
    )
    emit(
        as_json,
        [_record_dict(r) for r in records],
        [_HEADER, *(_record_line(r) for r in records)] if records else ["no remembered consent"],
    )


@consent_group.command("revoke")
@click.option("--user", "username", required=True, help="the user (username)")
@click.option("--client", "client_id", required=True, help="the client_id")
@click.option(
    "--keep-tokens",
    is_flag=True,
    help="only forget the consent; the client keeps its refresh tokens",
)
@config_option
@json_option
def consent_revoke(
    *, username: str, client_id: str, keep_tokens: bool, config_path: str | None, as_json: bool
) -> None:
    """Forget a user's consent to a client and revoke the client's tokens for that user; the
    next authorization request asks the user again.

    \b
    Example:
      authgate consent revoke --user alice --client 3f9c…
    """
    from authgate.server.admin import revoke_consent

    done = run(
        with_storage(
            load(config_path),
            lambda s: revoke_consent(
                s, username=username, client_id=client_id, keep_tokens=keep_tokens, now=now()
            ),
        )
    )
    if not done.consent_removed and not done.grants_revoked:
        raise CliError(f"{username} has no consent or tokens for client {client_id}")
    emit(
        as_json,
        {
            "username": username,
            "client_id": client_id,
            "consent_removed": done.consent_removed,
            "grants_revoked": done.grants_revoked,
        },
        [
            f"consent of {username} for {client_id} "
            + ("removed" if done.consent_removed else "was not remembered")
            + (
                f"; revoked {done.grants_revoked} grant(s) and their tokens"
                if done.grants_revoked
                else ""
            )
        ],
    )
