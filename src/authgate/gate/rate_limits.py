"""Rate limits at the gate: what a route's limit counts, which tier applies, and the answers
(RFC 6585 §4 429, RFC 9110 §10.2.3 `Retry-After`, draft-ietf-httpapi-ratelimit-headers).

The counting itself is `authgate.limits` (GCRA, memory or Redis). This module is the gate's part:

- `LimitsSettings`: where the counts live (`[limits]`: store URL, timeout, retry interval,
  namespace) and whether allowed answers carry the RateLimit fields;
- `RouteRateLimit`: a route's tiers (`RateTier`: a `Limit` for callers holding a role or a
  scope, first match wins, the last one for everyone else) and what is counted (`KeyKind`);
- `limited_answer`: the 429 (or 503) for refused decisions.

The limit applies after authentication and the route's requirement, so the key may be the
caller's subject, client id, API key or a claim; requests refused for another reason (400, 401,
403) are not counted. A request whose key has no value (a token without `sub` on a route counted
by subject) is counted by its client address instead, so nothing escapes its route's limit.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from authgate.gate.challenge import Answer
from authgate.limits import DEFAULT_TIMEOUT, Decision, Limit, Limiter, Refusal, rate_limit_headers
from authgate.limits.keys import KeyPart, address_part, check_namespace
from authgate.limits.limiter import DEFAULT_RETRY_INTERVAL
from authgate.limits.stores import describe_url
from authgate.verifier.core import ApiKeyCredential, Credential
from authgate.verifier.principal import Principal

__all__ = [
    "MAX_STORE_TIMEOUT",
    "KeyKind",
    "LimitsSettings",
    "RateTier",
    "RouteRateLimit",
    "allowed_fields",
    "allowed_fields_bytes",
    "limited_answer",
]

# A store that does not answer within this is down: every decision waits at most the timeout.
MAX_STORE_TIMEOUT = 5.0
HeadersMode = Literal["all", "refusals"]


class KeyKind(StrEnum):
    """What a route's limit counts requests by."""

    SUBJECT = "subject"  # the principal's `sub` (an API key's configured subject)
    CLIENT_ID = "client_id"  # the OAuth client
    API_KEY = "api_key"  # the API key presented (hashed into the store key, never stored)
    ADDRESS = "address"  # the client address (IPv6 by /64), behind trusted proxies
    CLAIM = "claim"  # the value of a named claim


@dataclass(frozen=True, slots=True)
class LimitsSettings:
    """`[limits]`: the store shared by every limited route of one gate.

    `redis_url`: `memory://` (this process) or `redis://…`; it may hold a password, so it is left
    out of `repr` and only `store` (the URL without credentials) is ever shown. `timeout`: each
    store call as a whole. `retry_interval`: between tries of a store that stopped answering.
    `namespace`: prefix of the store keys (one per deployment sharing a Redis). `headers`:
    "refusals" puts `RateLimit`/`RateLimit-Policy` on 429/503 answers only (the default, as most
    gateways do: building them costs every allowed request a little), "all" on allowed answers
    too, so that clients can pace themselves before they are refused.
    """

    redis_url: str = field(default="memory://", repr=False)
    timeout: float = DEFAULT_TIMEOUT
    retry_interval: float = DEFAULT_RETRY_INTERVAL
    namespace: str = "authgate"
    headers: HeadersMode = "refusals"

    def __post_init__(self) -> None:
        if not isinstance(self.redis_url, str) or not self.redis_url:
            raise ValueError("redis_url must be a store URL such as 'redis://host:6379/0'")
        if not 0 < self.timeout <= MAX_STORE_TIMEOUT:
            raise ValueError(f"timeout must be more than 0 and at most {MAX_STORE_TIMEOUT:g}s")
        if not self.retry_interval > 0:
            raise ValueError("retry_interval must be more than 0")
        check_namespace(self.namespace)
        if self.headers not in ("all", "refusals"):
            raise ValueError("headers must be 'all' or 'refusals'")

    @property
    def store(self) -> str:
        """The store's URL without user, password or query: safe for logs."""
        return describe_url(self.redis_url)

    def limiter(self) -> Limiter:
        """A new limiter on this store (no connection is made until the first decision)."""
        return Limiter.from_url(
            self.redis_url,
            timeout=self.timeout,
            namespace=self.namespace,
            retry_interval=self.retry_interval,
        )


@dataclass(frozen=True, slots=True)
class RateTier:
    """A limit for callers that hold `role`, or that were granted `scope`; with neither, for
    every caller (the default tier, which must come last)."""

    limit: Limit
    role: str | None = None
    scope: str | None = None

    def __post_init__(self) -> None:
        if self.role is not None and self.scope is not None:
            raise ValueError("a tier names a role or a scope, not both")
        for value in (self.role, self.scope):
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError("a tier's role or scope must be a non-empty string")

    @property
    def default(self) -> bool:
        return self.role is None and self.scope is None

    def matches(self, principal: Principal | None) -> bool:
        if self.role is not None:
            return principal is not None and self.role in principal.roles
        if self.scope is not None:
            return principal is not None and self.scope in principal.scopes
        return True


