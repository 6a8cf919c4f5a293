"""Typed reads from parsed TOML tables, with errors that name the file and the key
(`gateway.toml: routes[2].scopes: must be an array of strings`).

Every accessor records the key as known, present or not; `finish()` then refuses any key that no
accessor asked about, which is how typos are caught.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from authgate.config.durations import parse_duration
from authgate.config.errors import ConfigError

__all__ = ["Table", "parse_toml", "read_toml"]

_REQUIRED: Any = object()


class Table:
    """One TOML table of `file`, at `where` (`""` for the top level), and the keys read so far."""

    def __init__(self, data: Mapping[str, Any], where: str, *, file: str | None = None) -> None:
        self.data = data
        self.where = where
        self.file = file
        self.consumed: set[str] = set()
        if not isinstance(data, Mapping):
            raise self.error("must be a table")

    def key_path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def error(self, reason: str, key: str | None = None) -> ConfigError:
        """An error about `key` of this table (or the table itself)."""
        return ConfigError(
            reason, key=self.key_path(key) if key else (self.where or None), file=self.file
        )

    @contextmanager
    def checking(self) -> Iterator[None]:
        """Errors raised inside (a dataclass validating itself) are located at this table."""
        try:
            yield
        except ConfigError as exc:
            raise exc.locate(file=self.file, key=self.where or None) from None
        except (ValueError, TypeError) as exc:
            raise self.error(str(exc)) from None

    def take(self, key: str, default: Any = _REQUIRED) -> Any:
        self.consumed.add(key)
        if key in self.data:
            return self.data[key]
        if default is _REQUIRED:
            raise self.error("is required", key)
        return default

    def _typed(self, key: str, default: Any, check: type | tuple[type, ...], what: str) -> Any:
        value = self.take(key, default)
        if value is default and key not in self.data:
            return value
        if isinstance(value, bool) and bool not in (
            check if isinstance(check, tuple) else (check,)
        ):
            raise self.error(f"must be {what}", key)
        if not isinstance(value, check):
            raise self.error(f"must be {what}", key)
        return value

    def string(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self._typed(key, default, str, "a string")
        if isinstance(value, str) and key in self.data and not value:
            raise self.error("must not be empty", key)
        return value

    def strings(self, key: str, default: Any = _REQUIRED, *, what: str = "strings") -> Any:
        """An array of non-empty strings; `what` names the items in messages."""
        value = self._typed(key, default, list, f"an array of {what}")
        if key in self.data and not all(isinstance(v, str) and v for v in value):
            raise self.error(f"must be an array of {what} (non-empty strings)", key)
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

    def duration(
        self, key: str, default: Any = _REQUIRED, *, zero: bool = False, whole: bool = False
    ) -> Any:
        """Seconds, from a number or a string such as "30s" (`authgate.config.durations`)."""
        value = self.take(key, default)
        if key not in self.data:
            return value
        try:
            return parse_duration(value, zero=zero, whole=whole)
        except ConfigError as exc:
            raise self.error(exc.reason, key) from None

    def choice(self, key: str, options: Sequence[str], default: Any = _REQUIRED) -> Any:
        value = self.string(key, default)
        if key in self.data and value not in options:
            raise self.error(f"must be one of: {', '.join(options)}", key)
        return value

    def table(self, key: str) -> Table | None:
        value = self.take(key, None)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self.error("must be a table", key)
        return Table(value, self.key_path(key), file=self.file)

    def tables(self, key: str) -> list[Table]:
        """An array of tables (`[[key]]`); absent means empty."""
        value = self.take(key, [])
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise self.error(f"must be an array of tables ([[{key}]])", key)
        return [Table(v, f"{self.key_path(key)}[{i}]", file=self.file) for i, v in enumerate(value)]

    def finish(self) -> None:
        """Refuse keys that no accessor read (the first in sorted order is the error's key)."""
        unknown = sorted(set(self.data) - self.consumed)
        if unknown:
            others = ", ".join(self.key_path(k) for k in unknown[1:])
            reason = "unknown configuration key" + (f" (also unknown: {others})" if others else "")
            raise self.error(reason, unknown[0])


def read_toml(path: str | os.PathLike[str]) -> Table:
    """The top-level table of the TOML file at `path`; errors name the file as given."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read the configuration file: {exc.strerror}", file=str(path)
        ) from None
    except UnicodeDecodeError:
        raise ConfigError("the configuration file is not UTF-8", file=str(path)) from None
    return parse_toml(text, str(path))


def parse_toml(text: str, file: str | None = None) -> Table:
    """The top-level table of TOML `text` read from `file` (for messages)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the configuration file is not valid TOML: {exc}", file=file) from None
    return Table(data, "", file=file)
