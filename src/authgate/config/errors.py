"""The one configuration error: which file (or environment variable), which key, and why."""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A configuration value is missing, malformed or unsafe.

    `file` is where the value came from (a file name as given, or None), `key` the setting's
    dotted path (`routes[2].scopes`, or an environment variable's name) and `reason` what is
    wrong. `str()` joins the parts present: `gateway.toml: routes[2].scopes: must be an array of
    strings`. Raised without `key`, the reason is expected to name the setting itself.
    """

    def __init__(self, reason: str, *, key: str | None = None, file: str | None = None) -> None:
        self.reason = reason
        self.key = key
        self.file = file
        super().__init__(str(self))

    def __str__(self) -> str:
        return ": ".join(part for part in (self.file, self.key, self.reason) if part)

    def locate(self, *, file: str | None = None, key: str | None = None) -> ConfigError:
        """Fill in the file and key where they are still unknown (a loader knows the file; a
        frozen dataclass checking itself does not); returns `self`, to be raised again."""
        self.file = self.file or file
        self.key = self.key or key
        self.args = (str(self),)
        return self
