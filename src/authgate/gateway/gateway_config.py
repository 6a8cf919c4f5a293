"""The whole gateway configuration: the gate's (verifier, routes, challenges, RFC 9728 metadata)
plus the gateway's settings and each route's upstream.

Built by `authgate.gateway.config_loader` from one TOML file (or in code); frozen, so a reload
builds a new one and swaps it in whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from authgate.gate import GateConfig, RouteConfig
from authgate.gateway.config import GatewaySettings, RouteUpstream

__all__ = ["GatewayConfig"]


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """`routes` pairs each of the gate's routes (the same `RouteConfig` objects) with its
    upstream (None: forward-auth only), in configuration order."""

    gate: GateConfig
    settings: GatewaySettings
    routes: tuple[tuple[RouteConfig, RouteUpstream | None], ...]

    @property
    def resource_metadata_url(self) -> str | None:
        """The RFC 9728 document's URL, announced in challenges (§5.1)."""
        return self.gate.resource.url if self.gate.resource is not None else None
