"""How long records are kept before `purge_expired` deletes them: the configured lifetimes of
refresh tokens, sessions and throttle counters (past them a record means nothing any more), and
of dynamically registered clients that were never used."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Retention"]

DAY = 86400


@dataclass(frozen=True, slots=True)
class Retention:
    """Lifetimes in seconds; the defaults are the configuration's defaults. The server's own is
    built from its configuration (`retention_for`, where the server is wired)."""

    refresh_idle: int = 14 * DAY
    refresh_absolute: int = 90 * DAY
    session_idle: int = 8 * 3600
    session_absolute: int = 7 * DAY
    throttle_memory: int = DAY
    audit: int = 365 * DAY  # `[audit] retention`
    # `[registration] unused_client_lifetime`: a client registered at the endpoint (RFC 7591)
    # and never used this long after is deleted; 0 keeps such clients.
    unused_registered_client: int = 30 * DAY
