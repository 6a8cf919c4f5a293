"""Typed reads from parsed TOML tables, with errors that name the key (`routes[2].scopes`).

Every accessor records the key as known, present or not; `finish()` then refuses any key that no
accessor asked about, which is how typos are caught.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from authgate.verifier.config import ConfigError

__all__ = ["Table"]

_REQUIRED: Any = object()


class Table:
    """One TOML table and the keys read from it so far."""

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where or 'configuration'} must be a table")
        self.data = data
        self.where = where
        self.consumed: set[str] = set()

    def key_path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def take(self, key: str, default: Any = _REQUIRED) -> Any:
        self.consumed.add(key)
        if key in self.data:
            return self.data[key]
        if default is _REQUIRED:
            raise ConfigError(f"{self.key_path(key)} is required")
        return default

    def _typed(self, key: str, default: Any, check: type | tuple[type, ...], what: str) -> Any:
        value = self.take(key, default)
        if value is default and key not in self.data:
            return value
        if isinstance(value, bool) and bool not in (
            check if isinstance(check, tuple) else (check,)
        ):
            raise ConfigError(f"{self.key_path(key)} must be {what}")
        if not isinstance(value, check):
            raise ConfigError(f"{self.key_path(key)} must be {what}")
        return value

    def string(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self._typed(key, default, str, "a string")
        if isinstance(value, str) and key in self.data and not value:
            raise ConfigError(f"{self.key_path(key)} must not be empty")
        return value

    def strings(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self._typed(key, default, list, "an array of strings")
        if key in self.data and not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{self.key_path(key)} must be an array of non-empty strings")
        return value

    def array(self, key: str, default: Any = _REQUIRED) -> Any:
        return self._typed(key, default, list, "an array")

    def number(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self._typed(key, default, (int, float), "a number")
        return float(value) if isinstance(value, int | float) else value

    def integer(self, key: str, default: Any = _REQUIRED) -> Any:
        return self._typed(key, default, int, "an integer")

    def boolean(self, key: str, default: Any = _REQUIRED) -> Any:
        return self._typed(key, default, bool, "true or false")

    def choice(self, key: str, options: Sequence[str], default: Any = _REQUIRED) -> Any:
        value = self.string(key, default)
        if key in self.data and value not in options:
            raise ConfigError(f"{self.key_path(key)} must be one of: {', '.join(options)}")
        return value

    def table(self, key: str) -> Table | None:
        value = self.take(key, None)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise ConfigError(f"{self.key_path(key)} must be a table")
        return Table(value, self.key_path(key))

    def tables(self, key: str) -> list[Table]:
        """An array of tables (`[[key]]`); absent means empty."""
        value = self.take(key, [])
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise ConfigError(f"{self.key_path(key)} must be an array of tables ([[{key}]])")
        return [Table(v, f"{self.key_path(key)}[{i}]") for i, v in enumerate(value)]

    def finish(self) -> None:
        """Refuse keys that no accessor read."""
        unknown = sorted(set(self.data) - self.consumed)
        if unknown:
            names = ", ".join(self.key_path(k) for k in unknown)
            raise ConfigError(f"unknown configuration key(s): {names}")
