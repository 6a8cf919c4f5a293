"""`[admin] listen = "127.0.0.1:9100"`: the separate address on which the authorization server
and the gateway serve their probes and metrics, so that metrics need not be exposed with the
public endpoints (docs/operations.md#probes). One table, one rule, for both:

- unset: `/healthz`, `/readyz` and `/metrics` are answered on the public port;
- set: all three are answered on the admin address, which answers nothing else (404); the
  public port keeps only `/healthz` (a load balancer may still check liveness there).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from authgate.config.errors import ConfigError
from authgate.config.schema import Setting

__all__ = ["ADMIN_SETTINGS", "AdminSettings", "Probe", "parse_address"]

# The keys of the `[admin]` table, declared (the server's and the gateway's loaders read them).
ADMIN_SETTINGS = {"listen": Setting("string")}


class Probe(StrEnum):
    """The endpoints an admin listener serves."""

    HEALTH = "health"  # liveness: the process answers
    READY = "ready"  # readiness: the process can do its work
    METRICS = "metrics"  # Prometheus text format


def parse_address(text: str, key: str) -> tuple[str, int]:
    """(host, port) of `HOST:PORT` (`[::1]:9100` for IPv6, port 1-65535); `ConfigError` naming
    `key` otherwise."""
    host, _, port_text = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError("must be HOST:PORT, such as 127.0.0.1:9100", key=key)
    return host, int(port_text)


@dataclass(frozen=True, slots=True)
class AdminSettings:
    """`[admin]`: `listen` is the admin listener's address (None: no admin listener)."""

    listen: str | None = None

    def __post_init__(self) -> None:
        if self.listen is not None:
            self.address()  # check it now

    def address(self) -> tuple[str, int]:
        """(host, port) of `listen`; `ConfigError` unless it is HOST:PORT."""
        return parse_address(self.listen or "", "admin.listen")

    def on_public_port(self, probe: Probe) -> bool:
        """Whether `probe` is answered on the public port (see the module docstring)."""
        return self.listen is None or probe is Probe.HEALTH
