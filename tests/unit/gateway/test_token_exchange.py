"""The gateway's token exchanger (RFC 8693) against a small token endpoint on loopback: the form it
sends, the cache (hashed keys, expiry margin, LRU bound), single-flight, and how the AS's answers
become refusals (403) or unavailability (503); and which admitted credentials it exchanges."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import pytest

from authgate.gate import CredentialRules, Decision, Outcome
from authgate.gateway.config import TokenExchangeSettings, TokenExchangeTarget
from authgate.gateway.request_head import RequestHead
from authgate.gateway.token_exchange import (
    TOKEN_EXCHANGE_GRANT,
    ExchangeRefused,
    ExchangeUnavailable,
    NotExchangeable,
    TokenExchanger,
    exchangeable_token,
)
from authgate.verifier import Principal
from tests.support.request_heads import request_head

Reply = tuple[int, dict[str, Any]]


@dataclass
class TokenEndpoint:
    """Answers POST /token with `reply(form)`; records forms and Authorization headers."""

    reply: Callable[[dict[str, str]], Reply]
    forms: list[dict[str, str]] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    hold: bool = False
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        fields = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
        body = await reader.readexactly(int(fields.get("content-length", "0")))
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        self.forms.append(form)
        self.auth.append(fields.get("authorization", ""))
        self.arrived.set()
        if self.hold:
            await self.release.wait()
        status, data = self.reply(form)
        payload = json.dumps(data).encode()
        writer.write(
            b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%b" % (status, len(payload), payload)
        )
        await writer.drain()
        writer.close()


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def _issued(form: dict[str, str]) -> Reply:
    token = _b64(
        f"{form['grant_type'][-14:]}:{form.get('subject_token', 'actor')}:{form['resource']}"
    )
    return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 300}


@pytest.fixture
async def endpoint() -> AsyncIterator[TokenEndpoint]:
    ep = TokenEndpoint(_issued)
    server = await asyncio.start_server(ep.handle, "127.0.0.1", 0)
    ep.port = server.sockets[0].getsockname()[1]
    yield ep
    ep.release.set()
    server.close()


def _settings(port: int, **kw: Any) -> TokenExchangeSettings:
    return TokenExchangeSettings(
        f"http://127.0.0.1:{port}/token", "gw", "gw-secret", **{"timeout": 2.0, **kw}
    )


TARGET = TokenExchangeTarget("https://billing", "read")


async def test_the_request_is_a_token_exchange_with_the_gateway_as_actor(
    endpoint: TokenEndpoint,
) -> None:
    exchanger = TokenExchanger(_settings(endpoint.port))
    token = await exchanger.exchange("user-token", TARGET)
    assert token == _b64("token-exchange:user-token:https://billing")
    actor, exchange = endpoint.forms
    assert actor == {"grant_type": "client_credentials", "resource": "https://billing"}
    assert exchange == {
        "grant_type": TOKEN_EXCHANGE_GRANT,
        "subject_token": "user-token",
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "resource": "https://billing",
        "audience": "https://billing",
        "scope": "read",
        "actor_token": _b64("nt_credentials:actor:https://billing"),
        "actor_token_type": "urn:ietf:params:oauth:token-type:access_token",
    }
    basic = "Basic " + base64.b64encode(b"gw:gw-secret").decode()
    assert endpoint.auth == [basic, basic]
    await exchanger.aclose()


async def test_without_delegation_no_actor_token_is_sent(endpoint: TokenEndpoint) -> None:
    exchanger = TokenExchanger(_settings(endpoint.port, delegation=False))
    await exchanger.exchange("user-token", TokenExchangeTarget("https://billing"))
    [form] = endpoint.forms
    assert "actor_token" not in form
    assert "scope" not in form
    await exchanger.aclose()


async def test_results_are_cached_by_token_hash_audience_and_scope(
    endpoint: TokenEndpoint,
) -> None:
    outcomes: Counter[str] = Counter()
    exchanger = TokenExchanger(_settings(endpoint.port, delegation=False), outcomes)
    first = await exchanger.exchange("user-token", TARGET)
    assert await exchanger.exchange("user-token", TARGET) == first
    assert exchanger.cached("user-token", TARGET) == first
    assert exchanger.cached("other-token", TARGET) is None
    assert exchanger.cached("user-token", TokenExchangeTarget("https://billing", "write")) is None
    assert len(endpoint.forms) == 1
    assert outcomes == Counter({"miss": 1, "hit": 2})
    # Never the raw token as a key.
    assert all("user-token" not in repr(key) for key in exchanger._cache)
    await exchanger.aclose()


async def test_a_cached_token_is_dropped_a_margin_before_its_expiry(
    endpoint: TokenEndpoint,
) -> None:
    now = [1000.0]
    exchanger = TokenExchanger(
        _settings(endpoint.port, delegation=False, expiry_margin=10.0), clock=lambda: now[0]
    )
    await exchanger.exchange("user-token", TARGET)
    now[0] += 289  # expires_in 300, margin 10
    assert exchanger.cached("user-token", TARGET) is not None
    now[0] += 1
    assert exchanger.cached("user-token", TARGET) is None
    await exchanger.aclose()


async def test_the_cache_is_bounded_least_recently_used_first(endpoint: TokenEndpoint) -> None:
    exchanger = TokenExchanger(_settings(endpoint.port, delegation=False, cache_size=2))
    for token in ("a", "b"):
        await exchanger.exchange(token, TARGET)
    assert exchanger.cached("a", TARGET) is not None  # now "b" is the least recently used
    await exchanger.exchange("c", TARGET)
    assert exchanger.cached("b", TARGET) is None
    assert exchanger.cached("a", TARGET) is not None
    assert exchanger.cached("c", TARGET) is not None
    await exchanger.aclose()


async def test_concurrent_misses_share_one_exchange(endpoint: TokenEndpoint) -> None:
    outcomes: Counter[str] = Counter()
    exchanger = TokenExchanger(_settings(endpoint.port, delegation=False), outcomes)
    endpoint.hold = True
    waiting = [asyncio.ensure_future(exchanger.exchange("user-token", TARGET)) for _ in range(5)]
    await endpoint.arrived.wait()
    await asyncio.sleep(0)  # every waiter has joined the in-flight exchange
    waiting[0].cancel()  # a client that leaves does not cancel the others' exchange
    endpoint.release.set()
    results = await asyncio.gather(*waiting[1:])
    assert len(set(results)) == 1
    assert len(endpoint.forms) == 1
    assert outcomes == Counter({"miss": 1, "hit": 4})
    await exchanger.aclose()


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ((400, {"error": "invalid_target"}), "invalid_target"),
        ((400, {"error": "invalid_scope", "error_description": "no"}), "invalid_scope"),
        ((400, {"error": "Bad\r\nHeader"}), "invalid_request"),
    ],
)
async def test_a_refusal_by_the_as_is_a_refusal(
    endpoint: TokenEndpoint, reply: Reply, error: str
) -> None:
    outcomes: Counter[str] = Counter()
    endpoint.reply = lambda form: reply
    exchanger = TokenExchanger(_settings(endpoint.port, delegation=False), outcomes)
    with pytest.raises(ExchangeRefused) as info:
        await exchanger.exchange("user-token", TARGET)
    assert info.value.error == error
    assert exchanger.cached("user-token", TARGET) is None  # refusals are not cached
    assert outcomes["refused"] == 1
    await exchanger.aclose()


@pytest.mark.parametrize(
    "reply",
    [
        (401, {"error": "invalid_client"}),  # the gateway's own client: not the caller's fault
        (500, {"error": "server_error"}),
        (200, {"access_token": "t", "token_type": "N_A"}),
        (200, {"token_type": "Bearer"}),
        # Not a b64token: it would inject a field into the upstream's request head.
        (200, {"access_token": "t\r\nX-Auth-Subject: root", "token_type": "Bearer"}),
        (200, {"access_token": "tök", "token_type": "Bearer"}),
        # An answer past 64 KiB is not read whole.
        (200, {"access_token": "t", "token_type": "Bearer", "pad": "x" * 70_000}),
    ],
)
async def test_failures_of_the_as_or_the_gateway_client_are_unavailability(
    endpoint: TokenEndpoint, reply: Reply
) -> None:
    endpoint.reply = lambda form: reply
    exchanger = TokenExchanger(_settings(endpoint.port, delegation=False))
    with pytest.raises(ExchangeUnavailable) as info:
        await exchanger.exchange("user-token", TARGET)
    assert "gw-secret" not in str(info.value)
    assert "user-token" not in str(info.value)
    await exchanger.aclose()


async def test_an_as_that_does_not_answer_is_unavailability_after_the_timeout(
    endpoint: TokenEndpoint,
) -> None:
    endpoint.hold = True
    exchanger = TokenExchanger(_settings(endpoint.port, delegation=False, timeout=0.2))
    with pytest.raises(ExchangeUnavailable, match="unreachable"):
        await exchanger.exchange("user-token", TARGET)
    await exchanger.aclose()


def _head(authorization: str | None) -> RequestHead:
    fields = {b"authorization": authorization.encode()} if authorization else {}
    return request_head(b"/billing", fields)


def _decision(claims: dict[str, Any] | None = None, method: str = "jwt") -> Decision:
    principal = Principal("alice", "web", frozenset(), frozenset(), "https://as", claims or {})
    if method != "jwt":
        principal = Principal("k", None, frozenset(), frozenset(), None, method="api_key")
    return Decision(Outcome.ALLOWED, "/billing", principal=principal)


def test_only_a_bearer_access_token_is_exchanged() -> None:
    rules = CredentialRules(api_key_header="x-api-key", dpop=True)
    assert exchangeable_token(_head("Bearer abc.def"), _decision(), rules) == "abc.def"
    # DPoP-bound (RFC 9449) or certificate-bound (RFC 8705) tokens: the gateway cannot prove
    # possession to the AS, and a bearer token in their place would drop the binding.
    dpop = exchangeable_token(_head("DPoP abc.def"), _decision(), rules)
    assert isinstance(dpop, NotExchangeable)
    assert "sender-constrained" in dpop.reason
    bound = exchangeable_token(
        _head("Bearer abc.def"), _decision({"cnf": {"x5t#S256": "x"}}), rules
    )
    assert isinstance(bound, NotExchangeable)
    head = _head(None)
    head.headers.append((b"X-Api-Key", b"key"))
    head.fields[b"x-api-key"] = b"key"
    api_key = exchangeable_token(head, _decision(method="api_key"), rules)
    assert isinstance(api_key, NotExchangeable)
    assert json.loads(api_key.body())["error"] == "invalid_request"


@pytest.mark.parametrize("named", ["self", "other"])
async def test_the_token_endpoint_from_metadata_must_be_the_issuers(
    endpoint: TokenEndpoint, named: str
) -> None:
    """RFC 8414 §3.3: metadata naming another issuer is not used, and no token is sent."""
    url = f"http://127.0.0.1:{endpoint.port}"
    issuer = url if named == "self" else "https://other.example"
    metadata = {"issuer": issuer, "token_endpoint": url + "/token"}
    endpoint.reply = lambda form: _issued(form) if form else (200, metadata)
    settings = TokenExchangeSettings("", "gw", "s", delegation=False, issuer=url)
    exchanger = TokenExchanger(settings)
    if named == "self":
        await exchanger.exchange("user-token", TARGET)
        await exchanger.exchange("other-token", TARGET)
        assert [bool(f) for f in endpoint.forms] == [False, True, True]  # metadata fetched once
    else:
        with pytest.raises(ExchangeUnavailable, match="issuer"):
            await exchanger.exchange("user-token", TARGET)
        assert all("subject_token" not in f for f in endpoint.forms)
    await exchanger.aclose()
