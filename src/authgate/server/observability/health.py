"""`/healthz` and `/readyz` (Kubernetes-style probes; no credentials).

`/healthz` says the process answers and touches nothing else (a liveness probe must not fail
because the database is down, or every pod would be restarted at once). `/readyz` answers 200
only when the database answers within `READY_TIMEOUT`, its schema is the one this authgate needs,
and every configured algorithm has an active signing key; 503 otherwise, with `Retry-After`.
Its JSON body names each check and its state, never a connection string or an error message.
An answer is reused for `REUSE_FOR` seconds, so that probes cannot load the database.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from authgate.server.endpoints.responses import json_response
from authgate.server.keys.schedule import active_key
from authgate.server.storage.migrate import head_revision, schema_revision

if TYPE_CHECKING:
    from authgate.server.auth_server import AuthServer

__all__ = ["READY_TIMEOUT", "REUSE_FOR", "health_endpoint", "readiness", "ready_endpoint"]

READY_TIMEOUT = 2.0  # seconds the database has to answer a readiness probe
REUSE_FOR = 1.0  # seconds an answer is reused


async def readiness(server: AuthServer) -> tuple[bool, dict[str, Any]]:
    """(ready, {check: state}) of a running server."""
    checks: dict[str, Any] = {}
    database = getattr(server.storage, "database", None)  # absent in an in-memory store
    if database is not None:
        try:
            revision = await asyncio.wait_for(schema_revision(database), READY_TIMEOUT)
        except Exception:  # noqa: BLE001 - any failure (refused, timeout, pool) means not ready
            checks["database"] = "unavailable"
            checks["schema"] = "unknown"
        else:
            checks["database"] = "ok"
            checks["schema"] = "ok" if revision == head_revision() else "outdated"
    now = server.clock()
    records = server.keys.records()
    checks["signing_keys"] = {
        alg: "ok" if active_key(records, alg, now) is not None else "missing"
        for alg in server.config.keys.algorithms
    }
    ready = all(v == "ok" for k, v in checks.items() if k != "signing_keys") and all(
        v == "ok" for v in checks["signing_keys"].values()
    )
    return ready, checks


async def health_endpoint(request: Request) -> Response:
    """Liveness: the process serves requests."""
    return json_response({"status": "ok"}, 200)


class _Recent:
    """The last readiness answer, reused for `REUSE_FOR` seconds, and one check at a time: a
    flood of probes (or of anyone's requests to a public /readyz) costs the database at most one
    query per `REUSE_FOR`."""

    __slots__ = ("answer", "at", "lock")

    def __init__(self) -> None:
        self.answer: tuple[bool, dict[str, Any]] | None = None
        self.at = 0.0
        self.lock = asyncio.Lock()


async def _recent_readiness(request: Request) -> tuple[bool, dict[str, Any]]:
    state = request.app.state
    recent: _Recent | None = getattr(state, "readiness", None)
    if recent is None:
        recent = state.readiness = _Recent()
    loop = asyncio.get_running_loop()
    async with recent.lock:  # held for at most READY_TIMEOUT (the check's own limit)
        if recent.answer is None or loop.time() - recent.at >= REUSE_FOR:
            recent.answer = await readiness(state.authgate)
            recent.at = loop.time()
        return recent.answer


async def ready_endpoint(request: Request) -> Response:
    """Readiness: 200 when every check passes, else 503 with `Retry-After`."""
    ready, checks = await _recent_readiness(request)
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    response = json_response(body, 200 if ready else 503)
    if not ready:
        response.headers["Retry-After"] = "5"
    return response
