"""Running the gateway as a process: JSON logging, uvloop, signals, graceful stop."""

from __future__ import annotations

import gc
from pathlib import Path

import uvloop

from authgate import tracing
from authgate.gateway.access_log import configure_logging
from authgate.gateway.config import GatewayConfig
from authgate.gateway.service import GatewayService

__all__ = ["run", "serve", "settle_heap"]


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
    """
    gc.collect()
    gc.freeze()


def run(config: GatewayConfig, config_path: Path | None, *, grace: float = 10.0) -> None:
    """Configure logging and run `serve` on a uvloop event loop."""
    configure_logging(config.settings.log_level)
    if config.settings.tracing:
        tracing.enable("authgate-gateway")
    uvloop.run(serve(config, config_path, grace=grace))
