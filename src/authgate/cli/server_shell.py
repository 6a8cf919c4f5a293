"""Shared plumbing of the server commands: `--config`, `--json`, opening the store, printing.

Every server command reads the same configuration (`--config FILE` or `AUTHGATE_CONFIG`, then the
`AUTHGATE_*` environment variables). Heavy imports stay inside functions so `authgate --help` is
fast.
"""

# Imports inside commands keep `authgate --help` from loading the server stack.
# ruff: noqa: PLC0415

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from authgate.cli.exit_codes import CliError, ExitCode

if TYPE_CHECKING:
    from authgate.server.config import Config
    from authgate.server.storage import SqlStorage

__all__ = [
    "config_option",
    "emit",
    "json_option",
    "load",
    "now",
    "run",
    "table",
    "with_storage",
]

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="TOML configuration file (default: $AUTHGATE_CONFIG)",
)
json_option = click.option("--json", "as_json", is_flag=True, help="machine-readable JSON output")


def load(config_path: str | None) -> Config:
    """The configuration, or a one-line error."""
    from authgate.config import ConfigError
    from authgate.server.config_loader import load_config

    try:
        return load_config(config_path, os.environ)
    except ConfigError as exc:
        raise CliError(f"configuration: {exc}", ExitCode.CONFIG) from None
    except OSError as exc:  # the secret key file
        raise CliError(f"configuration: {exc.strerror or exc}", ExitCode.CONFIG) from None


def now() -> int:
    """The current time in whole seconds."""
    return int(time.time())


def run(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run an admin coroutine, turning expected failures into one-line errors."""
    from sqlalchemy.exc import DBAPIError

    from authgate.server.admin import AdminError
    from authgate.server.auth_server import SecretKeyMismatchError
    from authgate.server.secret_key import SealError
    from authgate.server.storage import AlreadyExistsError
    from authgate.server.storage.errors import DatabaseUnavailableError, describe_database_error
    from authgate.server.storage.migrate import SchemaVersionError

    try:
        return asyncio.run(coro)
    except (DatabaseUnavailableError, SchemaVersionError) as exc:
        raise CliError(str(exc), ExitCode.DATABASE) from None
    except (
        AdminError,
        AlreadyExistsError,
        LookupError,
        SecretKeyMismatchError,
        SealError,
    ) as exc:
        raise CliError(str(exc)) from None
    except (DBAPIError, OSError) as exc:
        raise CliError(describe_database_error(exc, None), ExitCode.DATABASE) from None


async def with_storage(config: Config, action: Callable[[SqlStorage], Awaitable[_T]]) -> _T:
    """Open the configured store (upgrading SQLite), check the secret key, run `action`."""
    from authgate.server.auth_server import check_secret_key, open_storage
    from authgate.server.secret_key import ServerSecret

    storage = await open_storage(config)
    try:
        # Refuse before anything is hashed or sealed with a key the servers do not share.
        await check_secret_key(storage, ServerSecret(config.secret_key))
        return await action(storage)
    finally:
        await storage.close()


def emit(as_json: bool, data: Any, lines: Iterable[str]) -> None:
    """Print `data` as JSON, or the human-readable `lines`."""
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        for line in lines:
            click.echo(line)


def table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    """Tab-separated text lines of a list command: a header row naming the columns, then rows."""
    return ["\t".join(header), *("\t".join(row) for row in rows)]


def iso(timestamp: int | None) -> str:
    """A timestamp as UTC ISO 8601, or '-'."""
    if timestamp is None:
        return "-"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
