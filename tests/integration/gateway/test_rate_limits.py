"""Rate limits in the running gateway (the real CLI in subprocesses): 429 with `Retry-After` and
the RateLimit fields through the proxy and through forward-auth (also behind a real nginx, with the
documented lines that map its 500 back to 429), the fields on allowed responses, tiers, keys,
trusted-proxy addresses, metrics and logs; two gateways sharing one count through the shared
Redis (exact bound, and the control that the bound catches per-process counting); a Redis of the
test's own killed, restarted, frozen and thawed mid-run; hostile keys that never blow up the key
space."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import math
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from authgate.config import ConfigError
from authgate.gate.rate_limits import LimitsSettings
from authgate.gateway.config import ClientLimits
from authgate.gateway.config_loader import load_gateway_config
from tests.support.gateway import Gateway, Issuer, Upstream, free_port, gateway_toml

# The limits tests' own-Redis helper (a redis-server on a free port that a test may kill).
from tests.support.limits import RedisProcess

NGINX = "/usr/sbin/nginx"
SHARED_REDIS = "redis://127.0.0.1:6379/0"

LIMITED_ROUTES = """
[[routes]]
path = "/rl/subject"
name = "rl-subject"
upstream = "{up}"
rate_limit = "3/minute"
burst = 3

[[routes]]
path = "/rl/client"
name = "rl-client"
upstream = "{up}"
rate_limit = "2/minute"
burst = 2
rate_limit_key = "client_id"

[[routes]]
path = "/rl/tiers"
name = "rl-tiers"
upstream = "{up}"
limits = [{{ role = "admin", rate = "4/minute", burst = 4 }}, {{ rate = "1/minute" }}]

[[routes]]
path = "/rl/public"
name = "rl-public"
public = true
upstream = "{up}"
rate_limit = "2/minute"
burst = 2

