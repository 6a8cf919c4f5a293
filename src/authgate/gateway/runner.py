"""Running the gateway as a process: JSON logging, uvloop, signals, graceful stop."""

from __future__ import annotations

from pathlib import Path

import uvloop

from authgate.gateway.access_log import configure_logging
from authgate.gateway.gateway_config import GatewayConfig
from authgate.gateway.service import GatewayService

__all__ = ["run", "serve"]


async def serve(config: GatewayConfig, config_path: Path | None, *, grace: float = 10.0) -> None:
    """Serve until SIGTERM or SIGINT; SIGHUP reloads `config_path`."""
    service = GatewayService(config, config_path=config_path)
    service.install_signal_handlers()
    await service.start()
    await service.wait_stopped()
    await service.stop(grace)


def run(config: GatewayConfig, config_path: Path | None, *, grace: float = 10.0) -> None:
    """Configure logging and run `serve` on a uvloop event loop."""
    configure_logging(config.settings.log_level)
    uvloop.run(serve(config, config_path, grace=grace))
