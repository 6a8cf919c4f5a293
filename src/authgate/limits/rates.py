"""Rates (`"10/minute"`, with a burst) and named limits.

A rate is `count/period`: `"10/minute"`, `"100/second"`, `"6000/hour"`, `"500/day"`, or with a
multiple, `"20/5 minutes"`. Its burst is how many requests may arrive back to back; it defaults to
a tenth of the count (at least 1), so that no span of one period admits more than about 1.1 times
the count (`count + burst - 1`). See `gcra` for what the pair guarantees.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, field

__all__ = ["FailMode", "Limit", "Rate", "default_burst", "parse_rate"]

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
# ASCII digits only: `\d` would also take the digits of other scripts.
_RATE = re.compile(
    r"(?P<count>[0-9]+)\s*/\s*(?:(?P<multiple>[0-9]+)\s*)?(?P<unit>second|minute|hour|day)s?",
    re.ASCII,
)
MAX_COUNT = 1_000_000_000
MAX_PERIOD = 366 * 86400
# A bucket (burst x interval) longer than this is refused: it bounds every key's lifetime in the
# store and keeps the Redis script's arithmetic exact in doubles.
MAX_BUCKET_SECONDS = 366 * 86400
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}", re.ASCII)


@dataclass(frozen=True, slots=True)
class Rate:
    """`count` requests per `period` seconds, at most `burst` of them back to back."""

    count: int
    period: int
    burst: int
    interval_us: int = field(init=False, repr=False, compare=False)
    # GCRA's tolerance, (burst - 1) * interval: computed once, read on every decision.
    tolerance_us: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_COUNT:
            raise ValueError(f"rate count must be 1..{MAX_COUNT}, not {self.count}")
        if not 1 <= self.period <= MAX_PERIOD:
            raise ValueError(f"rate period must be 1..{MAX_PERIOD} seconds, not {self.period}")
        if not 1 <= self.burst <= MAX_COUNT:
            raise ValueError(f"burst must be 1..{MAX_COUNT}, not {self.burst}")
        # Rounded up: the sustained rate never exceeds count/period.
        interval = math.ceil(self.period * 1_000_000 / self.count)
        if interval * self.burst > MAX_BUCKET_SECONDS * 1_000_000:
            raise ValueError(
                f"burst {self.burst} at {self.count}/{self.period}s fills over more than a year"
            )
        object.__setattr__(self, "interval_us", interval)
        object.__setattr__(self, "tolerance_us", (self.burst - 1) * interval)

    def __str__(self) -> str:
        text = f"{self.count}/{self.period}s"
        return text if self.burst == default_burst(self.count) else f"{text} burst {self.burst}"


def default_burst(count: int) -> int:
    """A tenth of the count, at least 1: short bursts pass, and a period holds at most
    `count + burst - 1` (a bucket of a whole period would let nearly twice the count through)."""
    return max(1, count // 10)


def parse_rate(text: str, *, burst: int | None = None) -> Rate:
    """The `Rate` for `"10/minute"` and the like; `burst` defaults to `default_burst(count)`.

    ValueError names the text and what is wrong with it.
    """
    if not isinstance(text, str):
        raise ValueError(f"rate {text!r}: expected text such as '10/minute'")  # noqa: TRY004
    match = _RATE.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(
            f"rate {text!r}: expected COUNT/PERIOD such as '10/minute', '100/second', "
            "'6000/hour' or '20/5 minutes' (units: second, minute, hour, day)"
        )
    count = int(match["count"])
    multiple = int(match["multiple"]) if match["multiple"] is not None else 1
    if burst is not None and (isinstance(burst, bool) or not isinstance(burst, int)):
        raise ValueError(f"rate {text!r}: burst must be a whole number, not {burst!r}")
    if multiple == 0:
        raise ValueError(f"rate {text!r}: the period must not be zero")
    try:
        return Rate(
            count,
            multiple * _UNITS[match["unit"]],
            default_burst(count) if burst is None else burst,
        )
    except ValueError as exc:
        raise ValueError(f"rate {text!r}: {exc}") from None


class FailMode(enum.StrEnum):
    """What a limit answers while its store cannot be reached."""

    OPEN = "open"  # allow, uncounted
    CLOSED = "closed"  # refuse with 503 and Retry-After


@dataclass(frozen=True, slots=True)
class Limit:
    """A named rate: the name appears in store keys, metrics and the RateLimit headers.

    Names are lower-case ASCII (`[a-z][a-z0-9_-]{0,31}`), so they are valid everywhere they go.
    """

    name: str
    rate: Rate
    on_store_failure: FailMode = FailMode.OPEN
    # The metric labels of a counted decision, `(name, "allowed")` and `(name, "limited")`:
    # built once, since every counted request increments one of them.
    allowed_label: tuple[str, str] = field(init=False, repr=False, compare=False)
    limited_label: tuple[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError(
                f"limit name {self.name!r}: expected lower-case letters, digits, '_' or '-' "
                "(at most 32, starting with a letter)"
            )
        object.__setattr__(self, "on_store_failure", FailMode(self.on_store_failure))
        object.__setattr__(self, "allowed_label", (self.name, "allowed"))
        object.__setattr__(self, "limited_label", (self.name, "limited"))
