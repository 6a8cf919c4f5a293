"""The forward-auth endpoint: asked directly (Traefik/Envoy conventions) and by a real nginx with
`auth_request` in front of the upstream."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.gateway import Gateway, Issuer, Upstream, free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def test_allowed_request_gets_200_with_identity(gateway: Gateway, issuer: Issuer) -> None:
    status, headers, _ = gateway.request(
        "GET",
        "/_authgate/check",
        {
            "X-Original-Method": "GET",
            "X-Original-URI": "/orders/7?page=2",
            "Authorization": f"Bearer {issuer.token()}",
        },
    )
    assert status == 200
    assert headers["x-auth-subject"] == "alice"
    assert headers["x-auth-scopes"] == "orders:read orders:write"
    assert headers["x-auth-roles"] == "Order Clerks,admin"
    assert headers["x-auth-client-id"] == "orders-app"
    assert headers["x-auth-token"].count(".") == 2


def test_traefik_headers_and_refusals(gateway: Gateway, issuer: Issuer) -> None:
    base = {"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/admin/x"}
    status, headers, _ = gateway.request(
        "GET", "/_authgate/check", {**base, "Authorization": f"Bearer {issuer.token()}"}
    )
    assert status == 403
    assert 'error="insufficient_scope"' in headers["www-authenticate"]
    status, headers, _ = gateway.request("GET", "/_authgate/check", base)
    assert status == 401
    assert headers["www-authenticate"] == 'Bearer realm="authgate", scope="orders:admin"'


def test_envoy_style_path_after_the_endpoint(gateway: Gateway, issuer: Issuer) -> None:
    token = issuer.token()
    status, headers, _ = gateway.request(
        "GET", "/_authgate/check/orders/1", {"Authorization": f"Bearer {token}"}
    )
    assert status == 200
    assert headers["x-auth-subject"] == "alice"
    status, _, _ = gateway.request(
        "DELETE", "/_authgate/check/nowhere", {"Authorization": f"Bearer {token}"}
    )
    assert status == 403


@pytest.mark.parametrize(
    "fields",
    [
        {"X-Original-URI": "/public/x", "X-Original-Method": "GET"},
        {"X-Forwarded-Uri": "/public/x", "X-Forwarded-Method": "GET"},
        {"X-Original-URI": "/public/x"},
        {"X-Original-Method": "GET"},
        {"X-Forwarded-Uri": "/public/x"},
        {"X-Forwarded-Method": "GET"},
    ],
)
def test_envoy_path_with_a_header_convention_field_is_400(
    gateway: Gateway, fields: dict[str, str]
) -> None:
    # Envoy copies the client's x- headers: the path after the endpoint is the request being
    # served, and a field claiming another one is ambiguous (never judged as /public/x).
    status, headers, body = gateway.request("GET", "/_authgate/check/admin/secret", fields)
    assert status == 400
    assert json.loads(body)["error"] == "invalid_request"
    assert "x-auth-subject" not in headers


def test_public_route_is_allowed_without_identity(gateway: Gateway) -> None:
    status, headers, _ = gateway.request(
        "GET",
        "/_authgate/check",
        {"X-Original-Method": "GET", "X-Original-URI": "/public/a", "X-Auth-Subject": "mallory"},
    )
    assert status == 200
    identity = {name: value for name, value in headers.items() if name.startswith("x-auth-")}
    # Present and empty, so that a proxy copying them overwrites what the client sent.
    assert set(identity) == {
        "x-auth-subject", "x-auth-client-id", "x-auth-scopes", "x-auth-roles", "x-auth-issuer",
        "x-auth-token",
    }  # fmt: skip
    assert set(identity.values()) == {""}


def test_missing_or_bad_original_uri_is_400(gateway: Gateway) -> None:
    assert gateway.request("GET", "/_authgate/check")[0] == 400
    assert gateway.request("GET", "/_authgate/check", {"X-Original-URI": "/a%2fb"})[0] == 400


# -- nginx auth_request --------------------------------------------------------------------------


def _nginx_conf(prefix: Path, port: int, gateway_port: int, upstream_port: int) -> str:
    temp = " ".join(
        f"{name}_temp_path {prefix / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    identity = "\n".join(
        f"      auth_request_set $a_{v} $upstream_http_x_auth_{v};\n"
        f"      proxy_set_header X-Auth-{h} $a_{v};"
        for h, v in (("Subject", "subject"), ("Client-Id", "client_id"), ("Scopes", "scopes"),
                     ("Roles", "roles"), ("Issuer", "issuer"), ("Token", "token"))
    )  # fmt: skip
    return f"""
daemon off;
master_process off;
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  {temp}
  server {{
    listen 127.0.0.1:{port};
    location = /_auth {{
      internal;
      proxy_pass http://127.0.0.1:{gateway_port}/_authgate/check;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
    }}
    location / {{
      auth_request /_auth;
{identity}
      proxy_pass http://127.0.0.1:{upstream_port};
    }}
  }}
}}
"""


@pytest.fixture(scope="module")
def nginx(
    gateway: Gateway, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    if not Path(NGINX).exists():
        pytest.fail("nginx is required (apt-get install nginx-light; scripts/test installs it)")
    prefix = tmp_path_factory.mktemp("nginx")
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(_nginx_conf(prefix, port, gateway.port, upstream.port))
    process = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(
                    process.stderr.read().decode() if process.stderr else ""
                ) from None
            time.sleep(0.05)
    yield port
    process.terminate()
    process.wait(10)


def _via_nginx(port: int, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def test_nginx_auth_request_lets_a_valid_token_through(nginx: int, issuer: Issuer) -> None:
    status, _, body = _via_nginx(
        nginx,
        "/orders/9",
        {"Authorization": f"Bearer {issuer.token()}", "X-Auth-Subject": "mallory"},
    )
    assert status == 200
    record = json.loads(body)
    seen = {name.lower(): value for name, value in record["headers"]}
    assert seen["x-auth-subject"] == "alice"
    assert seen["x-auth-scopes"] == "orders:read orders:write"
    assert seen["x-auth-token"].count(".") == 2


def test_nginx_auth_request_relays_401_with_the_challenge(nginx: int, issuer: Issuer) -> None:
    status, headers, _ = _via_nginx(nginx, "/orders/9", {})
    assert status == 401
    assert headers["www-authenticate"] == 'Bearer realm="authgate", scope="orders:read"'
    now = int(time.time())
    status, headers, _ = _via_nginx(
        nginx, "/orders/9", {"Authorization": f"Bearer {issuer.token(exp=now - 10, iat=now - 100)}"}
    )
    assert status == 401
    assert 'error="invalid_token"' in headers["www-authenticate"]


def test_nginx_auth_request_relays_403(nginx: int, issuer: Issuer) -> None:
    status, _, _ = _via_nginx(nginx, "/admin/1", {"Authorization": f"Bearer {issuer.token()}"})
    assert status == 403
