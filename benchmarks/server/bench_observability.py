"""What request ids, metrics and JSON logs cost the token endpoint (issue 10: at most 3 %).

    .venv/bin/python benchmarks/server/bench_observability.py [--requests 400] [--rounds 7]

The same app is measured in process (httpx's ASGI transport, 16 requests in flight, SQLite,
client_credentials with RS256 JWTs), in interleaved rounds:
- off: the server as before issue 10 (no request-id/metrics layer, text log lines without ids);
- on: `RequestObservation` (request id, X-Request-Id, counters and the latency histogram) and
  JSON log lines carrying the id (`--log-format json`).
Both write the access log at INFO to a discarded stream. Measured is CPU time per token (this
process, all threads: the server, the client and the RSA signing threads), which other load on
the machine disturbs far less than wall-clock rates; the ratio on/off of the median rounds is
printed with the per-round ratios. The client's share is the same in both modes, so the server's
own overhead is somewhat larger than the ratio shows.

`TokenEndpoint` (the two apps, their client and `measure(mode, requests)`) is shared with
`benchmarks/observability.py`, which measures the token endpoint and the gateway in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import io
import logging
import logging.config
import secrets
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from authgate.http_forwarding import TrustedProxies
from authgate.server import admin
from authgate.server.app import create_app
from authgate.server.config import Config, KeyPolicy, LimitSettings, LimitsSettings
from authgate.server.observability.logs import JsonLogFormatter, RequestIdFilter, logging_config
from authgate.server.observability.metrics import ServerMetrics
from authgate.server.observability.middleware import RequestObservation

API = "https://api.bench.test"
INFLIGHT = 16


def _logging(observed: bool, sink: io.StringIO) -> None:
    if observed:
        config = logging_config("INFO", "json")
    else:  # the pre-issue-10 line: no filter, no id
        config = logging_config("INFO", "text")
        config["formatters"]["line"] = {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
        config["handlers"]["stderr"]["filters"] = []
    logging.config.dictConfig(config)
    for name in ("authgate", "uvicorn"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(sink)


def _without_observation(app: Starlette) -> Starlette:
    app.user_middleware = [m for m in app.user_middleware if m.cls is not RequestObservation]
    return app


async def _round(http: httpx.AsyncClient, auth: tuple[str, str], requests: int) -> float:
    """CPU seconds (this process, all threads) per token."""
    form = {"grant_type": "client_credentials", "resource": API}
    done = 0

    async def worker() -> None:
        nonlocal done
        while done < requests:
            done += 1
            response = await http.post("/token", data=form, auth=auth)
            if response.status_code != 200:
                raise RuntimeError(response.text)

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(INFLIGHT)))
    return (time.process_time() - started) / requests


class TokenEndpoint:
    """The token endpoint with observability "on" and "off" (apps on one database, named by their
    mode, e.g. "on" or "on-a"), a client for each with its credentials, and the log sink."""

    def __init__(self, clients: dict[str, httpx.AsyncClient], auth: tuple[str, str]) -> None:
        self.clients = clients
        self.auth = auth
        self.sink = io.StringIO()

    async def measure(self, name: str, requests: int) -> float:
        """CPU seconds per token of one round of app `name` (its mode: "on..." or "off...")."""
        _logging(name.startswith("on"), self.sink)
        cost = await _round(self.clients[name], self.auth, requests)
        self.sink.seek(0)
        self.sink.truncate()
        return cost

    async def probe(self, name: str = "on") -> float:
        """CPU seconds of one `/healthz`, `/readyz` and `/metrics` answered by the "on" app
        `name` (as an orchestrator and a scraper ask them)."""
        _logging(True, self.sink)
        started = time.process_time()
        for path in ("/healthz", "/readyz", "/metrics"):
            if (await self.clients[name].get(path)).status_code != 200:
                raise RuntimeError(f"{path} did not answer 200")
        return time.process_time() - started


@contextlib.asynccontextmanager
async def token_endpoint(names: Sequence[str] = ("on", "off")) -> AsyncIterator[TokenEndpoint]:
    """One app per name (observability on for names starting with "on"), started in that order
    on a fresh SQLite database with one API and one client."""
    with tempfile.TemporaryDirectory() as directory:
        config = Config(
            issuer="https://auth.bench.test",
            database_url=f"sqlite:///{Path(directory) / 'bench.db'}",
            secret_key=base64.urlsafe_b64encode(secrets.token_bytes(32)),
            keys=KeyPolicy(algorithms=("RS256",)),
            # The per-client token limit (on by default) would refuse a benchmark's load; it is
            # off in both modes, so the ratio stays observability's alone.
            limits=LimitsSettings(token=LimitSettings(rate="1/second", enabled=False)),
        )
        apps: dict[str, Starlette] = {}
        for name in names:
            app = create_app(config, background=False)
            apps[name] = app if name.startswith("on") else _without_observation(app)
        async with contextlib.AsyncExitStack() as stack:
            auth: tuple[str, str] | None = None
            for app in apps.values():
                await stack.enter_async_context(app.router.lifespan_context(app))
                if auth is None:  # the first app creates the API and the client
                    server = app.state.authgate
                    await admin.create_api(
                        server.storage, config, identifier=API, scopes=("read",), now=server.now()
                    )
                    client, secret = await admin.create_client(
                        server.storage,
                        server.secret,
                        name="bench",
                        grant_types=("client_credentials",),
                        scopes=("read",),
                        now=server.now(),
                    )
                    assert secret is not None
                    auth = (client.client_id, secret)
            assert auth is not None
            clients = {
                name: httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url=config.issuer
                )
                for name, app in apps.items()
            }
            try:
                yield TokenEndpoint(clients, auth)
            finally:
                for http in clients.values():
                    await http.aclose()


async def main(requests: int, rounds: int) -> None:
    costs: dict[str, list[float]] = {"on": [], "off": []}
    async with token_endpoint() as endpoint:
        for name in ("off", "on"):  # warm-up
            await endpoint.measure(name, requests // 4)
        for round_ in range(rounds):
            for name in ("off", "on") if round_ % 2 else ("on", "off"):
                gc.collect()
                costs[name].append(await endpoint.measure(name, requests))
    off, on = statistics.median(costs["off"]), statistics.median(costs["on"])
    print(f"token endpoint, in process, {INFLIGHT} in flight, {rounds} rounds x {requests}:")
    print(f"  CPU per token, median round: off {off * 1e3:.3f} ms, on {on * 1e3:.3f} ms")
    print(f"  on/off = {on / off:.3f} (throughput at full CPU: off/on = {off / on:.3f})")
    per_round = [f"{a / b:.3f}" for a, b in zip(costs["on"], costs["off"], strict=True)]
    print(f"  per round (CPU on/off): {' '.join(per_round)}")


def component_costs(n: int = 50_000) -> tuple[float, float]:
    """CPU seconds per request of (the middleware around an app that answers at once, one access
    line as JSON instead of the old text line): the added work itself, free of the noise of a
    whole token request."""

    async def bare(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    observed = RequestObservation(bare, TrustedProxies(), ServerMetrics())
    scope = {"type": "http", "path": "/token", "headers": [(b"host", b"x")], "client": ("::1", 1)}

    async def sent(message: Any) -> None:
        return None

    async def receive() -> Any:
        return {"type": "http.request"}

    async def loop(app: Any) -> float:
        started = time.process_time()
        for _ in range(n):
            await app(dict(scope), receive, sent)
        return (time.process_time() - started) / n

    middleware = asyncio.run(loop(observed)) - asyncio.run(loop(bare))
    record = logging.LogRecord(
        "authgate.access", logging.INFO, "", 0, "%s %s %d %.1fms client_id=%s",
        ("POST", "/token", 200, 3.2, "8n_O2T7KJGVbp_0hPYg_tQ"), None,
    )  # fmt: skip
    text = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    json_formatter, id_filter = JsonLogFormatter(), RequestIdFilter()

    def per_line(format_line: Any) -> float:
        started = time.process_time()
        for _ in range(n):
            format_line()
        return (time.process_time() - started) / n

    logs = per_line(lambda: (id_filter.filter(record), json_formatter.format(record))) - per_line(
        lambda: text.format(record)
    )
    return middleware, logs


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=400, help="token requests per round")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per mode")
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.rounds))
    middleware, logs = component_costs()
    print(
        f"  added per request: middleware {middleware * 1e6:.1f} us, "
        f"JSON access line instead of text {logs * 1e6:.1f} us"
    )