@dataclass(frozen=True, slots=True)
class RouteRateLimit:
    """A route's rate limit: the first tier the caller matches applies, counted by `key`.

    `claim` names the claim when `key` is `KeyKind.CLAIM` (a top-level claim; its value's JSON is
    counted).
    """

    tiers: tuple[RateTier, ...]
    key: KeyKind = KeyKind.SUBJECT
    claim: str | None = None
    # The only tier, when there is one: the common case skips the loop.
    _single: Limit | None = field(init=False, default=None, repr=False, compare=False)
    # `key.value`, read once (an enum's `.value` is a descriptor call, on every request).
    _kind: str = field(init=False, default="", repr=False, compare=False)

    def __post_init__(self) -> None:
        tiers: object = self.tiers
        if isinstance(tiers, list):
            object.__setattr__(self, "tiers", tuple(tiers))
        if not self.tiers:
            raise ValueError("a rate limit needs at least one tier")
        object.__setattr__(self, "key", KeyKind(self.key))
        if not self.tiers[-1].default:
            raise ValueError(
                "the last tier must have no role or scope: it is the limit of every caller that "
                "matches no other tier"
            )
        if any(t.default for t in self.tiers[:-1]):
            raise ValueError("only the last tier may have no role or scope (others never match)")
        if (self.key is KeyKind.CLAIM) != bool(self.claim):
            raise ValueError("a claim name is given exactly when the key is a claim")
        if len(self.tiers) == 1:
            object.__setattr__(self, "_single", self.tiers[0].limit)
        object.__setattr__(self, "_kind", self.key.value)

    @classmethod
    def single(cls, limit: Limit, key: KeyKind | str = KeyKind.SUBJECT) -> RouteRateLimit:
        """One limit for every caller."""
        return cls((RateTier(limit),), KeyKind(key))

    @property
    def limits(self) -> tuple[Limit, ...]:
        return tuple(t.limit for t in self.tiers)

    def limit_for(self, principal: Principal | None) -> Limit:
        """The limit of the first tier `principal` matches."""
        if self._single is not None:
            return self._single
        for tier in self.tiers:
            if tier.matches(principal):
                return tier.limit
        return self.tiers[-1].limit  # unreachable: the last tier matches everyone

    def key_for(
        self, principal: Principal | None, credential: Credential | None, client: str | None
    ) -> tuple[KeyKind, tuple[KeyPart, ...]]:
        """What this request is counted under: the kind used and the key's parts."""
        kind = self.key
        value: str | None = None
        if principal is not None:
            if kind is KeyKind.SUBJECT:
                value = principal.subject
            elif kind is KeyKind.CLIENT_ID:
                value = principal.client_id
            elif kind is KeyKind.API_KEY:
                if isinstance(credential, ApiKeyCredential):
                    value = credential.key
            elif kind is KeyKind.CLAIM:
                value = _claim_text(principal, self.claim or "")
        if value is not None:
            return kind, (self._kind, value)
        # The kind's value is missing (or the key is the address): count the client address.
        # An unknown address (a shell that could not tell) shares one bucket.
        return KeyKind.ADDRESS, ("address", address_part(client) if client else "")


def _claim_text(principal: Principal, name: str) -> str | None:
    value = principal.claims.get(name)
    if value is None or value == "":
        return None
    # The value's JSON (keys sorted): one value, one key, whatever its type, and values of
    # different types never share one (`"1"` is quoted, `1` is not; `["a","b"]` is not `"a,b"`).
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# Each limit's `RateLimit-Policy` value (as text and as bytes) and its name as bytes, by identity:
# they never change, and an allowed request's fields are built on every request of a limited route.
_POLICIES: dict[int, tuple[Limit, str, bytes, bytes]] = {}


def _policy(decided: Decision) -> tuple[Limit, str, bytes, bytes]:
    limit = decided.limit
    cached = _POLICIES.get(id(limit))
    if cached is None or cached[0] is not limit:
        if len(_POLICIES) >= 1024:
            _POLICIES.clear()
        policy = rate_limit_headers((decided,))[0][1]
        cached = (limit, policy, policy.encode("ascii"), limit.name.encode("ascii"))
        _POLICIES[id(limit)] = cached
    return cached


def allowed_fields(decided: Decision) -> list[tuple[str, str]]:
    """The RateLimit fields for one allowed decision: what `authgate.limits.rate_limit_headers`
    gives for it (the tests hold the two equal), built with the policy value cached."""
    policy = _policy(decided)[1]
    if decided.store_failed:
        return [("RateLimit-Policy", policy)]
    window = max(1, math.ceil(decided.window))
    return [
        ("RateLimit-Policy", policy),
        ("RateLimit", f'"{decided.limit.name}";r={decided.remaining};t={window}'),
    ]


def allowed_fields_bytes(decided: Decision) -> list[tuple[bytes, bytes]]:
    """`allowed_fields` as the bytes a server writes (names and values are ASCII)."""
    _, _, policy, name = _policy(decided)
    if decided.store_failed:
        return [(b"RateLimit-Policy", policy)]
    window = max(1, math.ceil(decided.window))
    return [
        (b"RateLimit-Policy", policy),
        (b"RateLimit", b'"%b";r=%d;t=%d' % (name, decided.remaining, window)),
    ]


def limited_answer(refused: Refusal) -> Answer:
    """The gate's answer for a refusal by its limits: 429 (rate exceeded) or 503 (a fail-closed
    limit whose store is down), with `Retry-After` and the RateLimit fields, and the RFC 6749
    §5.2-style body of the limits package (`temporarily_unavailable`: the registered OAuth code
    that tells a client to come back later; the status says why)."""
    headers = (
        ("content-type", "application/json"),
        ("cache-control", "no-store"),
        *((name.lower(), value) for name, value in refused.headers),
    )
    return Answer(refused.status, headers, json.dumps(refused.error.to_dict()).encode())
