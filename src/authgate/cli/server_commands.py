"""`authgate serve`, `authgate db …`, `authgate keys …`, and the admin groups (`api`, `client`,
`user`) re-exported for registration.

`serve` with no configuration works at once: SQLite file `authgate.db` and key file
`authgate.secret` in the working directory, issuer `http://127.0.0.1:8000`, signing keys created
on first start.
"""

# Imports inside commands keep `authgate --help` from loading the server stack.
# ruff: noqa: PLC0415

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
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
    table,
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
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="log lines as text or as one JSON object per line; both carry the request id",
)
@config_option
def serve_command(
    *,
    host: str | None,
    port: int | None,
    workers: int | None,
    log_level: str,
    log_format: str,
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
    from authgate.server.observability.logs import logging_config

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

    http = config.http
    processes = workers or http.workers
    if config.admin.listen is not None and processes > 1:
        # Workers cannot share the admin port.
        raise CliError("[admin] listen needs one worker process: use --workers 1 or leave it unset")
    check_listen(host, port)  # a taken port: one line, before the database work
    if config.admin.listen is not None:
        check_listen(*config.admin.address(), "admin.listen")
    run(prepare())
    # uvicorn finishes the requests in flight on SIGTERM, then raises the signal again so that the
    # process dies of it; a graceful stop is a success, like the gateway's: exit status 0.
    signal.signal(signal.SIGTERM, _stopped)
    with shared_metrics(processes):
        uvicorn.run(
            "authgate.server.app:create_app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=processes,
            access_log=False,
            log_config=logging_config(
                log_level.upper(), "json" if log_format == "json" else "text"
            ),
            server_header=False,
            proxy_headers=False,
            # uvicorn bounds only idle keep-alive connections; the protocol adds header and body
            # deadlines, so half-sent requests cannot hold connections open.
            http=protocol_factory(
                header_timeout=http.header_timeout, body_timeout=http.body_timeout
            ),
            timeout_keep_alive=http.keep_alive_timeout,
        )


@contextlib.contextmanager
def shared_metrics(processes: int) -> Iterator[None]:
    """With several worker processes, a directory where each writes its metrics, so that the one
    answering a scrape adds the others' (`observability.worker_metrics`): `AUTHGATE_METRICS_DIR`
    if set (emptied of an earlier run's files), else a new temporary one, removed at the end."""
    from authgate.server.observability.worker_metrics import (
        METRICS_DIR_VARIABLE,
        clear_directory,
    )

    if processes <= 1:
        yield
        return
    given = os.environ.get(METRICS_DIR_VARIABLE)
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        clear_directory(Path(given))
        yield
        return
    directory = tempfile.mkdtemp(prefix="authgate-metrics-")
    os.environ[METRICS_DIR_VARIABLE] = directory
    try:
        yield
    finally:
        del os.environ[METRICS_DIR_VARIABLE]
        shutil.rmtree(directory, ignore_errors=True)


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
    """Signing keys: list the schedule, bring a rotation forward, revoke a key."""


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
        table(
            ("ALG", "STATE", "KID", "SIGNS_FROM", "SIGNS_UNTIL", "REMOVED_AT"),
            (
                (
                    r["alg"],
                    r["state"],
                    r["kid"],
                    iso(r["activate_at"]),
                    iso(r["retire_at"]),
                    iso(r["remove_at"]),
                )
                for r in rows
            ),
        )
        if rows
        else ["no signing keys yet (they are created when the server first starts)"],
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
            storage,
            ServerSecret(config.secret_key),
            config.keys,
            lambda: float(now()),
            audit_store=storage,
        )
        await manager.maintain()
        return await manager.rotate(tuple(algorithms) or None)

    rotations = run(with_storage(config, action))
    emit(
        as_json,
        [{"alg": r.alg, "kid": r.kid, "activate_at": r.activate_at} for r in rotations],
        [f"{r.alg}: key {r.kid} signs from {iso(r.activate_at)}" for r in rotations],
    )


@keys_group.command("revoke")
@click.argument("kid")
@config_option
@json_option
def keys_revoke(*, kid: str, config_path: str | None, as_json: bool) -> None:
    """Revoke a signing key at once (it is compromised).

    The key leaves the JWKS and stops signing; its successor signs at once (the publication lead
    is waived). Every server process follows within a few seconds; outside verifiers keep the
    key until their cached JWKS expires (keys.jwks_max_age). See docs/server.md.
    """
    from authgate.server.keys import KeyManager
    from authgate.server.secret_key import ServerSecret

    if not 0 < len(kid) <= 128 or not kid.isprintable():
        raise CliError(f"no signing key with kid {kid!r}")
    config = load(config_path)

    async def action(storage: Any) -> str:
        manager = KeyManager(
            storage, ServerSecret(config.secret_key), config.keys, lambda: float(now())
        )
        return await manager.revoke(kid)

    successor = run(with_storage(config, action))
    emit(
        as_json,
        {"revoked": kid, "signing": successor or None},
        [f"revoked signing key {kid}"]
        + ([f"key {successor} signs in its place"] if successor else []),
    )
