"""Running the gateway as a process: JSON logging, uvloop, signals, graceful stop."""

from __future__ import annotations

import gc
from pathlib import Path

import uvloop

from authgate import tracing
from authgate.gateway.access_log import configure_logging
from authgate.gateway.config import GatewayConfig
from authgate.gateway.service import GatewayService

__all__ = ["YOUNG_THRESHOLD", "run", "serve", "settle_heap"]

# Net allocations of tracked objects between young collections (Python's default is 700): above
# what the requests of many connections in flight hold at once.
YOUNG_THRESHOLD = 10_000


async def serve(config: GatewayConfig, config_path: Path | None, *, grace: float = 10.0) -> None:
    """Serve until SIGTERM or SIGINT; SIGHUP reloads `config_path`."""
    service = GatewayService(config, config_path=config_path)
    service.install_signal_handlers()
    await service.start()
    settle_heap()
    await service.wait_stopped()
    await service.stop(grace)


def settle_heap() -> None:
    """Take what start-up built (modules, configuration, keys) out of the cyclic collector's reach.

    Those objects live as long as the process, yet each full collection walked them all, and every
    connection waits while it runs (the stall shows as tail latency).
    Frozen, they are never walked again; a full collection now sees only objects made while
    serving. Frozen objects are still freed by reference counting; of the start-up configuration,
    what a reload retires inside reference cycles stays (once: later generations are not frozen).

    The young generation's threshold is raised too: the requests of one event-loop turn (one per
    busy connection) allocate their objects together and free them together, so with many
    connections the default threshold ran a young collection on most turns, walking and promoting
    every request then in flight, although reference counting frees nearly all of it.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)


def run(config: GatewayConfig, config_path: Path | None, *, grace: float = 10.0) -> None:
    """Configure logging and run `serve` on a uvloop event loop."""
    configure_logging(config.settings.log_level)
    if config.settings.tracing:
        tracing.enable("authgate-gateway")
    uvloop.run(serve(config, config_path, grace=grace))
