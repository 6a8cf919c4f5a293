"""A client's `jwks_uri` (private_key_jwt) is fetched within one time limit and one size limit
(RFC 9700 §4.13 spirit; RFC 7523 §3). httpx's own timeout bounds each read, not the fetch, and its
`aiter_bytes` inflates a compressed body chunk by chunk past the size limit."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from authgate.jose import JWK
from authgate.server.clients.jwks import ClientKeyError, ClientKeys
from authgate.server.config import FetchSettings, HttpSettings
from authgate.server.models import Client
from authgate.server.outbound import OutboundFetcher

KEY = JWK.generate("EC", crv="P-256", kid="k1")
GOOD = json.dumps({"keys": [KEY.public().to_dict()]}).encode()
# A valid key set, compressed: refused all the same, since nothing is ever inflated (a bomb such
# as gzip of 32 MiB of JSON whitespace is ~32 KiB on the wire and would be inflated in one step).
GZIPPED = gzip.compress(GOOD)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # clients that give up early are expected here


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/drip":
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                for _ in range(600):  # a byte every 0.1 s: each read is fast, the fetch is not
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.1)
                return
            body, extra = (
                (GZIPPED, ("Content-Encoding", "gzip"))
                if self.path == "/gzip"
                else (
                    GOOD,
                    ("X-Plain", "1"),
                )
            )
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header(*extra)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _client(uri: str) -> Client:
    return Client("c1", "c1", "private_key_jwt", ("client_credentials",), jwks_uri=uri)


async def _keys(uri: str) -> Any:
    fetcher = OutboundFetcher(FetchSettings(allow_loopback=True))
    keys = ClientKeys(HttpSettings(jwks_fetch_timeout=1.0), fetcher, time.time)
    try:
        # The guard only keeps a regression from hanging the suite; the fetch must end by itself.
        return await asyncio.wait_for(keys.keys_for(_client(uri)), 15)
    finally:
        await fetcher.aclose()


async def test_a_slow_drip_ends_at_the_fetch_time_limit(origin: str) -> None:
    with pytest.raises(ClientKeyError):
        await _keys(origin + "/drip")


async def test_a_compressed_body_is_refused(origin: str) -> None:
    with pytest.raises(ClientKeyError):
        await _keys(origin + "/gzip")


async def test_a_plain_key_set_is_fetched(origin: str) -> None:
    keys = await _keys(origin + "/plain")
    assert keys.get("k1") is not None


async def test_a_jwks_uri_on_loopback_is_not_fetched_in_production(origin: str) -> None:
    # Issue 11: plain http to a loopback host used to be fetched; now only the development
    # switch (`[fetch] allow_loopback`) reaches loopback, and nothing reaches other private ranges.
    fetcher = OutboundFetcher(FetchSettings())
    keys = ClientKeys(HttpSettings(jwks_fetch_timeout=1.0), fetcher, time.time)
    try:
        with pytest.raises(ClientKeyError) as caught:
            await asyncio.wait_for(keys.keys_for(_client(origin + "/plain")), 15)
        assert caught.value.public == "jwks_uri: the URL must use https"
        https = origin.replace("http://", "https://") + "/plain"
        with pytest.raises(ClientKeyError) as caught:
            await asyncio.wait_for(keys.keys_for(_client(https)), 15)
        assert caught.value.public == "jwks_uri: the host resolves to a loopback address"
    finally:
        await fetcher.aclose()
