"""`[admin] listen`: the gateway's probes and metrics on their own address, off the public port
(the server's rule, `authgate.config.admin`), with forward-auth and proxying unchanged."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

from tests.support.gateway import Upstream, free_port, live_gateway


def _get(port: int, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _admin(port: int) -> str:
    return f'[admin]\nlisten = "127.0.0.1:{port}"\n'


def _metrics_route(upstream: Upstream) -> str:
    # A public route over the metrics path: once the admin listener serves metrics, the public
    # /metrics is an ordinary path and goes to it.
    return f'\n[[routes]]\npath = "/metrics"\npublic = true\nupstream = "{upstream.url}"\n'


def test_probes_and_metrics_move_to_the_admin_port(tmp_path: Path) -> None:
    port = free_port()
    with live_gateway(tmp_path, _admin(port)) as live:
        gw = live.gateway
        started = gw.wait_for_log(lambda r: r.get("msg") == "listening")
        assert (started["admin_host"], started["admin_port"]) == ("127.0.0.1", port)
        token = live.issuer.token()
        assert gw.request("GET", "/orders/1", {"Authorization": f"Bearer {token}"})[0] == 200

        status, headers, body = _get(port, "GET", "/metrics")
        assert status == 200
        assert headers["content-type"].startswith("text/plain")
        # The admin port reports the public port's traffic.
        assert 'authgate_decisions_total{endpoint="proxy",outcome="allowed"} 1.0' in body.decode()
        status, _, body = _get(port, "GET", "/readyz")
        assert (status, json.loads(body)["ready"]) == (200, True)
        assert _get(port, "GET", "/healthz")[:3:2] == (200, b'{"status":"ok"}')
        assert _get(port, "HEAD", "/metrics")[0] == 200
        assert _get(port, "POST", "/metrics")[0] == 405
        # Nothing else is served there: not the routes, not forward-auth, not the JWKS.
        for path in ("/orders/1", "/public/x", "/_authgate/check", "/"):
            status, _, body = _get(port, "GET", path)
            assert (status, json.loads(body)["error"]) == (404, "not_found"), path
        assert not live.upstream.state.carried(b"GET /public/x")

        # The public port keeps liveness only; the other two are ordinary paths there (no
        # route covers them: refused like any unrouted path).
        assert gw.request("GET", "/healthz")[0] == 200
        for path in ("/metrics", "/readyz"):
            status, _, body = gw.request("GET", path)
            assert (status, json.loads(body)["error"]) == (403, "access_denied"), path


def test_the_public_metrics_path_goes_to_a_route_that_covers_it(tmp_path: Path) -> None:
    port = free_port()
    with live_gateway(tmp_path, _admin(port), _metrics_route) as live:
        status, _, _ = live.gateway.request("GET", "/metrics")
        assert status == 200
        assert live.upstream.state.requests[-1]["path"] == "/metrics"
        assert b"authgate_decisions_total" in _get(port, "GET", "/metrics")[2]


def test_without_the_admin_listener_the_public_port_serves_all_three(tmp_path: Path) -> None:
    with live_gateway(tmp_path, routes=_metrics_route) as live:
        gw = live.gateway
        status, _, body = gw.request("GET", "/metrics")  # the gateway's own, never proxied
        assert (status, b"authgate_decisions_total" in body) == (200, True)
        assert live.upstream.state.requests == []
        assert gw.request("GET", "/readyz")[0] == 200
        assert "admin_port" not in gw.wait_for_log(lambda r: r.get("msg") == "listening")


def test_forward_auth_stays_on_the_public_port(tmp_path: Path) -> None:
    port = free_port()
    with live_gateway(tmp_path, _admin(port)) as live:
        check = {"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/orders/7"}
        token = live.issuer.token()
        status, headers, _ = live.gateway.request(
            "GET", "/_authgate/check", {**check, "Authorization": f"Bearer {token}"}
        )
        assert (status, headers["x-auth-subject"]) == (200, "alice")
        status, headers, _ = live.gateway.request("GET", "/_authgate/check", check)
        assert (status, headers["www-authenticate"]) == (
            401,
            'Bearer realm="authgate", scope="orders:read"',
        )
        assert _get(port, "GET", "/_authgate/check")[0] == 404
        metrics = _get(port, "GET", "/metrics")[2].decode()
        assert 'authgate_decisions_total{endpoint="forward_auth",outcome="allowed"} 1.0' in metrics


def test_a_reload_keeps_the_running_admin_listener(tmp_path: Path) -> None:
    port, other = free_port(), free_port()
    with live_gateway(tmp_path, _admin(port)) as live:
        gw = live.gateway
        gw.reload(gw.config_path.read_text().replace(_admin(port), _admin(other)))
        gw.wait_for_log(lambda r: "restart only" in r.get("msg", ""))
        gw.wait_for_log(lambda r: r.get("msg") == "configuration reloaded")
        assert _get(port, "GET", "/metrics")[0] == 200
        assert gw.request("GET", "/metrics")[0] == 403


def test_admin_connections_close_on_stop(tmp_path: Path) -> None:
    port = free_port()
    with live_gateway(tmp_path, _admin(port)) as live:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/healthz")
        assert conn.getresponse().read() == b'{"status":"ok"}'  # kept alive
        live.gateway.stop()
        assert live.gateway.process.returncode == 0
        conn.close()
