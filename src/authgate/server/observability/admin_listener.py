"""The separate listener of `[admin] listen`: `/healthz`, `/readyz` and `/metrics` on their own
address (a loopback or cluster-internal port), so that metrics need not be exposed with the
public endpoints (as Keycloak's management interface). It runs inside the server process, on the
same event loop, and reads the same `AuthServer` and counters.

`authgate serve` allows it with one worker process only: workers cannot share one port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from authgate.config.admin import Probe
from authgate.server.observability.health import health_endpoint, ready_endpoint

if TYPE_CHECKING:
    from authgate.config.admin import AdminSettings
    from authgate.server.auth_server import AuthServer

__all__ = ["AdminListener", "public_probe_routes"]

_Endpoint = Callable[[Request], Awaitable[Response]]


def public_probe_routes(settings: AdminSettings, metrics: _Endpoint) -> list[Route]:
    """The probes on the public port: all three, or only `/healthz` when the admin listener
    serves them (the rule of `authgate.config.admin`)."""
    probes = {
        Probe.HEALTH: Route("/healthz", health_endpoint, methods=["GET"]),
        Probe.READY: Route("/readyz", ready_endpoint, methods=["GET"]),
        Probe.METRICS: Route("/metrics", metrics, methods=["GET"]),
    }
    return [route for probe, route in probes.items() if settings.on_public_port(probe)]


START_TIMEOUT = 10.0  # seconds to bind the port
STOP_TIMEOUT = 5.0  # seconds for open scrapes to finish at shutdown


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to the main one."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class AdminListener:
    """Serves the probes and metrics on `host:port` while running."""

    def __init__(
        self,
        host: str,
        port: int,
        server: AuthServer,
        metrics: _Endpoint,
    ) -> None:
        app = Starlette(
            routes=[
                Route("/healthz", health_endpoint, methods=["GET"]),
                Route("/readyz", ready_endpoint, methods=["GET"]),
                Route("/metrics", metrics, methods=["GET"]),
            ]
        )
        app.state.authgate = server
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            access_log=False,
            log_config=None,
            server_header=False,
            timeout_keep_alive=5,
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, settings: AdminSettings, server: AuthServer, metrics: _Endpoint
    ) -> AdminListener | None:
        """The started listener of `settings`, or None when `listen` is unset."""
        if settings.listen is None:
            return None
        host, port = settings.address()
        listener = cls(host, port, server, metrics)
        await listener.start()
        return listener

    async def start(self) -> None:
        """Bind and serve; `OSError` if the address cannot be served within `START_TIMEOUT`."""
        self._task = asyncio.create_task(self._serve())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        while not self._server.started:
            if self._task.done() or loop.time() > deadline:
                await self.stop()
                raise OSError("[admin] listen: the address could not be served")
            await asyncio.sleep(0.01)

    async def _serve(self) -> None:
        try:
            await self._server.serve()
        except SystemExit:  # uvicorn's answer to a port it cannot bind; it already logged why
            return  # (a SystemExit leaving a task would stop the whole event loop)

    async def stop(self) -> None:
        """Close the port; give open scrapes `STOP_TIMEOUT` to finish."""
        task, self._task = self._task, None
        if task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(task, STOP_TIMEOUT)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
