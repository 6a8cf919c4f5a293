"""Settings from environment variables: a declared setting's value written as text.

A variable holds one value as text; `from_environment` turns it into what the TOML file would hold
for that key, so the same reads and checks apply to both (docs/configuration.md):

- strings as they are; integers and numbers in decimal; booleans `true`/`false`/`1`/`0`;
- durations in the one syntax (`30`, `"30s"`, `"1h30m"`), checked when the setting is read;
- lists comma-separated, each item stripped (`RS256, ES256`). An item cannot contain a comma:
  such a list must be set in the file.

Errors name the variable (`ConfigError.key`) and never repeat its value, which may be a secret.
"""

from __future__ import annotations

from typing import Any

from authgate.config.errors import ConfigError
from authgate.config.schema import Setting

__all__ = ["environment_name", "from_environment"]

_TRUE = ("true", "1")
_FALSE = ("false", "0")


def environment_name(prefix: str, path: str) -> str:
    """The variable of the setting at dotted `path`: `http.port` -> `AUTHGATE_HTTP_PORT`."""
    return f"{prefix}_{path.replace('.', '_')}".upper()


def from_environment(setting: Setting, text: str, variable: str) -> Any:
    """`text` as the TOML value of a `setting`, or a ConfigError naming `variable`."""
    value = text.strip()
    match setting.kind:
        case "string" | "duration":
            return value
        case "integer":
            try:
                return int(value, 10)
            except ValueError:
                raise ConfigError("must be an integer", key=variable) from None
        case "number":
            try:
                return float(value)
            except ValueError:
                raise ConfigError("must be a number", key=variable) from None
        case "boolean":
            if value.lower() in _TRUE:
                return True
            if value.lower() in _FALSE:
                return False
            raise ConfigError("must be true, false, 1 or 0", key=variable)
        case "strings":
            items = [item.strip() for item in value.split(",")]
            if not all(items):
                raise ConfigError(
                    f"must be comma-separated {setting.what} (no empty item)", key=variable
                )
            return items
