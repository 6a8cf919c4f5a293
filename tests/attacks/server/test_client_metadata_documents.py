"""Hostile client ID metadata documents and URLs (draft-ietf-oauth-client-id-metadata-document
§3-§5, §8.6 SSRF, §8.7 size): a document whose client_id differs from its URL by a trailing slash
or by case, redirects, a 10 MB body, a slow drip, URLs on loopback and the cloud metadata address,
a document that changes between fetches, shared secrets, and the policy switch. Every refusal is
an error page (never a redirect to an unchecked URI) or an `invalid_client` with a description
naming the problem; never a 500."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from authgate.server.config import ClientMetadataSettings
from tests.support.client_metadata import CALLBACK, MetadataSetup, metadata_setup
from tests.support.e2e import pkce_pair, redirect_params
from tests.support.server_harness import FakeClock, expect_error
from tests.support.tls import TestCA, drip_route, flood_route, raw_route


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


def _request(client_id: str, redirect_uri: str = CALLBACK) -> dict[str, str]:
    _, challenge = pkce_pair()
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "read",
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }


async def _authorize(setup: MetadataSetup, client_id: str, **extra: str) -> httpx.Response:
    # The guard only keeps a regression from hanging the suite; the fetch must end by itself.
    agent = setup.flow.agent()
    return await asyncio.wait_for(agent.authorize(**{**_request(client_id), **extra}), 30)


def _refused(response: httpx.Response, problem: str) -> None:
    """An error page (never a redirect) naming `problem`."""
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert "client metadata document" in response.text
    assert problem in response.text, response.text


async def _token(setup: MetadataSetup, client_id: str) -> httpx.Response:
    data = {"grant_type": "authorization_code", "client_id": client_id, "code": "x"}
    return await setup.flow.http.post("/token", data=data)


@pytest.mark.parametrize(
    "claimed",
    [
        "{url}/",  # a trailing slash
        "{origin}/Client.json",  # case in the path
        "HTTPS://127.0.0.1:{port}/client.json",  # case in the scheme
    ],
)
async def test_the_document_must_name_its_url_exactly(
    database_url: str, clock: FakeClock, ca: TestCA, claimed: str
) -> None:
    async with metadata_setup(database_url, clock, ca) as setup:
        url = setup.url()
        port = setup.origin.port
        origin = f"https://127.0.0.1:{port}"
        setup.serve(setup.document(client_id=claimed.format(url=url, origin=origin, port=port)))
        problem = "its client_id is not exactly the URL it was fetched from"
        _refused(await _authorize(setup, url), problem)
        response = await _token(setup, url)
        expect_error(response, 401, "invalid_client")
        assert problem in response.json()["error_description"]


async def test_a_client_id_differing_by_a_trailing_slash_is_another_document(
    database_url: str, clock: FakeClock, ca: TestCA
) -> None:
    async with metadata_setup(database_url, clock, ca) as setup:
        setup.serve(setup.document())
        # `…/client.json/` is its own URL: fetched as such (404 here), never matched to the other.
        _refused(await _authorize(setup, setup.url() + "/"), "answered 404")
        assert setup.origin.hits["/client.json"] == 0


async def test_a_redirect_is_not_followed(database_url: str, clock: FakeClock, ca: TestCA) -> None:
    async with metadata_setup(database_url, clock, ca) as setup:
        setup.serve(setup.document())
        setup.origin.routes["/moved.json"] = raw_route(
            302, headers={"Location": setup.url("/client.json")}
        )
        _refused(await _authorize(setup, setup.url("/moved.json")), "redirect")
        assert setup.origin.hits["/client.json"] == 0


async def test_a_10_mb_document_is_cut_off(database_url: str, clock: FakeClock, ca: TestCA) -> None:
    async with metadata_setup(database_url, clock, ca) as setup:
        setup.origin.routes["/big.json"] = flood_route(10 * 1024 * 1024)
        _refused(await _authorize(setup, setup.url("/big.json")), "larger than 5120 bytes")


async def test_a_slow_drip_ends_at_the_time_limit(
    database_url: str, clock: FakeClock, ca: TestCA
) -> None:
    settings = ClientMetadataSettings(policy="any", timeout=1.0)
    async with metadata_setup(database_url, clock, ca, client_metadata=settings) as setup:
        setup.origin.routes["/drip.json"] = drip_route
        _refused(await _authorize(setup, setup.url("/drip.json")), "took too long")


@pytest.mark.parametrize(
    ("client_id", "problem"),
    [
        ("https://127.0.0.1:{port}/client.json", "resolves to a loopback address"),
        ("https://169.254.169.254/latest/meta-data/iam", "resolves to a cloud metadata address"),
        ("https://[fd00:ec2::254]/latest/meta-data/iam", "resolves to a cloud metadata address"),
        ("https://10.0.0.1/client.json", "resolves to a private or reserved address"),
    ],
)
async def test_internal_addresses_are_never_fetched(
    database_url: str, clock: FakeClock, ca: TestCA, client_id: str, problem: str
) -> None:
    # Without the development switch, as in production.
    async with metadata_setup(database_url, clock, ca, allow_loopback=False) as setup:
        setup.serve(setup.document())
        url = client_id.format(port=setup.origin.port)
        _refused(await _authorize(setup, url), problem)
        response = await _token(setup, url)
        expect_error(response, 401, "invalid_client")
        assert problem in response.json()["error_description"]
        assert setup.origin.hits["/client.json"] == 0


@pytest.mark.parametrize(
    ("client_id", "problem"),
    [
        ("https://127.0.0.1:{port}/a/../client.json", "must not have . or .. path segments"),
        ("https://127.0.0.1:{port}/client.json?v=1", "must not have a query"),
        ("https://127.0.0.1:{port}", "must have a path"),
        ("https://u:p@127.0.0.1:{port}/client.json", "must not contain a user name or password"),
        ("https://127.0.0.1:{port}/" + "x" * 120, "longer than 128 characters"),
    ],
)
async def test_malformed_client_id_urls_are_refused_without_a_fetch(
    database_url: str, clock: FakeClock, ca: TestCA, client_id: str, problem: str
) -> None:
    async with metadata_setup(database_url, clock, ca) as setup:
        _refused(await _authorize(setup, client_id.format(port=setup.origin.port)), problem)
        assert sum(setup.origin.hits.values()) == 0


async def test_a_document_that_changes_between_fetches(
    database_url: str, clock: FakeClock, ca: TestCA
) -> None:
    settings = ClientMetadataSettings(policy="any", cache_min=60, cache_max=3600)
    async with metadata_setup(database_url, clock, ca, client_metadata=settings) as setup:
        url = setup.serve(setup.document(), max_age=300)
        first = await _authorize(setup, url)
        assert first.status_code == 200  # the sign-in page
        # The document now names another redirect URI and lies about its client_id: while the
        # cached copy is fresh (max-age 300) nothing changes and nothing is fetched.
        setup.serve(setup.document(redirect_uris=["https://evil.example.test/cb"]), max_age=300)
        clock.advance(299)
        assert (await _authorize(setup, url)).status_code == 200
        assert setup.origin.hits["/client.json"] == 1
        clock.advance(2)
        # Refetched: the old redirect URI is no longer registered (an error page, no redirect).
        stale = await _authorize(setup, url)
        assert stale.status_code == 400
        assert "location" not in stale.headers
        assert "redirect_uri is not registered" in stale.text
        assert setup.origin.hits["/client.json"] == 2
        # A document asking to be refetched at every request is kept for cache_min.
        setup.serve(setup.document(), max_age=0)
        clock.advance(301)
        assert (await _authorize(setup, url)).status_code == 200
        clock.advance(59)
        assert (await _authorize(setup, url)).status_code == 200
        assert setup.origin.hits["/client.json"] == 3


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"token_endpoint_auth_method": "client_secret_basic"}, "token_endpoint_auth_method"),
        ({"client_secret": "s3cret"}, "must not contain a client_secret"),
        ({"grant_types": ["client_credentials"]}, "grant type &#39;client_credentials&#39;"),
        ({"redirect_uris": ["http://evil.example.test/cb"]}, "redirect URI"),
        ({"redirect_uris": None}, "needs at least one"),
        ({"logo_uri": "javascript:alert(1)"}, "logo_uri must be an https URL"),
        ({"client_name": 7}, "client_name must be a string"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "private_key_jwt needs exactly one"),
    ],
)
async def test_documents_breaking_the_client_rules_are_refused(
    database_url: str, clock: FakeClock, ca: TestCA, fields: dict[str, Any], problem: str
) -> None:
    async with metadata_setup(database_url, clock, ca) as setup:
        url = setup.serve(setup.document(**fields))
        _refused(await _authorize(setup, url), problem)


async def test_not_json_is_refused(database_url: str, clock: FakeClock, ca: TestCA) -> None:
    async with metadata_setup(database_url, clock, ca) as setup:
        setup.origin.routes["/client.json"] = raw_route(200, b"<html>")
        _refused(await _authorize(setup, setup.url()), "not JSON")
        setup.origin.routes["/list.json"] = raw_route(200, b"[1]")
        _refused(await _authorize(setup, setup.url("/list.json")), "not a JSON object")


async def test_with_the_policy_off_nothing_is_fetched(
    database_url: str, clock: FakeClock, ca: TestCA
) -> None:
    settings = ClientMetadataSettings(policy="off")
    async with metadata_setup(database_url, clock, ca, client_metadata=settings) as setup:
        url = setup.serve(setup.document())
        response = await _authorize(setup, url)
        assert response.status_code == 400
        assert "unknown client" in response.text
        expect_error(await _token(setup, url), 401, "invalid_client")
        assert setup.origin.hits["/client.json"] == 0
        metadata = (await setup.flow.http.get("/.well-known/oauth-authorization-server")).json()
        assert "client_id_metadata_document_supported" not in metadata


async def test_an_allowlist_admits_only_its_hosts(
    database_url: str, clock: FakeClock, ca: TestCA
) -> None:
    settings = ClientMetadataSettings(policy="allowlist", allowed_hosts=("apps.example.test",))
    async with metadata_setup(database_url, clock, ca, client_metadata=settings) as setup:
        url = setup.serve(setup.document())
        _refused(await _authorize(setup, url), "does not accept client ids on this host")
        assert setup.origin.hits["/client.json"] == 0


async def test_one_host_cannot_be_made_to_fetch_in_a_loop(
    database_url: str, clock: FakeClock, ca: TestCA
) -> None:
    # Distinct URLs on one host skip the cache; the per-host budget stops them.
    async with metadata_setup(database_url, clock, ca, host_rate="5/hour") as setup:
        for n in range(5):
            _refused(await _authorize(setup, setup.url(f"/c{n}.json")), "answered 404")
        _refused(await _authorize(setup, setup.url("/c5.json")), "too many fetches")
        expect_error(await _token(setup, setup.url("/c6.json")), 401, "invalid_client")
        assert sum(setup.origin.hits.values()) == 5


async def test_a_redirect_error_is_never_sent_to_an_unlisted_uri(
    database_url: str, clock: FakeClock, ca: TestCA
) -> None:
    async with metadata_setup(database_url, clock, ca) as setup:
        url = setup.serve(setup.document())
        response = await _authorize(setup, url, redirect_uri="https://evil.example.test/cb")
        assert response.status_code == 400
        assert "location" not in response.headers
        ok = await _authorize(setup, url, response_type="token")
        assert redirect_params(ok)["error"] == "unsupported_response_type"  # to the listed URI
