"""The server's fetches of URLs that strangers chose (`authgate.server.outbound`): a name that
resolves to loopback or to the cloud metadata service, redirects, a 10 MB body, a slow drip, http,
a certificate for another name, and one host made to fetch in a loop. Real sockets and real TLS
(a test CA); host names reach the test origin through the fetcher's resolver injection point."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from authgate.config import ConfigError
from authgate.limits import Limiter
from authgate.server.config import FetchSettings
from authgate.server.outbound import Fetched, FetchError, OutboundFetcher
from tests.support.tls import HttpsOrigin, TestCA, drip_route, flood_route, json_route, raw_route

NAME = "client.example.test"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def origin(ca: TestCA) -> Iterator[HttpsOrigin]:
    with HttpsOrigin(ca, [NAME]) as served:
        served.routes["/doc"] = json_route({"ok": True})
        served.routes["/redirect"] = raw_route(302, headers={"Location": "/doc"})
        served.routes["/big"] = flood_route(10 * 1024 * 1024)
        served.routes["/drip"] = drip_route
        yield served


def resolver(mapping: dict[str, list[str]], calls: list[str] | None = None):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in mapping:
            raise OSError("no such name")
        return mapping[host]

    return resolve


async def fetch(
    ca: TestCA,
    url: str,
    mapping: dict[str, list[str]],
    *,
    allow_loopback: bool = False,
    max_bytes: int = 64 * 1024,
    limiter: Limiter | None = None,
) -> Fetched:
    fetcher = OutboundFetcher(
        FetchSettings(allow_loopback=allow_loopback),
        limiter,
        resolver=resolver(mapping),
        ssl_context=ca.client_context(),
    )
    try:
        # The guard only keeps a regression from hanging the suite; the fetch must end by itself.
        return await asyncio.wait_for(fetcher.get(url, max_bytes=max_bytes, time_limit=1.0), 20)
    finally:
        await fetcher.aclose()


async def test_the_test_origin_is_reachable_with_the_development_switch(
    ca: TestCA, origin: HttpsOrigin
) -> None:
    got = await fetch(
        ca, f"https://{NAME}:{origin.port}/doc", {NAME: ["127.0.0.1"]}, allow_loopback=True
    )
    assert got.body == b'{"ok": true}'


async def test_a_name_resolving_to_loopback_is_refused_before_connecting(
    ca: TestCA, origin: HttpsOrigin
) -> None:
    with pytest.raises(FetchError) as caught:
        await fetch(ca, f"https://{NAME}:{origin.port}/doc", {NAME: ["127.0.0.1"]})
    assert caught.value.public == "the host resolves to a loopback address"
    assert "127.0.0.1" not in caught.value.public  # the address stays in the logs
    assert origin.hits["/doc"] == 0


@pytest.mark.parametrize(
    "address",
    ["169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe"],
)
async def test_the_cloud_metadata_service_is_refused(ca: TestCA, address: str) -> None:
    # Refused even with the development switch on, and in every IPv6 spelling of the address.
    with pytest.raises(FetchError, match="cloud metadata"):
        await fetch(ca, f"https://{NAME}/latest/meta-data/", {NAME: [address]}, allow_loopback=True)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.0.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),  # CGNAT
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - the address under test
    ],
)
async def test_private_ranges_are_refused(ca: TestCA, address: str, kind: str) -> None:
    with pytest.raises(FetchError, match=kind):
        await fetch(ca, f"https://{NAME}/doc", {NAME: [address]}, allow_loopback=True)


async def test_a_name_mixing_public_and_private_addresses_is_refused(ca: TestCA) -> None:
    with pytest.raises(FetchError, match="private"):
        await fetch(ca, f"https://{NAME}/doc", {NAME: ["93.184.215.14", "10.1.2.3"]})


async def test_an_address_literal_is_checked_too(ca: TestCA, origin: HttpsOrigin) -> None:
    with pytest.raises(FetchError, match="loopback"):
        await fetch(ca, f"https://127.0.0.1:{origin.port}/doc", {})
    with pytest.raises(FetchError, match="cloud metadata"):
        await fetch(ca, "https://[fd00:ec2::254]/", {})


async def test_the_name_is_resolved_once_and_the_checked_address_is_used(
    ca: TestCA, origin: HttpsOrigin
) -> None:
    # A rebinding name: the first answer passes the check, later answers point at the metadata
    # service. The connection must use the first answer, never ask again.
    answers = iter([["127.0.0.1"]])
    calls: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers, ["169.254.169.254"])

    fetcher = OutboundFetcher(
        FetchSettings(allow_loopback=True), resolver=rebinding, ssl_context=ca.client_context()
    )
    try:
        got = await fetcher.get(f"https://{NAME}:{origin.port}/doc", max_bytes=1024, time_limit=5)
    finally:
        await fetcher.aclose()
    assert got.body == b'{"ok": true}'
    assert calls == [NAME]


async def test_a_redirect_is_not_followed(ca: TestCA, origin: HttpsOrigin) -> None:
    with pytest.raises(FetchError, match="redirect"):
        await fetch(
            ca, f"https://{NAME}:{origin.port}/redirect", {NAME: ["127.0.0.1"]}, allow_loopback=True
        )
    assert origin.hits["/doc"] == 0


async def test_a_10_mb_body_is_cut_off_at_the_size_limit(ca: TestCA, origin: HttpsOrigin) -> None:
    with pytest.raises(FetchError, match="larger than 65536 bytes"):
        await fetch(
            ca, f"https://{NAME}:{origin.port}/big", {NAME: ["127.0.0.1"]}, allow_loopback=True
        )


async def test_a_slow_drip_ends_at_the_time_limit(ca: TestCA, origin: HttpsOrigin) -> None:
    with pytest.raises(FetchError, match="took too long"):
        await fetch(
            ca, f"https://{NAME}:{origin.port}/drip", {NAME: ["127.0.0.1"]}, allow_loopback=True
        )


async def test_plain_http_is_refused(ca: TestCA) -> None:
    with pytest.raises(FetchError, match="must use https"):
        await fetch(ca, f"http://{NAME}/doc", {NAME: ["93.184.215.14"]})
    # The development switch allows http to loopback only.
    with pytest.raises(FetchError, match="must use https"):
        await fetch(ca, f"http://{NAME}/doc", {NAME: ["127.0.0.1"]}, allow_loopback=True)


async def test_the_certificate_must_name_the_host(ca: TestCA, origin: HttpsOrigin) -> None:
    # The connection goes to the pinned address, but TLS verifies the URL's host name.
    other = "other.example.test"
    with pytest.raises(FetchError, match="the TLS certificate is not valid for the host"):
        await fetch(
            ca, f"https://{other}:{origin.port}/doc", {other: ["127.0.0.1"]}, allow_loopback=True
        )


async def test_a_host_cannot_be_made_to_fetch_in_a_loop(ca: TestCA, origin: HttpsOrigin) -> None:
    limiter = Limiter.from_url("memory://")
    settings = FetchSettings(allow_loopback=True, host_rate="3/minute")
    fetcher = OutboundFetcher(
        settings, limiter, resolver=resolver({NAME: ["127.0.0.1"]}), ssl_context=ca.client_context()
    )
    url = f"https://{NAME}:{origin.port}/doc"
    try:
        for _ in range(3):
            await fetcher.get(url, max_bytes=1024, time_limit=5)
        with pytest.raises(FetchError, match="too many fetches"):
            await fetcher.get(url, max_bytes=1024, time_limit=5)
    finally:
        await fetcher.aclose()
        await limiter.aclose()
    assert origin.hits["/doc"] == 3


def test_settings_reject_a_missing_ca_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"fetch\.ca_file"):
        FetchSettings(ca_file=tmp_path / "absent.pem")
