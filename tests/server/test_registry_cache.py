"""The per-process client/API cache: misses are never cached, hits expire after `cache_ttl`."""

from __future__ import annotations

from dataclasses import replace

from server_harness import FakeClock, make_config, running

from authgate.server.config import HttpSettings

API = "https://api.example.test"


async def test_cached_client_expires_after_ttl(database_url: str) -> None:
    clock = FakeClock()
    config = make_config(database_url)
    config = replace(config, http=HttpSettings(cache_ttl=5))
    async with running(config, clock) as h:
        await h.create_api(API)
        # A client created after the server started works at once (misses are not cached).
        client, secret = await h.create_client(scopes=("read",))
        assert (await h.token(client, secret)).status_code == 200
        assert await h.server.storage.delete_client(client.client_id)
        # Within the cache lifetime the deletion is not yet seen by this process...
        assert (await h.token(client, secret)).status_code == 200
        clock.advance(6)
        # ...and afterwards it is.
        assert (await h.token(client, secret)).status_code == 401
