"""How long records are kept before `purge_expired` deletes them: the configured lifetimes of
refresh tokens, sessions and throttle counters (past them a record means nothing any more)."""

from __future__ import annotations

from dataclasses import dataclass

from authgate.server.config import Config

__all__ = ["Retention"]

DAY = 86400


@dataclass(frozen=True, slots=True)
class Retention:
    """Lifetimes in seconds; the defaults are the configuration's defaults."""

    refresh_idle: int = 14 * DAY
    refresh_absolute: int = 90 * DAY
    session_idle: int = 8 * 3600
    session_absolute: int = 7 * DAY
    throttle_memory: int = DAY

    @classmethod
    def from_config(cls, config: Config) -> Retention:
        """The retention that matches `config`'s refresh, session and throttle policies."""
        return cls(
            refresh_idle=config.refresh_tokens.idle_lifetime,
            refresh_absolute=config.refresh_tokens.absolute_lifetime,
            session_idle=config.sessions.idle_timeout,
            session_absolute=config.sessions.absolute_lifetime,
            throttle_memory=config.throttle.longest_memory,
        )
