"""The running gateway: start, reload on SIGHUP, stop on SIGTERM/SIGINT.

A reload reads the file again. A configuration that does not load (or whose new verifier cannot be
built) is logged and the running one is kept. Otherwise the new generation is prepared completely
(its verifier fetches keys first) and then swapped in: requests in flight finish on the old one,
new requests use the new one, and no connection is closed. The verifier is kept across reloads
when its configuration did not change, so keys, caches and counters survive; so is the rate
limiter (its counts, its Redis connections) when `[limits]` did not change.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path

from authgate.gate import GateConfig
from authgate.gateway.access_log import AccessLog
from authgate.gateway.admin import AdminEndpoints
from authgate.gateway.config import GatewayConfig
from authgate.gateway.config_loader import load_gateway_config
from authgate.gateway.generation import Generation
from authgate.gateway.metrics import GatewayCollector, GatewayStats, render_metrics
from authgate.gateway.server import GatewayServer
from authgate.gateway.token_exchange import TokenExchanger
from authgate.jose import JoseError
from authgate.limits import Limiter
from authgate.verifier import Verifier

__all__ = ["GatewayService"]

log = logging.getLogger("authgate.gateway")

# How long a replaced verifier lives on for requests that were already waiting on it.
_RETIRE_AFTER = 30.0


class GatewayService:
    """Owns the server, the current generation and the counters that outlive reloads."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        config_path: Path | None = None,
        loader: Callable[[Path], GatewayConfig] = load_gateway_config,
        access_log: AccessLog | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.stats = GatewayStats()
        self.access_log = access_log or AccessLog(enabled=config.settings.access_log)
        self._loader = loader
        self.limiter = _limiter_for(config, None)
        self.exchanger = self._exchanger_for(config, None)
        self._collector = GatewayCollector(
            self.stats,
            lambda: self.generation.verifier,
            lambda: self.server.connection_count,
            lambda: self.limiter.metrics if self.limiter is not None else None,
        )
        # `[admin]` is read at start: a reload does not move the listener.
        self._admin_settings = config.settings.admin
        self._admin = AdminEndpoints(lambda: render_metrics(self._collector), self._admin_settings)
        self._reloading = asyncio.Lock()
        self._stopped = asyncio.Event()
        self._background: set[asyncio.Future[object]] = set()
        self.generation = self._generation(config, Verifier(config.gate.verifier))
        self.server = GatewayServer(self.generation, tick=self.access_log.flush)
        self.generation.attach(self.server)

    def _exchanger_for(
        self, config: GatewayConfig, previous: TokenExchanger | None
    ) -> TokenExchanger | None:
        """The token exchanger: the previous one (its cache) while `[token_exchange]` is
        unchanged, a new one when it changed, None without it."""
        settings = config.settings.token_exchange
        if settings is None:
            return None
        if previous is not None and previous.settings == settings:
            return previous
        return TokenExchanger(settings, self.stats.token_exchanges)

    def _generation(self, config: GatewayConfig, verifier: Verifier) -> Generation:
        return Generation(
            config,
            verifier,
            stats=self.stats,
            access_log=self.access_log,
            admin=self._admin,
            limiter=self.limiter,
            exchanger=self.exchanger,
        )

    async def start(self) -> tuple[str, int]:
        """Fetch keys (not ready until every issuer has some), then listen (and on the admin
        address, when set); return the public address. `ListenError` when an address is
        taken."""
        await self.generation.verifier.start()
        settings = self.config.settings
        try:
            address = await self.server.listen(settings.host, settings.port)
            extra: dict[str, object] = {"host": address[0], "port": address[1]}
            if self._admin_settings.listen is not None:
                admin = await self.server.listen_admin(
                    *self._admin_settings.address(),
                    lambda head: self._admin.admin_port(self.generation, head),
                )
                extra.update(admin_host=admin[0], admin_port=admin[1])
        except OSError:
            await self.stop(0)
            raise
        log.info("listening", extra={**extra, "ready": self.generation.verifier.ready})
        return address

    async def reload(self) -> bool:
        """Load the file again and swap it in; on any error keep the running configuration."""
        if self.config_path is None:
            return False
        async with self._reloading:
            old = self.generation
            try:
                config = self._loader(self.config_path)
                same_verifier = config.gate.verifier == old.config.gate.verifier
                verifier = old.verifier if same_verifier else Verifier(config.gate.verifier)
                old_limiter, old_limits = self.limiter, old.config.gate
                limiter = _limiter_for(config, (old_limits, old_limiter))
            except (ValueError, OSError, JoseError) as exc:
                self.stats.reloads["error"] += 1
                log.error(  # noqa: TRY400 - the message says it all; no traceback for a typo
                    "configuration reload failed; keeping the running one",
                    extra={"error": str(exc)},
                )
                return False
            if not same_verifier:
                await verifier.start()
            if config.settings.admin != self._admin_settings:
                log.warning("[admin] listen changes on restart only; the running one is kept")
            self.limiter = limiter
            old_exchanger = self.exchanger
            self.exchanger = self._exchanger_for(config, old_exchanger)
            generation = self._generation(config, verifier)
            generation.attach(self.server)
            self.server.swap(generation)
            self.generation, self.config = generation, config
            old.close()
            if not same_verifier:
                self._spawn(self._retire(old.verifier))
            if old_limiter is not None and old_limiter is not limiter:
                self._spawn(self._retire(old_limiter))
            if old_exchanger is not None and old_exchanger is not self.exchanger:
                self._spawn(self._retire(old_exchanger))
            self.stats.reloads["ok"] += 1
            log.info("configuration reloaded", extra={"verifier_kept": same_verifier})
            return True

    @staticmethod
    async def _retire(old: Verifier | Limiter | TokenExchanger) -> None:
        await asyncio.sleep(_RETIRE_AFTER)
        await old.aclose()

    def _spawn(self, coro: Coroutine[object, object, object]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def install_signal_handlers(self) -> None:
        """SIGHUP reloads; SIGTERM and SIGINT stop gracefully."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self.reload()))
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopped.set)

    async def wait_stopped(self) -> None:
        """Return when a stop signal arrived (or `request_stop` was called)."""
        await self._stopped.wait()

    def request_stop(self) -> None:
        self._stopped.set()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, let requests finish (up to `grace` seconds), close everything."""
        await self.server.shutdown(grace)
        self.generation.close()
        for task in list(self._background):
            task.cancel()
        await self.generation.verifier.aclose()
        if self.limiter is not None:
            await self.limiter.aclose()
        if self.exchanger is not None:
            await self.exchanger.aclose()
        self.access_log.flush()
        log.info("stopped")


def _limiter_for(
    config: GatewayConfig, previous: tuple[GateConfig, Limiter | None] | None
) -> Limiter | None:
    """The limiter for `config`: the previous one when `[limits]` did not change (its counts and
    connections carry on), a new one when it did, None when the gate needs no store (no route is
    limited and DPoP is off)."""
    if not config.gate.uses_store:
        return None
    if previous is not None:
        old_config, old_limiter = previous
        if old_limiter is not None and old_config.limits == config.gate.limits:
            return old_limiter
    return config.gate.limits.limiter()
