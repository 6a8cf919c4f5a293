"""`authgate serve`, `authgate db …`, `authgate keys …`, and the admin groups (`api`, `client`,
`user`) re-exported for registration.

`serve` with no configuration works at once: SQLite file `authgate.db` and key file
`authgate.secret` in the working directory, issuer `http://127.0.0.1:8000`, signing keys created
on first start.
"""

# Imports inside commands keep `authgate --help` from loading the server stack.
# ruff: noqa: PLC0415

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import click

from authgate.cli.exit_codes import CliError
from authgate.cli.listen import check_listen
from authgate.cli.server_admin_commands import api_group, client_group
from authgate.cli.server_shell import (
    config_option,
    emit,
    iso,
    json_option,
    load,
    now,
    run,
    with_storage,
)
from authgate.cli.server_user_commands import user_group

__all__ = [
    "api_group",
    "client_group",
    "db_group",
    "keys_group",
    "serve_command",
    "user_group",
]


def _logging_config(level: str) -> dict[str, Any]:
    # Given to every uvicorn worker; uvicorn's own access log is off (it would print query
    # strings); authgate.access logs method, path, status and client_id only.
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "authgate": {"handlers": ["stderr"], "level": level, "propagate": False},
        },
    }


def _stopped(signum: int, frame: object) -> None:
    raise SystemExit(0)


@click.command("serve")
@click.option("--host", help="address to listen on (default 127.0.0.1 or [http] host)")
@click.option("--port", type=click.IntRange(0, 65535), help="port (default 8000 or [http] port)")
@click.option("--workers", type=click.IntRange(1, 256), help="worker processes (default 1)")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@config_option
def serve_command(
    *,
    host: str | None,
    port: int | None,
    workers: int | None,
    log_level: str,
    config_path: str | None,
) -> None:
    """Run the authorization server.

    \b
    Examples:
      authgate serve
      AUTHGATE_DATABASE_URL=postgresql://auth@db/auth authgate serve --workers 4
    """
    import uvicorn

    from authgate.server.auth_server import AuthServer
    from authgate.server.config import DEFAULT_ISSUER
    from authgate.server.http.serve_protocol import protocol_factory

    config = load(config_path)
    if config_path:
        # Workers load the configuration again from the environment.
        os.environ["AUTHGATE_CONFIG"] = str(Path(config_path).resolve())
    host = host or config.http.host
    port = port if port is not None else config.http.port
    if config.issuer == DEFAULT_ISSUER and "AUTHGATE_ISSUER" not in os.environ:
        # Zero configuration: the issuer is where this server listens.
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
        shown = f"[{shown}]" if ":" in shown else shown
        os.environ["AUTHGATE_ISSUER"] = f"http://{shown}:{port}"
        config = load(config_path)

    async def prepare() -> None:
        # Upgrade SQLite / check PostgreSQL, check the secret key, create first keys: once,
        # before the workers start, so a misconfiguration fails here with one clear line.
        server = await AuthServer.start(config)
        await server.close()

    check_listen(host, port)  # a taken port: one line, before the database work
    run(prepare())
    http = config.http
    # uvicorn finishes the requests in flight on SIGTERM, then raises the signal again so that the
    # process dies of it; a graceful stop is a success, like the gateway's: exit status 0.
    signal.signal(signal.SIGTERM, _stopped)
    uvicorn.run(
        "authgate.server.app:create_app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers or http.workers,
        access_log=False,
        log_config=_logging_config(log_level.upper()),
        server_header=False,
        proxy_headers=False,
        # uvicorn bounds only idle keep-alive connections; the protocol adds header and body
        # deadlines, so half-sent requests cannot hold connections open.
        http=protocol_factory(header_timeout=http.header_timeout, body_timeout=http.body_timeout),
        timeout_keep_alive=http.keep_alive_timeout,
    )


# -- db -------------------------------------------------------------------------------------------


