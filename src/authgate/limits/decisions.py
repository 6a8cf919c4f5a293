"""Decisions and the answers built from them: 429 or 503 with `Retry-After`, the OAuth error body,
and the `RateLimit-Policy` / `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers; a List of
Items whose value is the policy name as a String, RFC 8941):

    RateLimit-Policy: "token";q=60;w=60
    RateLimit: "token";r=12;t=1

`q`/`w` are the limit's count and period; `r` is what may be sent right now and `t` the seconds
within which no more than `r` will be admitted (the time until the bucket gains one, rounded up).
A burst different from the count is given as the vendor parameter `authgate-burst` (the draft
asks for such parameters to carry a vendor prefix). Values are whole seconds, rounded up, so a
client that waits as told is admitted.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass

from authgate.limits.rates import Limit
from authgate.oauth.errors import OAuthError, TemporarilyUnavailable

__all__ = [
    "Decision",
    "RateLimited",
    "Refusal",
    "rate_limit_headers",
    "refusal",
]


@dataclass(slots=True)  # read-only by convention; not frozen: one per request, frozen is slower
class Decision:
    """The answer of a limit to one request.

    `remaining`: requests admitted right now after this one; `retry_after`: seconds before the
    next one is admitted (0 while `remaining` > 0); `window`: seconds within which no more than
    `remaining` are admitted; `reset_after`: seconds until the limit is untouched again.
    `store_failed`: the store did not answer, so the limit's failure mode decided and nothing was
    counted (then `retry_after` is when the store is tried again, and the other figures are 0).
    """

    limit: Limit
    allowed: bool
    remaining: int
    retry_after: float
    window: float
    reset_after: float
    store_failed: bool = False

    @property
    def status(self) -> int | None:
        """None when allowed; 429 when the rate is exceeded; 503 when a fail-closed limit could not
        be checked (the client did nothing wrong: the service is temporarily unable to count)."""
        if self.allowed:
            return None
        return 503 if self.store_failed else 429


def _seconds(value: float) -> int:
    return max(1, math.ceil(value))


@functools.lru_cache(maxsize=256)  # limits come from configuration: a few, each sent often
def _policy_item(limit: Limit) -> str:
    rate = limit.rate
    item = f'"{limit.name}";q={rate.count};w={rate.period}'
    return item if rate.burst == rate.count else f"{item};authgate-burst={rate.burst}"


def rate_limit_headers(decisions: Iterable[Decision]) -> list[tuple[str, str]]:
    """`RateLimit-Policy`, `RateLimit` and (when one refuses) `Retry-After` for the decisions
    that applied to one request, in that order. A decision made without the store has no
    `RateLimit` item (nothing is known of the quota); `Retry-After` is the longest wait asked."""
    decisions = list(decisions)
    if not decisions:
        return []
    headers = [("RateLimit-Policy", ", ".join(_policy_item(d.limit) for d in decisions))]
    items = [
        f'"{d.limit.name}";r={d.remaining};t={_seconds(d.window)}'
        for d in decisions
        if not d.store_failed
    ]
    if items:
        headers.append(("RateLimit", ", ".join(items)))
    refused = [d for d in decisions if not d.allowed]
    if refused:
        # RFC 9110 §10.2.3 delay-seconds. A refused decision's `t` is its retry_after, so
        # Retry-After does not end before the effective window (draft §6).
        wait = max(d.retry_after for d in refused)
        headers.append(("Retry-After", str(_seconds(wait))))
    return headers


class RateLimited(OAuthError):
    """429 Too Many Requests (RFC 6585 §4) on an OAuth endpoint.

    RFC 6749 has no error code for rate limits; `temporarily_unavailable` (RFC 6749 §4.1.2.1:
    "temporarily unable to handle the request") is the registered code that tells a client to
    come back later, and the 429 status with `Retry-After` says when and why.
    """

    error = "temporarily_unavailable"
    status_code = 429


@dataclass(frozen=True, slots=True)
class Refusal:
    """What to answer a refused request: status, headers and, for OAuth endpoints, the error
    whose RFC 6749 §5.2 body (`error.to_dict()`) to send."""

    status: int
    headers: tuple[tuple[str, str], ...]
    error: OAuthError


def refusal(decisions: Iterable[Decision]) -> Refusal | None:
    """None when every decision allows the request; else the answer: 429 when a rate was exceeded
    (even if another limit could not be checked), 503 when only fail-closed limits refused."""
    decisions = list(decisions)
    refused = [d for d in decisions if not d.allowed]
    if not refused:
        return None
    headers = tuple(rate_limit_headers(decisions))
    if any(not d.store_failed for d in refused):
        error: OAuthError = RateLimited("too many requests; retry later")
        return Refusal(429, headers, error)
    error = TemporarilyUnavailable("request limits cannot be checked right now; retry later")
    return Refusal(503, headers, error)
