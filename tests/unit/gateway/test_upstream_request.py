"""The path sent upstream: rewriting and strip_prefix."""

from __future__ import annotations

import pytest

from authgate.gateway.config import RouteUpstream
from authgate.gateway.request_head import RequestHead
from authgate.gateway.request_target import parse_request_target
from authgate.gateway.upstream_pool import Origin
from authgate.gateway.upstream_request import upstream_path


def _head(path: str, query: bytes = b"") -> RequestHead:
    target = parse_request_target(path.encode() + (b"?" + query if query else b""))
    return RequestHead(
        method=b"GET",
        target=target,
        version=b"1.1",
        headers=[],
        fields={},
        repeated=set(),
        keep_alive=True,
        upgrade=None,
        has_body=False,
        chunked=False,
        peer="127.0.0.1",
    )


@pytest.mark.parametrize(
    ("path", "prefix", "strip", "expected"),
    [
        ("/orders/7", "", None, b"/orders/7?q=1"),
        ("/orders/7", "/v2", None, b"/v2/orders/7?q=1"),
        ("/orders/7", "", "/orders", b"/7?q=1"),
        ("/orders", "", "/orders", b"/?q=1"),
        ("/ordersX", "", "/orders", b"/ordersX?q=1"),
        ("/orders/7", "/api", "/orders", b"/api/7?q=1"),
    ],
)
def test_upstream_path_rewriting(
    path: str, prefix: str, strip: str | None, expected: bytes
) -> None:
    route = RouteUpstream(Origin("http", "h", 80), "aud", prefix=prefix, strip_prefix=strip)
    assert upstream_path(_head(path, b"q=1"), route) == expected


@pytest.mark.parametrize(
    ("path", "strip", "case_insensitive", "expected"),
    [
        ("/strip;x/a", "/strip", False, b"/a"),  # matched as /strip/a: stripped alike
        ("/strip;x", "/strip", False, b"/"),
        ("/api/v1;k=v/a;p", "/api/v1", False, b"/a;p"),
        ("/STRIP/a", "/strip", False, b"/STRIP/a"),  # not matched case-sensitively
        ("/STRIP/a", "/strip", True, b"/a"),
        ("/Strip;x/a/", "/strip", True, b"/a/"),
        ("/stripX/a", "/strip", True, b"/stripX/a"),
    ],
)
def test_strip_prefix_removes_what_the_route_matched(
    path: str, strip: str, case_insensitive: bool, expected: bytes
) -> None:
    route = RouteUpstream(
        Origin("http", "h", 80), "aud", strip_prefix=strip, case_insensitive=case_insensitive
    )
    assert upstream_path(_head(path), route) == expected
