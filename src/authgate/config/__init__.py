"""`authgate.config`: the configuration toolkit shared by the server, the gate, the gateway and the
command line (docs/configuration.md).

- `ConfigError`: the one configuration error, with `file`, `key` and `reason`;
- `Table`: typed reads from a parsed TOML table that refuse unknown keys (`read_toml`,
  `parse_toml` give a file's top-level table);
- `parse_duration`: the one duration syntax (`30`, `"30s"`, `"5m"`, `"1h30m"`, `"500ms"`);
- `Setting`/`read_settings`: a table's keys declared with their kinds;
- `environment_name`/`from_environment`: a declared setting read from an environment variable;
- `authgate.config.admin`: the `[admin]` table (the probes' own listener) of the server and the
  gateway.

It imports nothing else from authgate, so every layer may use it.
"""

from authgate.config.durations import MAX_DURATION, parse_duration
from authgate.config.environment import environment_name, from_environment
from authgate.config.errors import ConfigError
from authgate.config.schema import Setting, read_settings
from authgate.config.table import Table, parse_toml, read_toml

__all__ = [
    "MAX_DURATION",
    "ConfigError",
    "Setting",
    "Table",
    "environment_name",
    "from_environment",
    "parse_duration",
    "parse_toml",
    "read_settings",
    "read_toml",
]
