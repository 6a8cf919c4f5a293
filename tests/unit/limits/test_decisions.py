"""Answers built from decisions: the RateLimit fields (draft-ietf-httpapi-ratelimit-headers),
Retry-After, 429 versus 503, the OAuth error body, and the Prometheus families."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, generate_latest

from authgate.limits import (
    Decision,
    FailMode,
    Limit,
    LimiterMetrics,
    LimitsCollector,
    RateLimited,
    parse_rate,
    rate_limit_headers,
    refusal,
)
from authgate.oauth.errors import TemporarilyUnavailable

TOKEN = Limit("token", parse_rate("60/minute", burst=60))
BURSTY = Limit("per-address", parse_rate("600/hour", burst=20), FailMode.CLOSED)

# RFC 8941 List of Items: sf-string with parameters whose keys are lcalpha / "*" then
# lcalpha / DIGIT / "_" / "-" / "." / "*", and Integer values.
_ITEM = r'"[a-z0-9_-]+"(;[a-z*][a-z0-9_.*-]*=[0-9]{1,15})+'
_LIST = re.compile(rf"{_ITEM}(, {_ITEM})*")


def decision(limit: Limit, allowed: bool, remaining: int, retry: float, window: float) -> Decision:
    return Decision(limit, allowed, remaining, retry, window, reset_after=30.0)


def test_allowed_request_headers() -> None:
    headers = rate_limit_headers([decision(TOKEN, True, 41, 0.0, 0.4)])
    assert headers == [
        ("RateLimit-Policy", '"token";q=60;w=60'),
        ("RateLimit", '"token";r=41;t=1'),
    ]
    for _, value in headers:
        assert _LIST.fullmatch(value)


def test_refused_request_headers_and_429() -> None:
    refused = decision(TOKEN, False, 0, 2.2, 2.2)
    answer = refusal([refused])
    assert answer is not None
    assert answer.status == 429
    assert isinstance(answer.error, RateLimited)
    assert answer.error.status_code == 429
    assert answer.error.to_dict() == {
        "error": "temporarily_unavailable",
        "error_description": "too many requests; retry later",
    }
    headers = dict(answer.headers)
    assert headers["RateLimit"] == '"token";r=0;t=3'
    # Retry-After never ends before the effective window (draft §6).
    assert headers["Retry-After"] == "3"


def test_several_limits_in_one_answer() -> None:
    decisions = [decision(TOKEN, True, 5, 0.0, 1.0), decision(BURSTY, False, 0, 5.5, 5.5)]
    headers = dict(rate_limit_headers(decisions))
    assert headers["RateLimit-Policy"] == (
        '"token";q=60;w=60, "per-address";q=600;w=3600;authgate-burst=20'
    )
    assert headers["RateLimit"] == '"token";r=5;t=1, "per-address";r=0;t=6'
    assert headers["Retry-After"] == "6"
    for name in ("RateLimit-Policy", "RateLimit"):
        assert _LIST.fullmatch(headers[name])


def test_429_wins_over_503_when_both_refuse() -> None:
    limited = decision(TOKEN, False, 0, 2.0, 2.0)
    unchecked = Decision(BURSTY, False, 0, 1.0, 0.0, 0.0, store_failed=True)
    answer = refusal([unchecked, limited])
    assert answer is not None
    assert answer.status == 429
    only_unchecked = refusal([unchecked])
    assert only_unchecked is not None
    assert only_unchecked.status == 503
    assert type(only_unchecked.error) is TemporarilyUnavailable
    assert dict(only_unchecked.headers)["Retry-After"] == "1"


def test_nothing_to_say_without_decisions_or_refusals() -> None:
    assert rate_limit_headers([]) == []
    assert refusal([]) is None
    assert refusal([decision(TOKEN, True, 1, 0.0, 1.0)]) is None


def test_collector_exposes_the_counters() -> None:
    metrics = LimiterMetrics()
    metrics.decisions[("token", "allowed")] += 3
    metrics.decisions[("token", "limited")] += 1
    metrics.decisions[("token", "fail_closed")] += 2
    metrics.store_errors = 4
    metrics.outages = 1
    metrics.store_up = False
    registry = CollectorRegistry()
    registry.register(LimitsCollector(metrics))
    text = generate_latest(registry).decode()
    assert 'authgate_limit_decisions_total{limit="token",outcome="allowed"} 3.0' in text
    assert 'authgate_limit_decisions_total{limit="token",outcome="limited"} 1.0' in text
    assert 'authgate_limit_decisions_total{limit="token",outcome="fail_closed"} 2.0' in text
    assert "authgate_limit_store_errors_total 4.0" in text
    assert "authgate_limit_store_outages_total 1.0" in text
    assert "authgate_limit_store_up 0.0" in text
