"""`authgate config show|check|schema`: the server's effective configuration with each value's
source (secrets redacted), a check of the configuration and the database, and the settings
reference of docs/server.md."""

# Imports inside commands keep `authgate --help` from loading the server stack.
# ruff: noqa: PLC0415

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from authgate.cli.exit_codes import CliError, ExitCode
from authgate.cli.server_shell import config_option, json_option

if TYPE_CHECKING:
    from authgate.server.config import Config
    from authgate.server.config_loader import LoadedConfig

__all__ = ["config_group"]

# `config check` gives the database this long in all (connect, schema, secret key check).
_CHECK_TIMEOUT = 10.0


@click.group("config")
def config_group() -> None:
    """The server's configuration: show it, check it, list every setting."""


def _load(config_path: str | None) -> LoadedConfig:
    from authgate.config import ConfigError
    from authgate.server.config_loader import load_config_sources

    try:
        return load_config_sources(config_path, os.environ)
    except ConfigError as exc:
        raise CliError(f"configuration: {exc}", ExitCode.CONFIG) from None
    except OSError as exc:  # the secret key file
        raise CliError(f"configuration: {exc.strerror or exc}", ExitCode.CONFIG) from None


@config_group.command("show")
@config_option
@json_option
def config_show(*, config_path: str | None, as_json: bool) -> None:
    """Print every setting's effective value and its source (default, file or environment).

    Secrets are redacted: the secret key, a database URL's password, any *secret* value.
    """
    from authgate.server.config_report import effective_settings

    entries = effective_settings(_load(config_path))
    if as_json:
        click.echo(json.dumps([asdict(e) for e in entries], indent=2))
        return
    for e in entries:
        where = e.source if e.origin is None else f"{e.source} ({e.origin})"
        click.echo(f"{e.path} = {json.dumps(e.value)}    # {where}")


@config_group.command("check")
@config_option
def config_check(*, config_path: str | None) -> None:
    """Check the configuration, then connect to the database (10 s at most) and check its schema
    and the secret key. Exit status 0, 78 (configuration), 69 (database) or 1 (docs/cli.md)."""
    loaded = _load(config_path)
    config = loaded.config
    overridden = sum(1 for s in loaded.sources.values() if s != "file")
    click.echo(
        f"configuration: valid ({loaded.file or 'no file'}; "
        f"{overridden} settings from the environment)"
    )
    click.echo(f"database: {_check_database(config)}")


def _check_database(config: Config) -> str:
    from sqlalchemy.engine import make_url

    from authgate.server.auth_server import (
        SecretKeyMismatchError,
        check_secret_key,
        open_storage,
    )
    from authgate.server.secret_key import ServerSecret
    from authgate.server.storage.errors import (
        DatabaseUnavailableError,
        database_errors,
        describe_database_error,
        where,
    )
    from authgate.server.storage.migrate import SchemaVersionError

    url = config.database_url
    sqlite_file = make_url(url).database if url.startswith("sqlite:") else None
    if sqlite_file and not Path(sqlite_file).exists():
        # Connecting would create it; `serve` or `db upgrade` does that with the schema.
        return f"{where(url)}: not created yet (authgate serve or db upgrade creates it)"
    bounded = replace(
        config, database=replace(config.database, pool_timeout=int(_CHECK_TIMEOUT / 2))
    )

    async def check() -> None:
        async with database_errors(url):
            storage = await open_storage(bounded, migrate_sqlite=False)
            try:
                await check_secret_key(storage, ServerSecret(config.secret_key))
            finally:
                await storage.close()

    try:
        asyncio.run(asyncio.wait_for(check(), _CHECK_TIMEOUT))
    except DatabaseUnavailableError as exc:
        raise CliError(str(exc), ExitCode.DATABASE) from None
    except TimeoutError as exc:
        raise CliError(describe_database_error(exc, url), ExitCode.DATABASE) from None
    except SchemaVersionError as exc:
        raise CliError(f"{where(url)}: {exc}", ExitCode.DATABASE) from None
    except SecretKeyMismatchError as exc:
        raise CliError(str(exc), ExitCode.CONFIG) from None
    return f"{where(url)}: reachable, schema up to date, secret key matches"


@config_group.command("schema")
@click.option("--markdown", is_flag=True, required=True, help="the table of docs/server.md")
def config_schema(*, markdown: bool) -> None:
    """Print every setting with its environment variable, kind, default and meaning."""
    from authgate.server.config_report import markdown_table

    click.echo(markdown_table(), nl=False)