[[routes]]
path = "/rl/check"
name = "rl-check"
rate_limit = "2/minute"
burst = 2
"""


SHARED_TABLE = """
[[issuers]]
issuer = "https://idp.example.com"
jwks_uri = "https://idp.example.com/jwks"
audiences = ["api"]
[[routes]]
path = "/a"
upstream = "http://127.0.0.1:9000"
rate_limit = "5/second"
"""


def test_limits_table_holds_the_request_sizes_and_the_rate_limits_store(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(
        '[limits]\nmax_headers = 20\nheader_timeout = "2s"\ntimeout = "50ms"\n'
        'namespace = "edge"\n' + SHARED_TABLE
    )
    config = load_gateway_config(path, environ={})
    assert config.settings.client == ClientLimits(max_headers=20, header_timeout=2.0)
    assert config.gate.limits == LimitsSettings(timeout=0.05, namespace="edge")
    path.write_text("[limits]\nmax_headers = 20\n" + SHARED_TABLE)
    assert load_gateway_config(path, environ={}).gate.limits == LimitsSettings()
    path.write_text("[limits]\nmax_headerz = 20\n" + SHARED_TABLE)
    with pytest.raises(ConfigError) as caught:
        load_gateway_config(path, environ={})
    assert caught.value.key == "limits.max_headerz"
    path.write_text("[limits]\nmax_headers = 0\n" + SHARED_TABLE)
    with pytest.raises(ConfigError) as caught:
        load_gateway_config(path, environ={})
    assert caught.value.key == "limits.max_headers"


def limited_toml(issuer: Issuer, upstream: Upstream, extra: str = "") -> str:
    return gateway_toml(issuer, upstream, extra, LIMITED_ROUTES.format(up=upstream.url))


def bearer(token: str, **more: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **more}


def metrics(gateway: Gateway) -> dict[str, float]:
    status, _, body = gateway.request("GET", "/metrics")
    assert status == 200
    values = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


@pytest.fixture(scope="module")
def limited(
    issuer: Issuer, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """Limits counted in memory; the test client (127.0.0.1) is a trusted proxy."""
    gw = Gateway(
        limited_toml(
            issuer, upstream, 'trusted_proxies = ["127.0.0.1"]\n[limits]\nheaders = "all"'
        ),
        tmp_path_factory.mktemp("limited"),
    )
    yield gw
    gw.stop()


def test_proxy_answers_429_with_the_fields_and_the_upstream_sees_nothing_more(
    limited: Gateway, issuer: Issuer, upstream: Upstream
) -> None:
    token = issuer.token(sub="proxy-user")
    marker = uuid.uuid4().hex
    answers = [limited.request("GET", f"/rl/subject/{marker}", bearer(token)) for _ in range(4)]
    assert [a[0] for a in answers] == [200, 200, 200, 429]
    _, headers, body = answers[0]
    assert json.loads(body)["path"] == f"/rl/subject/{marker}"  # the upstream answered
    assert headers["ratelimit-policy"] == '"rl-subject";q=3;w=60'
    assert headers["ratelimit"] == '"rl-subject";r=2;t=20'
    _, headers, body = answers[3]
    assert headers["retry-after"] == "20"
    assert headers["ratelimit"] == '"rl-subject";r=0;t=20'
    assert headers["ratelimit-policy"] == '"rl-subject";q=3;w=60'
    assert headers["cache-control"] == "no-store"
    assert json.loads(body) == {
        "error": "temporarily_unavailable",
        "error_description": "too many requests; retry later",
    }
    reached = [r for r in upstream.state.requests if marker in r["path"]]
    assert len(reached) == 3  # the refused request never left the gateway
    # Another subject has its own count; a refusal for a bad token spends nothing.
    assert limited.request("GET", "/rl/subject/x", bearer(issuer.token(sub="other")))[0] == 200
    for _ in range(3):
        assert limited.request("GET", "/rl/subject/x", bearer("bad.token.here"))[0] == 401
    fresh = issuer.token(sub="fresh")
    assert [limited.request("GET", "/rl/subject", bearer(fresh))[0] for _ in range(4)] == [
        200,
        200,
        200,
        429,
    ]


def test_tiers_and_client_keys(limited: Gateway, issuer: Issuer) -> None:
    admin = issuer.token(sub="tier-admin", roles=["admin"])
    plain = issuer.token(sub="tier-plain", roles=[])
    assert [limited.request("GET", "/rl/tiers", bearer(admin))[0] for _ in range(5)] == [
        *[200] * 4,
        429,
    ]
    assert [limited.request("GET", "/rl/tiers", bearer(plain))[0] for _ in range(2)] == [200, 429]
    headers = limited.request("GET", "/rl/tiers", bearer(issuer.token(sub="a2", roles=["admin"])))[
        1
    ]
    assert headers["ratelimit-policy"] == '"rl-tiers-admin";q=4;w=60'
    # Two subjects of one client share the client's count.
    one = issuer.token(sub="c1", client_id="shared-client")
    two = issuer.token(sub="c2", client_id="shared-client")
    statuses = [limited.request("GET", "/rl/client", bearer(t))[0] for t in (one, two, one)]
    assert statuses == [200, 200, 429]


def test_public_routes_count_the_address_the_trusted_proxy_names(limited: Gateway) -> None:
    def status(xff: str) -> int:
        return limited.request("GET", "/rl/public", {"X-Forwarded-For": xff})[0]

    assert [status("192.0.2.1") for _ in range(3)] == [200, 200, 429]
    assert status("192.0.2.2") == 200
    # What the client wrote before the proxy's entry does not matter: the right-most untrusted
    # entry is the client.
    assert status("10.9.9.9, 192.0.2.1") == 429
    # IPv6 by /64: another address of the same subscriber gets no fresh count.
    assert [status("2001:db8:5:6::1"), status("2001:db8:5:6::2"), status("2001:db8:5:6::3")] == [
        200,
        200,
        429,
    ]


def test_spoofed_forwarding_headers_from_an_untrusted_peer_change_nothing(
    issuer: Issuer, upstream: Upstream, tmp_path: Path
) -> None:
    gw = Gateway(limited_toml(issuer, upstream), tmp_path)
    try:
        statuses = [
            gw.request("GET", "/rl/public", {"X-Forwarded-For": f"198.51.100.{i}"})[0]
            for i in range(4)
        ]
        assert statuses == [200, 200, 429, 429]  # one peer, one count
    finally:
        gw.stop()


def test_forward_auth_answers_429_the_same_way(limited: Gateway, issuer: Issuer) -> None:
    token = issuer.token(sub="fa-user")
    check = {"X-Original-URI": "/rl/check/1", "X-Original-Method": "GET"}
    first = limited.request("GET", "/_authgate/check", bearer(token, **check))
    assert first[0] == 200
    assert first[1]["x-auth-subject"] == "fa-user"
    assert first[1]["ratelimit"] == '"rl-check";r=1;t=30'
    assert limited.request("GET", "/_authgate/check", bearer(token, **check))[0] == 200
    status, headers, body = limited.request("GET", "/_authgate/check", bearer(token, **check))
    assert status == 429
    assert headers["retry-after"] == "30"
    assert headers["ratelimit-policy"] == '"rl-check";q=2;w=60'
    assert json.loads(body)["error"] == "temporarily_unavailable"
    assert "x-auth-subject" not in headers


def test_metrics_and_logs_name_the_route_and_the_key(limited: Gateway, issuer: Issuer) -> None:
    token = issuer.token(sub="metrics-rl")
    for _ in range(5):
        limited.request("GET", "/rl/subject/m", bearer(token))
    values = metrics(limited)
    proxy = 'authgate_rate_limited_total{endpoint="proxy",key="subject",route="rl-subject"}'
    assert values[proxy] >= 2
    assert values['authgate_decisions_total{endpoint="proxy",outcome="limited"}'] >= 2
    assert values['authgate_limit_decisions_total{limit="rl-subject",outcome="limited"}'] >= 2
    assert values['authgate_limit_decisions_total{limit="rl-subject",outcome="allowed"}'] >= 3
    assert values["authgate_limit_store_up"] == 1
    assert values["authgate_limit_store_errors_total"] == 0
    record = limited.wait_for_log(
        lambda r: r.get("reason") == "rate_limited" and r.get("subject") == "metrics-rl"
    )
    assert record["status"] == 429
    assert record["limit"] == "rl-subject"
    assert record["limit_key"] == "subject"
    assert token not in "\n".join(limited.logs)


# -- nginx auth_request ----------------------------------------------------------------------


def nginx_conf(prefix: Path, port: int, gateway_port: int, upstream_port: int) -> str:
    temp = " ".join(
        f"{name}_temp_path {prefix / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # The lines docs/gateway.md gives for rate limits behind nginx.
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
      auth_request_set $auth_status $upstream_status;
      auth_request_set $auth_retry_after $upstream_http_retry_after;
      auth_request_set $auth_ratelimit $upstream_http_ratelimit;
      auth_request_set $auth_ratelimit_policy $upstream_http_ratelimit_policy;
      error_page 500 = @auth_failed;
      proxy_pass http://127.0.0.1:{upstream_port};
    }}
    location @auth_failed {{
      default_type application/json;
      add_header Retry-After $auth_retry_after always;
      add_header RateLimit $auth_ratelimit always;
      add_header RateLimit-Policy $auth_ratelimit_policy always;
      if ($auth_status = 429) {{
        return 429 '{{"error":"temporarily_unavailable","error_description":"too many requests"}}';
      }}
      if ($auth_status = 503) {{
        return 503 '{{"error":"temporarily_unavailable"}}';
      }}
      return 500;
    }}
  }}
}}
"""


