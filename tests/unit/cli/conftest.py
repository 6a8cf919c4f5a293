"""The command tests' fixtures (keys on disk, a runner): `support.cli_fixtures`."""

from tests.support.cli_fixtures import authgate_exe, keys, run

__all__ = ["authgate_exe", "keys", "run"]
