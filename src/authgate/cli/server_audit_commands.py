"""`authgate audit list`: the audit trail of security events (see authgate.server.audit)."""

# Imports inside commands keep `authgate --help` from loading the server stack.
# ruff: noqa: PLC0415

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

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
from authgate.config import ConfigError, parse_duration

if TYPE_CHECKING:
    from authgate.server.models import AuditEvent

__all__ = ["audit_group"]

_HEADER = "TIME\tKIND\tACTOR\tSUBJECT\tDETAILS"
_MAX_LIMIT = 100_000


def _since(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int:
    """`--since`: a duration back from now (`7d`, `1h30m`) or a UTC timestamp (ISO 8601)."""
    if value is None:
        return 0
    try:
        return now() - int(parse_duration(value, whole=True))
    except ConfigError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            "give a duration (7d, 12h) or a timestamp (2026-12-01T08:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _event_dict(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.event_id,
        "at": event.at,
        "time": iso(event.at),
        "kind": event.kind,
        "actor": event.actor,
        "subject": event.subject,
        "details": dict(event.details),
    }


def _event_line(event: AuditEvent) -> str:
    from authgate.server.audit import bounded

    details = json.dumps(dict(event.details), separators=(",", ":"), sort_keys=True)
    # One line per event whatever was stored: no tabs or newlines from a stored value.
    fields = [iso(event.at), event.kind, event.actor, event.subject, details]
    return "\t".join(bounded(f, 4096) for f in fields)


@click.group("audit")
def audit_group() -> None:
    """The audit trail: registry changes, key rotations, refresh-token reuse, consent revoked,
    throttled sign-ins."""


@audit_group.command("list")
@click.option(
    "--since",
    callback=_since,
    help="only events at or after this: a duration back from now (7d) or a UTC timestamp",
)
@click.option(
    "--limit",
    type=click.IntRange(1, _MAX_LIMIT),
    default=100,
    show_default=True,
    help="at most this many events (the newest)",
)
@config_option
@json_option
def audit_list(*, since: int, limit: int, config_path: str | None, as_json: bool) -> None:
    """List audit events, oldest first."""
    events = run(with_storage(load(config_path), lambda s: s.list_audit_events(since, limit)))
    emit(as_json, [_event_dict(e) for e in events], [_HEADER, *map(_event_line, events)])