@click.group("db")
def db_group() -> None:
    """Database schema migrations."""


@db_group.command("upgrade")
@config_option
@json_option
def db_upgrade(*, config_path: str | None, as_json: bool) -> None:
    """Bring the database schema to this version's revision."""
    from authgate.server.storage import Database
    from authgate.server.storage.errors import database_errors
    from authgate.server.storage.migrate import upgrade

    config = load(config_path)

    async def action() -> tuple[str | None, str]:
        db = Database(config.database_url)
        try:
            async with database_errors(config.database_url):
                return await upgrade(db)
        finally:
            await db.close()

    before, after = run(action())
    emit(
        as_json,
        {"from": before, "to": after},
        [f"schema at {after}" + ("" if before == after else f" (was {before or 'empty'})")],
    )


@db_group.command("status")
@config_option
@json_option
def db_status(*, config_path: str | None, as_json: bool) -> None:
    """Show the schema revision and the one this version needs."""
    from authgate.server.storage import Database
    from authgate.server.storage.errors import database_errors
    from authgate.server.storage.migrate import head_revision, schema_revision

    config = load(config_path)

    async def action() -> str | None:
        db = Database(config.database_url)
        try:
            async with database_errors(config.database_url):
                return await schema_revision(db)
        finally:
            await db.close()

    current, head = run(action()), head_revision()
    emit(
        as_json,
        {"current": current, "head": head, "up_to_date": current == head},
        [f"current: {current or 'empty'}", f"needed:  {head}"],
    )


# -- keys -----------------------------------------------------------------------------------------


@click.group("keys")
def keys_group() -> None:
    """Signing keys: list the schedule, bring a rotation forward."""


@keys_group.command("list")
@config_option
@json_option
def keys_list(*, config_path: str | None, as_json: bool) -> None:
    """List signing keys with their state and schedule."""
    config = load(config_path)
    records = run(with_storage(config, lambda s: s.list_signing_keys()))
    at = now()
    rows: list[dict[str, Any]] = [
        {
            "kid": r.kid,
            "alg": r.alg,
            "state": r.state(at),
            "created_at": r.created_at,
            "activate_at": r.activate_at,
            "retire_at": r.retire_at,
            "remove_at": r.remove_at,
        }
        for r in records
    ]
    emit(
        as_json,
        rows,
        [
            f"{r['alg']:6} {r['state']:9} {r['kid']}  signs {iso(r['activate_at'])} .. "
            f"{iso(r['retire_at'])}  removed {iso(r['remove_at'])}"
            for r in rows
        ]
        or ["no signing keys yet (they are created when the server first starts)"],
    )


@keys_group.command("rotate")
@click.option("--alg", "algorithms", multiple=True, help="only this algorithm (repeatable)")
@config_option
@json_option
def keys_rotate(*, algorithms: tuple[str, ...], config_path: str | None, as_json: bool) -> None:
    """Bring the next rotation forward, as early as verifiers allow.

    The next key signs only once it has been published for the JWKS max-age (plus the servers'
    reload interval), so no verifier ever sees a token signed by a key it could not have fetched.
    """
    from authgate.server.keys import KeyManager
    from authgate.server.secret_key import ServerSecret

    config = load(config_path)
    unknown = [a for a in algorithms if a not in config.keys.algorithms]
    if unknown:
        raise CliError(f"--alg must be one of {', '.join(config.keys.algorithms)}")

    async def action(storage: Any) -> Any:
        manager = KeyManager(
            storage, ServerSecret(config.secret_key), config.keys, lambda: float(now())
        )
        await manager.maintain()
        return await manager.rotate(tuple(algorithms) or None)

    rotations = run(with_storage(config, action))
    emit(
        as_json,
        [{"alg": r.alg, "kid": r.kid, "activate_at": r.activate_at} for r in rotations],
        [f"{r.alg}: key {r.kid} signs from {iso(r.activate_at)}" for r in rotations],
    )
