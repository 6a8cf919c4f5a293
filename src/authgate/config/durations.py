"""One duration syntax for every configuration file and command-line option (docs/configuration.md).

A duration is a number of seconds (a TOML integer or float: `30`, `0.5`), or a string: a number
of seconds alone (`"90"`), or one or more `<number><unit>` parts with units in decreasing order,
`w`, `d`, `h`, `m`, `s`, `ms` (`"30s"`, `"5m"`, `"1h30m"`, `"7d"`, `"500ms"`, `"1.5h"`). Spaces
around parts are allowed. Nothing negative, nothing beyond 100 years; zero and fractions of a
second only where the caller allows them.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Literal, overload

from authgate.config.errors import ConfigError

__all__ = ["DURATION_EXAMPLES", "MAX_DURATION", "parse_duration"]

# Also keeps `now + duration` a sane NumericDate for the JWT commands.
MAX_DURATION = 100 * 365 * 86400
DURATION_EXAMPLES = '"30s", "5m", "2h", "7d", "1h30m"'
_UNITS: dict[str, int | Fraction] = {
    "w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": Fraction(1, 1000),
}  # fmt: skip
_ORDER = list(_UNITS)
_NUMBER = r"\d{1,10}(?:\.\d{1,9})?"
_SECONDS = re.compile(rf"\s*({_NUMBER})\s*")
# `ms` before `m` and `s`, so that `500ms` is not read as 500 minutes followed by an `s`.
_PART = re.compile(rf"\s*({_NUMBER})\s*(ms|w|d|h|m|s)\s*")


@overload
def parse_duration(value: object, *, zero: bool = ..., whole: Literal[True]) -> int: ...
@overload
def parse_duration(value: object, *, zero: bool = ..., whole: Literal[False] = ...) -> float: ...
@overload
def parse_duration(value: object, *, zero: bool = ..., whole: bool) -> int | float: ...
def parse_duration(value: object, *, zero: bool = False, whole: bool = False) -> float:
    """Seconds in `value` (see the module's doc). `zero`: 0 is allowed (usually "off").
    `whole`: only whole seconds, returned as an int. A `ConfigError` (reason only) otherwise."""
    seconds = _seconds(value)
    if seconds < 0 or (seconds == 0 and not zero):
        raise ConfigError("must not be negative" if zero else "must be positive")
    if seconds > MAX_DURATION:
        raise ConfigError("must be at most 100 years")
    if whole:
        if seconds.denominator != 1:
            raise ConfigError("must be a whole number of seconds")
        return int(seconds)
    return float(seconds)


def _seconds(value: object) -> Fraction:
    if isinstance(value, bool):
        pass  # a bool is an int in Python, never a duration
    elif isinstance(value, int):
        return Fraction(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError("must be a finite number of seconds")
        return Fraction(value)
    elif isinstance(value, str):
        return _parse_text(value)
    raise ConfigError(
        f"must be a duration: a number of seconds or a string such as {DURATION_EXAMPLES}"
    )


def _parse_text(text: str) -> Fraction:
    if match := _SECONDS.fullmatch(text):
        return Fraction(match.group(1))
    total = Fraction(0)
    position, previous = 0, -1
    while position < len(text) or previous < 0:
        match = _PART.match(text, position)
        unit = _ORDER.index(match.group(2)) if match else -1
        if match is None or unit <= previous:  # units in decreasing order, each at most once
            shown = repr(text) if len(text) <= 32 else "the value"
            raise ConfigError(
                f"{shown} is not a duration (a number of seconds, or a string such as "
                f"{DURATION_EXAMPLES})"
            )
        total += Fraction(match.group(1)) * _UNITS[match.group(2)]
        position, previous = match.end(), unit
    return total
