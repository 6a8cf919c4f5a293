"""The pages limited per client address (`/authorize`, `/consent`, `/device`) and the endpoints
limited per caller (`/device_authorization`, `/introspect`, `/revoke`): a refusal is 429 with
`Retry-After` and the RateLimit fields, another address or caller is untouched, a public client is
counted per id and address, and admitted answers carry the fields only with `headers = "all"`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from authgate.server.config import Config, HttpSettings, LimitSettings, LimitsSettings
from authgate.server.grants import DEVICE_CODE_GRANT
from tests.support.server_harness import FakeClock, Harness, make_config, running

API = "https://api.example.test"
TWO = LimitSettings("2/hour", burst=2)


def _config(tmp_path: Path, **limits: Any) -> Config:
    return make_config(
        f"sqlite:///{tmp_path / 'authgate.db'}",
        limits=LimitsSettings(**limits),
        http=HttpSettings(cache_ttl=0, trusted_proxies=("127.0.0.1/32",)),
    )


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def _page(h: Harness, name: str, address: str) -> httpx.Response:
    if name == "authorize":
        return await h.http.get("/authorize?client_id=nobody", headers=_from(address))
    if name == "consent":
        return await h.http.post("/consent", data={"x": "1"}, headers=_from(address))
    return await h.http.get("/device", headers=_from(address))


@pytest.mark.parametrize("name", ["authorize", "consent", "device"])
async def test_pages_are_limited_per_address(tmp_path: Path, clock: FakeClock, name: str) -> None:
    async with running(_config(tmp_path, **{name: TWO}), clock) as h:
        for _ in range(2):
            assert (await _page(h, name, "198.51.100.1")).status_code != 429
        refused = await _page(h, name, "198.51.100.1")
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("text/plain")
        assert "Too many requests" in refused.text
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["ratelimit-policy"] == f'"{name}";q=2;w=3600'
        assert refused.headers["cache-control"] == "no-store"
        assert (await _page(h, name, "203.0.113.9")).status_code != 429
        # The same address's IPv6 /64 is one subscriber: counted together.
        for address in ("2001:db8::1", "2001:db8::2"):
            assert (await _page(h, name, address)).status_code != 429
        assert (await _page(h, name, "2001:db8::ffff")).status_code == 429


async def test_pages_turned_off(tmp_path: Path, clock: FakeClock) -> None:
    off = LimitSettings("1/hour", burst=1, enabled=False)
    async with running(_config(tmp_path, authorize=off), clock) as h:
        for _ in range(3):
            assert (await _page(h, "authorize", "198.51.100.1")).status_code != 429


async def _introspect(h: Harness, client_id: str, secret: str) -> httpx.Response:
    return await h.http.post("/introspect", data={"token": "not-a-token"}, auth=(client_id, secret))


async def test_introspection_is_limited_per_caller(tmp_path: Path, clock: FakeClock) -> None:
    async with running(_config(tmp_path, introspection=TWO), clock) as h:
        await h.create_api(API)
        callers = []
        for _ in range(2):
            client, secret = await h.create_client(scopes=("read",), introspect=(API,))
            assert secret is not None
            callers.append((client.client_id, secret))
        (a, secret_a), (b, secret_b) = callers
        for _ in range(2):
            admitted = await _introspect(h, a, secret_a)
            assert admitted.json() == {"active": False}
            assert "ratelimit" not in admitted.headers  # refusals only, by default
        refused = await _introspect(h, a, secret_a)
        assert refused.status_code == 429
        assert refused.json()["error"] == "temporarily_unavailable"
        assert refused.headers["ratelimit-policy"] == '"introspection";q=2;w=3600'
        assert int(refused.headers["retry-after"]) >= 1
        assert (await _introspect(h, b, secret_b)).status_code == 200


async def test_revocation_is_limited_per_caller_with_fields_on_every_answer(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with running(_config(tmp_path, revocation=TWO, headers="all"), clock) as h:
        await h.create_api(API)
        client, secret = await h.create_client(scopes=("read",))
        assert secret is not None
        for remaining in (1, 0):
            admitted = await h.http.post(
                "/revoke", data={"token": "x"}, auth=(client.client_id, secret)
            )
            assert admitted.status_code == 200
            assert admitted.headers["ratelimit-policy"] == '"revocation";q=2;w=3600'
            assert admitted.headers["ratelimit"].startswith(f'"revocation";r={remaining};')
        refused = await h.http.post("/revoke", data={"token": "x"}, auth=(client.client_id, secret))
        assert refused.status_code == 429


async def test_a_public_device_client_is_counted_per_id_and_address(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A public client only names itself: counted per id and address, so that whoever names it
    cannot spend the quota of its devices elsewhere."""
    async with running(_config(tmp_path, device_authorization=TWO), clock) as h:
        await h.create_api(API)
        public, _ = await h.create_client(
            auth_method="none", grant_types=(DEVICE_CODE_GRANT,), scopes=("read",)
        )

        async def start(address: str) -> httpx.Response:
            return await h.http.post(
                "/device_authorization",
                data={"client_id": public.client_id, "scope": "read"},
                headers=_from(address),
            )

        for _ in range(2):
            assert (await start("198.51.100.1")).status_code == 200
        refused = await start("198.51.100.1")
        assert refused.status_code == 429
        assert refused.headers["ratelimit-policy"] == '"device_authorization";q=2;w=3600'
        assert (await start("203.0.113.9")).status_code == 200
