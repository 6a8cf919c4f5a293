"""`authgate gateway --config gateway.toml`: the API gateway and forward-auth endpoint."""

# ruff: noqa: PLC0415 - the gateway's imports (uvloop, httptools, prometheus) load only when it runs

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from authgate.cli.durations import duration_option
from authgate.cli.exit_codes import CliError, ExitCode
from authgate.cli.listen import check_listen


@click.command("gateway")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The gateway's TOML file (see docs/gateway.md).",
)
@click.option("--listen", help="Override `listen` (host:port; port 0 picks a free port).")
@click.option("--check", is_flag=True, help="Validate the configuration and exit.")
@click.option(
    "--grace",
    default="10s",
    show_default=True,
    callback=duration_option(zero=True),
    metavar="DURATION",
    help="Time to finish requests on stop.",
)
def gateway_command(config_path: Path, listen: str | None, check: bool, grace: float) -> None:
    """Run the authenticating reverse proxy. SIGHUP reloads the configuration."""
    from authgate.config import ConfigError
    from authgate.gateway.config_loader import load_gateway_config
    from authgate.gateway.runner import run
    from authgate.gateway.server import ListenError

    try:
        config = load_gateway_config(config_path)
    except ConfigError as exc:
        raise CliError(f"invalid configuration: {exc}", ExitCode.CONFIG) from None
    if check:
        click.echo(f"{config_path}: the configuration is valid ({len(config.routes)} routes)")
        return
    if listen is not None:
        host, sep, port = listen.rpartition(":")
        if not sep or not port.isdigit() or int(port) > 65535:
            raise click.BadParameter("must look like host:port", param_hint="--listen")
        settings = replace(config.settings, host=host.strip("[]"), port=int(port))
        config = replace(config, settings=settings)
    settings = config.settings
    check_listen(settings.host, settings.port)
    if settings.admin.listen is not None:
        admin = settings.admin.address()
        if admin == (settings.host, settings.port):
            raise CliError(
                f"cannot listen on {settings.admin.listen} (admin.listen): it is also `listen`",
                ExitCode.LISTEN,
            )
        check_listen(*admin, "admin.listen")
    try:
        run(config, config_path, grace=grace)
    except ListenError as exc:  # taken between the check and the bind
        raise CliError(str(exc), ExitCode.LISTEN) from None
