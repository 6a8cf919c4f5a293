"""`authgate.gateway`: the authenticating reverse proxy and forward-auth endpoint behind
`authgate gateway` (RFC 9110 §7.6, RFC 9112, RFC 6750 §3, RFC 6455 §4).

Built on the gate (`authgate.gate`: verifier and policy); no web framework on the request path:
a raw asyncio protocol on uvloop, httptools parsing both ways, and its own upstream keep-alive
pool. See docs/gateway.md.

- `load_gateway_config(path)` → `GatewayConfig` (the gate's TOML plus the gateway's keys);
- `GatewayService(config, config_path=...)`: `await start()`, `await reload()`, `await stop()`;
- `serve(config, config_path)` / `run(...)`: the process entry points (signals, uvloop).
"""

from authgate.gateway.config import (
    ClientLimits,
    GatewayConfig,
    GatewaySettings,
    IdentityTokenSettings,
    RouteUpstream,
    UpstreamTimeouts,
)
from authgate.gateway.config_loader import load_gateway_config
from authgate.gateway.runner import run, serve
from authgate.gateway.service import GatewayService

__all__ = [
    "ClientLimits",
    "GatewayConfig",
    "GatewayService",
    "GatewaySettings",
    "IdentityTokenSettings",
    "RouteUpstream",
    "UpstreamTimeouts",
    "load_gateway_config",
    "run",
    "serve",
]
