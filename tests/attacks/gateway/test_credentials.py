"""Credentials stay at the gateway (RFC 6750 §2.3, §5.3): an access token sent in the query is
removed before proxying, like `Authorization`, unless the route forwards credentials."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from authgate.gateway.upstream_request import without_access_token
from tests.support.gateway import Gateway, Issuer, live_gateway


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Issuer]]:
    extra = 'bearer_methods = ["header", "query"]'
    with live_gateway(tmp_path_factory.mktemp("gw"), extra) as live:
        yield live.gateway, live.issuer


@pytest.mark.parametrize("name", ["access_token", "access%5Ftoken", "access%5ftoken"])
def test_query_token_is_not_forwarded(servers: tuple[Gateway, Issuer], name: str) -> None:
    gateway, issuer = servers
    token = issuer.token()
    status, _, body = gateway.request("GET", f"/orders/7?page=2&{name}={token}&sort=asc")
    assert status == 200
    seen = json.loads(body)
    assert token not in json.dumps(seen)
    assert seen["path"] == "/orders/7?page=2&sort=asc"


def test_query_token_is_forwarded_where_the_route_forwards_credentials(
    servers: tuple[Gateway, Issuer],
) -> None:
    gateway, issuer = servers
    token = issuer.token()
    status, _, body = gateway.request("GET", f"/with-auth/x?access_token={token}")
    assert status == 200
    assert json.loads(body)["path"] == f"/with-auth/x?access_token={token}"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"access_token=abc", b""),
        (b"a=1&access_token=abc&b=2", b"a=1&b=2"),
        (b"a=access_token&access_token_x=1", b"a=access_token&access_token_x=1"),
        (b"access%5Ftoken=abc&c=%41", b"c=%41"),
        (b"access+token=1", b"access+token=1"),
    ],
)
def test_without_access_token(query: bytes, expected: bytes) -> None:
    assert without_access_token(query) == expected
