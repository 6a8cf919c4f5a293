"""Durations given on the command line: the configuration files' syntax (`authgate.config`,
docs/configuration.md), so that `--exp 1h30m` and `lifetime = "1h30m"` mean the same."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from authgate.config import ConfigError, parse_duration

__all__ = ["duration_option"]

DurationCallback = Callable[[click.Context, click.Parameter, str | None], Any]


def duration_option(*, zero: bool = False, whole: bool = False) -> DurationCallback:
    """A click callback reading its option as seconds (None stays None). `zero`: 0 is allowed;
    `whole`: only whole seconds, as an int. A bad value is a usage error (exit status 2)."""

    def callback(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
        if value is None:
            return None
        try:
            return parse_duration(value, zero=zero, whole=whole)
        except ConfigError as exc:
            raise click.BadParameter(exc.reason) from None

    return callback
