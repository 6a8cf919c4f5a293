"""Forward-auth: the client must not choose the request that is judged.

Traefik's ForwardAuth passes every client header to the check and adds `X-Forwarded-Method` and
`X-Forwarded-Uri`; nginx adds `X-Original-URI`/`X-Original-Method` and passes the rest too. The
endpoint used to prefer `X-Original-URI` whoever sent it, so a client of Traefik could have a
request for `/admin` judged as `/public`, and a missing method was judged as GET.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.gateway import Gateway, Upstream, live_gateway


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    def routes(upstream: Upstream) -> str:
        return f"""
[[routes]]
path = "/catalog"
methods = ["GET"]
public = true
upstream = "{upstream.url}"
"""

    with live_gateway(tmp_path_factory.mktemp("gw"), routes=routes) as live:
        yield live.gateway


def test_client_forged_x_original_uri_beside_traefiks_fields_is_refused(gw: Gateway) -> None:
    # Traefik: the client asked for DELETE /admin/users and added X-Original-URI itself.
    status, _, _ = gw.request(
        "GET",
        "/_authgate/check",
        {
            "X-Original-URI": "/public/a",
            "X-Forwarded-Method": "DELETE",
            "X-Forwarded-Uri": "/admin/users",
        },
    )
    assert status == 400


def test_client_forged_method_of_the_other_convention_is_refused(gw: Gateway) -> None:
    # nginx set only X-Original-URI; the client's X-Forwarded-Method must not pick the method.
    status, _, _ = gw.request(
        "GET",
        "/_authgate/check",
        {"X-Original-URI": "/catalog/1", "X-Forwarded-Method": "GET"},
    )
    assert status == 400


def test_a_missing_method_is_not_taken_for_get(gw: Gateway) -> None:
    # GET /catalog is public, POST /catalog is not routed: without a method there is no verdict.
    status, _, _ = gw.request("GET", "/_authgate/check", {"X-Original-URI": "/catalog/1"})
    assert status == 400
    status, _, _ = gw.request("GET", "/_authgate/check", {"X-Forwarded-Uri": "/catalog/1"})
    assert status == 400


def test_a_repeated_original_uri_is_refused(gw: Gateway) -> None:
    headers = [
        ("X-Original-Method", "GET"),
        ("X-Original-URI", "/admin/users"),
        ("X-Original-URI", "/public/a"),
    ]
    assert gw.request("GET", "/_authgate/check", headers)[0] == 400


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"X-Original-Method": "GET", "X-Original-URI": "/catalog/1"}, 200),
        ({"X-Original-Method": "POST", "X-Original-URI": "/catalog/1"}, 403),
        ({"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/catalog/1"}, 200),
        ({"X-Forwarded-Method": "DELETE", "X-Forwarded-Uri": "/catalog/1"}, 403),
    ],
)
def test_each_convention_alone_still_decides(
    gw: Gateway, headers: dict[str, str], status: int
) -> None:
    assert gw.request("GET", "/_authgate/check", headers)[0] == status


@pytest.mark.parametrize(
    "forged",
    [
        {"X-Original-URI": "/catalog/1", "X-Original-Method": "GET"},
        {"X-Forwarded-Uri": "/catalog/1", "X-Forwarded-Method": "GET"},
    ],
)
def test_envoy_path_is_not_overridden_by_client_fields(gw: Gateway, forged: dict[str, str]) -> None:
    # Envoy ext_authz with `allowed_headers: prefix "x-"` sends the client's own fields along
    # with the original path after the endpoint. The client asked for /admin/users; its fields
    # once had the request judged as the public GET /catalog/1 (200), and Envoy then forwarded
    # /admin/users for real.
    assert gw.request("GET", "/_authgate/check/admin/users")[0] == 401
    assert gw.request("GET", "/_authgate/check/admin/users", forged)[0] == 400
    assert gw.request("DELETE", "/_authgate/check/admin/users", forged)[0] == 400