@pytest.fixture(scope="module")
def nginx(
    limited: Gateway, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    if not Path(NGINX).exists():
        pytest.fail("nginx is required (apt-get install nginx-light; scripts/test installs it)")
    prefix = tmp_path_factory.mktemp("nginx-rl")
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_conf(prefix, port, limited.port, upstream.port))
    process = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(
                    process.stderr.read().decode() if process.stderr else ""
                ) from None
            time.sleep(0.05)
    yield port
    process.terminate()
    process.wait(10)


def via_nginx(port: int, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_nginx_relays_429_with_the_documented_lines(nginx: int, issuer: Issuer) -> None:
    token = issuer.token(sub="nginx-rl")
    answers = [via_nginx(nginx, "/rl/check/7", bearer(token)) for _ in range(3)]
    assert [a[0] for a in answers] == [200, 200, 429]
    _, headers, body = answers[2]
    assert headers["retry-after"] == "30"
    assert headers["ratelimit"] == '"rl-check";r=0;t=30'
    assert headers["ratelimit-policy"] == '"rl-check";q=2;w=60'
    assert json.loads(body)["error"] == "temporarily_unavailable"
    # The other refusals are unchanged by these lines.
    assert via_nginx(nginx, "/rl/check/7", {})[0] == 401


# -- two gateways, one count in Redis -----------------------------------------------------------

SHARED_ROUTE = """
[[routes]]
path = "/shared"
name = "shared"
upstream = "{up}"
rate_limit = "30/minute"
burst = 10
"""


def two_gateways(
    issuer: Issuer, upstream: Upstream, directory: Path, limits: str
) -> tuple[Gateway, Gateway]:
    config = gateway_toml(issuer, upstream, limits, SHARED_ROUTE.format(up=upstream.url))
    (directory / "a").mkdir()
    (directory / "b").mkdir()
    first = Gateway(config, directory / "a")
    try:
        second = Gateway(config, directory / "b")
    except Exception:
        first.stop()
        raise
    return first, second


def admitted_by_both(gateways: tuple[Gateway, Gateway], token: str, n: int) -> tuple[int, float]:
    """`n` requests from 8 threads, spread over both gateways: (how many got 200, seconds)."""
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(
            pool.map(
                lambda i: gateways[i % 2].request("GET", "/shared/x", bearer(token))[0], range(n)
            )
        )
    elapsed = time.monotonic() - started
    assert set(statuses) <= {200, 429}
    return statuses.count(200), elapsed


def gcra_bound(count: int, period: float, burst: int, elapsed: float) -> int:
    """The most any span of `elapsed` seconds can admit (see authgate.limits.gcra): every admitted
    request's Redis time lies within the test's own span, so this bounds the run."""
    interval = period / count
    return burst + math.ceil(elapsed / interval) - 1


def test_two_gateways_share_one_limit_through_redis(
    issuer: Issuer, upstream: Upstream, tmp_path: Path
) -> None:
    namespace = f"test-{uuid.uuid4().hex[:16]}"
    limits = f'[limits]\nredis_url = "{SHARED_REDIS}"\nnamespace = "{namespace}"\ntimeout = 2\n'
    client = redis.Redis.from_url(SHARED_REDIS, socket_timeout=5)
    first, second = two_gateways(issuer, upstream, tmp_path, limits)
    try:
        admitted, elapsed = admitted_by_both((first, second), issuer.token(sub="shared-user"), 60)
        # 30/minute with a burst of 10: a full bucket admits 10 at once, then one every 2 s.
        assert 10 <= admitted <= gcra_bound(30, 60, 10, elapsed), (admitted, elapsed)
        keys = list(client.scan_iter(match=f"{namespace}:*"))
        assert len(keys) == 1
        assert 0 < client.pttl(keys[0]) <= 60_000
    finally:
        first.stop()
        second.stop()
        for key in client.scan_iter(match=f"{namespace}:*"):
            client.delete(key)
        client.close()


def test_the_bound_catches_counting_per_process(
    issuer: Issuer, upstream: Upstream, tmp_path: Path
) -> None:
    """The control: with the memory store each process counts alone, and the same run admits a
    burst per process, more than the shared bound allows."""
    first, second = two_gateways(issuer, upstream, tmp_path, "")
    try:
        admitted, elapsed = admitted_by_both((first, second), issuer.token(sub="apart"), 60)
        assert admitted >= 20
        assert admitted > gcra_bound(30, 60, 10, elapsed) or elapsed >= 20  # bounded twice over
    finally:
        first.stop()
        second.stop()


# -- a Redis of the test's own, killed and frozen mid-run -----------------------------------------

OUTAGE_ROUTES = """
[[routes]]
path = "/open"
name = "open-route"
upstream = "{up}"
rate_limit = "100/minute"

[[routes]]
path = "/closed"
name = "closed-route"
upstream = "{up}"
rate_limit = "100/minute"
on_store_failure = "closed"
"""
PASSWORD = "own-redis-Secret-4711"


def require_password(server: RedisProcess) -> None:
    client = redis.Redis(port=server.port, socket_timeout=5)
    client.config_set("requirepass", PASSWORD)
    client.close()


@pytest.fixture(scope="module")
def own_redis() -> Iterator[RedisProcess]:
    server = RedisProcess()
    server.start()
    require_password(server)
    yield server
    server.kill()


@pytest.fixture(scope="module")
def outage_gateway(
    own_redis: RedisProcess,
    issuer: Issuer,
    upstream: Upstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    url = f"redis://:{PASSWORD}@127.0.0.1:{own_redis.port}/0"
    limits = (
        '[limits]\nredis_url_env = "RL_TEST_REDIS_URL"\ntimeout = "200ms"\n'
        'retry_interval = "200ms"\nheaders = "all"\n'
    )
    config = gateway_toml(issuer, upstream, limits, OUTAGE_ROUTES.format(up=upstream.url))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RL_TEST_REDIS_URL", url)  # the child inherits it
        gw = Gateway(config, tmp_path_factory.mktemp("outage"))
    yield gw
    gw.stop()
    assert PASSWORD not in "\n".join(gw.logs)


def wait_until(predicate: object, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        time.sleep(0.05)


def counted(gateway: Gateway, path: str, token: str) -> bool:
    status, headers, _ = gateway.request("GET", path, bearer(token))
    return status == 200 and "ratelimit" in headers


def test_a_killed_redis_fails_open_and_closed_then_recovers(
    outage_gateway: Gateway, own_redis: RedisProcess, issuer: Issuer
) -> None:
    gw, token = outage_gateway, issuer.token(sub="outage-user")
    assert counted(gw, "/open", token)
    assert counted(gw, "/closed", token)
    own_redis.kill()
    for _ in range(3):  # every request is answered by the failure mode; never a 500
        status, headers, _ = gw.request("GET", "/open", bearer(token))
        assert status == 200
        assert "ratelimit" not in headers  # nothing is known of the quota
        assert headers["ratelimit-policy"] == '"open-route";q=100;w=60;authgate-burst=10'
        status, headers, body = gw.request("GET", "/closed", bearer(token))
        assert status == 503
        assert int(headers["retry-after"]) >= 1
        assert json.loads(body)["error"] == "temporarily_unavailable"
    values = metrics(gw)
    assert values["authgate_limit_store_up"] == 0
    assert values["authgate_limit_store_outages_total"] >= 1
    assert values["authgate_limit_store_errors_total"] >= 1
    assert values['authgate_limit_decisions_total{limit="closed-route",outcome="fail_closed"}'] >= 3
    assert values['authgate_limit_decisions_total{limit="open-route",outcome="fail_open"}'] >= 3
    assert values['authgate_decisions_total{endpoint="proxy",outcome="unavailable"}'] >= 3
    warning = gw.wait_for_log(lambda r: "rate-limit store unavailable" in r.get("msg", ""))
    assert warning["level"] == "warning"
    assert f"127.0.0.1:{own_redis.port}" in warning["msg"]
    own_redis.start()
    require_password(own_redis)
    wait_until(lambda: counted(gw, "/closed", token))  # recovered, no restart
    assert counted(gw, "/open", token)
    gw.wait_for_log(lambda r: "answers again" in r.get("msg", ""))
    assert metrics(gw)["authgate_limit_store_up"] == 1
    assert PASSWORD not in "\n".join(gw.logs)


def test_a_frozen_redis_costs_a_request_its_timeout_then_recovers(
    outage_gateway: Gateway, own_redis: RedisProcess, issuer: Issuer
) -> None:
    gw, token = outage_gateway, issuer.token(sub="frozen-user")
    wait_until(lambda: counted(gw, "/closed", token))
    own_redis.freeze()
    try:
        # Each answer comes back (the client's own timeout is 10 s): the store's 200 ms bound.
        assert gw.request("GET", "/open", bearer(token))[0] == 200
        assert gw.request("GET", "/closed", bearer(token))[0] == 503
    finally:
        own_redis.thaw()
    wait_until(lambda: counted(gw, "/closed", token))
    assert counted(gw, "/open", token)


# -- hostile keys in Redis --------------------------------------------------------------------

HOSTILE_ROUTES = """
[[routes]]
path = "/by-address"
public = true
upstream = "{up}"
rate_limit = "5/minute"
burst = 5

[[routes]]
path = "/by-tenant"
upstream = "{up}"
rate_limit = "5/minute"
burst = 5
rate_limit_key = "claim:tenant"
"""


def test_hostile_keys_never_blow_up_the_key_space(
    issuer: Issuer, upstream: Upstream, tmp_path: Path
) -> None:
    namespace = f"test-{uuid.uuid4().hex[:16]}"
    limits = (
        'trusted_proxies = ["127.0.0.1"]\n'
        f'[limits]\nredis_url = "{SHARED_REDIS}"\nnamespace = "{namespace}"\ntimeout = 2\n'
    )
    config = gateway_toml(issuer, upstream, limits, HOSTILE_ROUTES.format(up=upstream.url))
    client = redis.Redis.from_url(SHARED_REDIS, socket_timeout=5)
    gw = Gateway(config, tmp_path)
    try:
        forwarded = [
            "a" * 2000,  # not an address: counted as written, hashed
            "1.2.3.4:80",
            "::ffff:192.0.2.55",  # the same client as 192.0.2.55
            "192.0.2.55",
            "2001:db8:7:7::1",
            "2001:db8:7:7::2",  # the same /64
            "unknown, 1.1.1.1",  # the right-most untrusted entry counts
            "\u00e9\u00e8",
            "a:b",
            "a",
        ]
        for value in forwarded:
            status, _, _ = gw.request(
                "GET", "/by-address", [("X-Forwarded-For", value.encode().decode("latin-1"))]
            )
            assert status == 200
        tenants: list[object] = ["x" * 3000, "a:b", "a", "1", 1, ["a", "b"], "a,b", {"k": "v"}]
        for tenant in tenants:
            token = issuer.token(sub="hostile", tenant=tenant)
            assert gw.request("GET", "/by-tenant", bearer(token))[0] == 200
        keys = list(client.scan_iter(match=f"{namespace}:*"))
        # One key per distinct client: 8 addresses (two pairs are one client each), 8 tenants.
        assert len(keys) == 16
        assert len({len(k) for k in keys}) == 1  # one short length, whatever the client sent
        # Each key expires by itself, when its bucket is full again (5 times 12 s at most).
        assert all(0 < client.pttl(k) <= 60_000 for k in keys)
        raw = b"".join(keys)
        for value in (b"192.0.2", b"2001", b"xxxx", b"aaaa"):
            assert value not in raw  # the store never sees what the client sent
    finally:
        gw.stop()
        for key in client.scan_iter(match=f"{namespace}:*"):
            client.delete(key)
        client.close()
    assert re.search(r'"status":5\d\d', "\n".join(gw.logs)) is None  # never a 5xx
    assert not [r for r in gw.log_records() if r.get("level") == "error"]


def reloads(gateway: Gateway) -> int:
    return sum(r.get("msg") == "configuration reloaded" for r in gateway.log_records())


def test_a_reload_keeps_the_counts_unless_the_store_changes(
    issuer: Issuer, upstream: Upstream, tmp_path: Path
) -> None:
    config = limited_toml(issuer, upstream)
    gw = Gateway(config, tmp_path)
    token = issuer.token(sub="reload-user")
    limited = 'authgate_limit_decisions_total{limit="rl-subject",outcome="limited"}'
    try:
        statuses = [gw.request("GET", "/rl/subject", bearer(token))[0] for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        # A new rate for the route: the same store, so the same limiter, counts and metrics.
        gw.reload(config.replace('rate_limit = "3/minute"', 'rate_limit = "4/minute"'))
        wait_until(lambda: reloads(gw) == 1)
        assert gw.request("GET", "/rl/subject", bearer(token))[0] == 429
        assert metrics(gw)[limited] == 2
        # Another namespace: a new limiter, whose counts start afresh.
        gw.reload('[limits]\nnamespace = "second"\n' + config)
        wait_until(lambda: reloads(gw) == 2)
        assert gw.request("GET", "/rl/subject", bearer(token))[0] == 200
        assert limited not in metrics(gw)
    finally:
        gw.stop()
