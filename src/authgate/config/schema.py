"""Declared settings: what kind of value each key of a table holds.

A loader lists a section's keys with their kind (`{"lock_timeout": Setting.duration(), ...}`)
and `read_settings` reads the keys present; so a value is a duration because its declaration says
so, and the list of every setting exists as data (for overrides from other sources, or to show
where each value came from).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from authgate.config.table import Table

__all__ = ["Setting", "read_settings"]

Kind = Literal["duration", "integer", "number", "string", "strings", "boolean"]


@dataclass(frozen=True, slots=True)
class Setting:
    """One key's kind. Durations: `zero` allows 0 (usually "off"), `whole` allows only whole
    seconds (an int). `positive`: an integer must be greater than zero. `what`: what the items
    of a `strings` array are, for messages."""

    kind: Kind
    zero: bool = False
    whole: bool = False
    positive: bool = False
    what: str = "strings"

    @classmethod
    def duration(cls, *, zero: bool = False, whole: bool = False) -> Setting:
        return cls("duration", zero=zero, whole=whole)

    @classmethod
    def strings(cls, what: str = "strings") -> Setting:
        return cls("strings", what=what)

    def read(self, table: Table, key: str) -> Any:
        """The value of `key`, which must be present in `table`."""
        match self.kind:
            case "duration":
                return table.duration(key, zero=self.zero, whole=self.whole)
            case "integer":
                value = table.integer(key)
                if self.positive and value <= 0:
                    raise table.error("must be greater than zero", key)
                return value
            case "number":
                return table.number(key)
            case "string":
                return table.string(key)
            case "strings":
                return tuple(table.strings(key, what=self.what))
            case "boolean":
                return table.boolean(key)


def read_settings(table: Table, schema: Mapping[str, Setting]) -> dict[str, Any]:
    """The values of the keys of `schema` present in `table` (absent ones keep their defaults);
    any other key is refused."""
    values = {key: setting.read(table, key) for key, setting in schema.items() if key in table.data}
    table.finish()
    return values
