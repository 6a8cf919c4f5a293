"""The listening sockets, the live connections, timeouts, reloads and graceful shutdown.

One `GatewayServer` accepts client connections and gives each request to the current `Generation`
(configuration, verifier, policy, upstream pools). A reload swaps the generation: requests already
running finish with the old one, new requests use the new one, and the old pools close once their
connections are idle. No connection is dropped. Timeouts are enforced by one periodic sweep over
the live connections instead of a timer per request.

With `[admin] listen` the server also accepts on the admin address, whose connections get only
the admin router's answers (probes and metrics); they share the client limits, the timeouts and
the graceful shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from authgate.gateway.client_protocol import ClientConnection
from authgate.gateway.config import ClientLimits
from authgate.gateway.exchange import ProxyExchange, Router
from authgate.gateway.generation import Generation
from authgate.gateway.request_head import Exchange, RequestHead
from authgate.gateway.upstream_pool import UpstreamConnection

__all__ = ["GatewayServer", "ListenError"]


class ListenError(OSError):
    """An address could not be listened on; the message names it (and the setting)."""


class GatewayServer:
    """Accepts connections and serves them with the current generation."""

    def __init__(self, generation: Generation, *, tick: Callable[[], None] | None = None) -> None:
        self.generation = generation
        self._tick = tick
        self.limits = generation.limits
        self.draining = False
        self._clients: set[ClientConnection] = set()
        self._upstreams: set[UpstreamConnection] = set()
        self._server: asyncio.Server | None = None
        self._admin_server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    # -- ConnectionHost / ConnectionTracker --------------------------------------------------

    def dispatch(self, conn: ClientConnection, head: RequestHead) -> Exchange:
        exchange = ProxyExchange(conn, head)
        exchange.start(self.generation.route)
        return exchange

    def opened(self, conn: ClientConnection) -> None:
        self._clients.add(conn)

    def closed(self, conn: ClientConnection) -> None:
        self._clients.discard(conn)

    def track(self, conn: UpstreamConnection) -> None:
        self._upstreams.add(conn)

    def untrack(self, conn: UpstreamConnection) -> None:
        self._upstreams.discard(conn)

    # -- lifecycle ---------------------------------------------------------------------------

    async def listen(self, host: str, port: int) -> tuple[str, int]:
        """Start accepting; return the bound address (port 0 picks a free one)."""
        self._server = await _bind(lambda: ClientConnection(self), host, port, "listen")
        self._sweeper = asyncio.ensure_future(self._sweep())
        sockname = self._server.sockets[0].getsockname()
        return sockname[0], sockname[1]

    async def listen_admin(self, host: str, port: int, router: Router) -> tuple[str, int]:
        """Accept on the admin address too, answering with `router`; return the bound address."""
        port_host = _AdminPort(self, router)
        self._admin_server = await _bind(
            lambda: ClientConnection(port_host), host, port, "admin.listen", backlog=64
        )
        sockname = self._admin_server.sockets[0].getsockname()
        return sockname[0], sockname[1]

    def swap(self, generation: Generation) -> Generation:
        """Serve new requests with `generation`; return the previous one (to be closed)."""
        old = self.generation
        self.generation = generation
        self.limits = generation.limits
        return old

    @property
    def connection_count(self) -> int:
        """Open client connections."""
        return len(self._clients)

    async def shutdown(self, grace: float) -> None:
        """Stop accepting, let requests in flight finish (up to `grace` seconds), then close."""
        self.draining = True
        for server in (self._server, self._admin_server):
            if server is not None:
                server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while loop.time() < deadline:
            for conn in [c for c in self._clients if c.idle]:
                conn.close()
            if not self._clients:
                break
            await asyncio.sleep(0.05)
        for conn in list(self._clients):
            conn.close()
        for upstream in list(self._upstreams):
            upstream.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.generation.sweep_interval)
            now = loop.time()
            for conn in list(self._clients):
                conn.check_deadline(now)
            for upstream in list(self._upstreams):
                upstream.check_deadline(now)
            if self._tick is not None:
                self._tick()


class _AdminPort:
    """The `ConnectionHost` of the admin listener's connections: the server's, except that each
    request is answered by the admin router (never forwarded)."""

    def __init__(self, server: GatewayServer, router: Router) -> None:
        self._server = server
        self._router = router

    @property
    def limits(self) -> ClientLimits:
        return self._server.limits

    @property
    def draining(self) -> bool:
        return self._server.draining

    def dispatch(self, conn: ClientConnection, head: RequestHead) -> Exchange:
        exchange = ProxyExchange(conn, head)
        exchange.start(self._router)
        return exchange

    def opened(self, conn: ClientConnection) -> None:
        self._server.opened(conn)

    def closed(self, conn: ClientConnection) -> None:
        self._server.closed(conn)


async def _bind(
    factory: Callable[[], ClientConnection],
    host: str,
    port: int,
    setting: str,
    *,
    backlog: int = 4096,
) -> asyncio.Server:
    """A listening server on `host`:`port`; `ListenError` naming the address and the setting."""
    loop = asyncio.get_running_loop()
    try:
        return await loop.create_server(factory, host, port, reuse_address=True, backlog=backlog)
    except OSError as exc:
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        reason = (exc.strerror or str(exc)).lower()
        raise ListenError(f"cannot listen on {shown} ({setting}): {reason}") from None
