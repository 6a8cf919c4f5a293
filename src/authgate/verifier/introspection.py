"""Opaque tokens through OAuth 2.0 Token Introspection (RFC 7662 §2.1-§2.3, §4).

The gate authenticates to the endpoint as a client (RFC 7662 §2.1; `client_secret_basic` with the
RFC 6749 §2.3.1 form-encoding, or `client_secret_post`). An answer counts as active only when
`active` is exactly `true`, its `exp`/`nbf` (if present) hold, its `iss` equals the configured
issuer (if one is set), and when audiences are configured its `aud` names one of them. A `cnf`
goes through to the principal (RFC 9449 §6.2), for `confirmation` to judge per presentation.

Caching (RFC 7662 §4 asks to weigh freshness against load): active answers for `cache_ttl`
seconds and never past `exp`; inactive answers for `negative_ttl`; both bounded, keyed by the
token's SHA-256.
Concurrent requests for one token share a single call. An endpoint failure is a 503 and is never
cached.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_plus

from authgate.jose.errors import JoseError
from authgate.jose.jwt import validate_claims
from authgate.verifier.config import IntrospectionConfig
from authgate.verifier.errors import Reason, TokenRejected, VerifierUnavailable, rejection_for
from authgate.verifier.http_fetch import FetchError, HttpFetcher
from authgate.verifier.metrics import VerifierMetrics
from authgate.verifier.principal import Principal, principal_from_claims
from authgate.verifier.single_flight import SingleFlight

__all__ = ["Introspector"]

logger = logging.getLogger("authgate.verifier")


def token_digest(token: str) -> bytes:
    """The cache key of an opaque token: its SHA-256, so the caches hold no usable token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class Introspector:
    """Introspects tokens at one endpoint, with positive and negative caches."""

    def __init__(
        self,
        config: IntrospectionConfig,
        fetcher: HttpFetcher,
        *,
        clock: Callable[[], float],
        metrics: VerifierMetrics,
    ) -> None:
        self.config = config
        self._fetcher = fetcher
        self._clock = clock
        self._metrics = metrics
        self._active: dict[bytes, tuple[Principal, float]] = {}
        self._inactive: dict[bytes, tuple[TokenRejected, float]] = {}
        self._flight: SingleFlight[bytes, Principal] = SingleFlight()

    async def introspect(self, token: str) -> Principal:
        """The principal of an active token; `TokenRejected` or `VerifierUnavailable` otherwise."""
        key = token_digest(token)
        now = self._clock()
        hit = self._active.get(key)
        if hit is not None:
            if now < hit[1]:
                self._metrics.introspection_cache_hits += 1
                return hit[0]
            del self._active[key]
        miss = self._inactive.get(key)
        if miss is not None:
            if now < miss[1]:
                self._metrics.introspection_cache_hits += 1
                raise TokenRejected(miss[0].reason, debug="cached negative introspection")
            del self._inactive[key]
        return await self._flight.run(key, lambda: self._call(token, key))

    async def _call(self, token: str, key: bytes) -> Principal:
        config = self.config
        form = {"token": token, "token_type_hint": "access_token"}
        headers: dict[str, str] = {}
        if config.auth_method == "client_secret_basic":
            # RFC 6749 §2.3.1 and Appendix B: form-encode id and secret before Basic.
            pair = f"{quote_plus(config.client_id)}:{quote_plus(config.client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        else:
            form |= {"client_id": config.client_id, "client_secret": config.client_secret}
        self._metrics.introspections += 1
        try:
            response = await self._fetcher.post_form(config.endpoint, form, config.fetch, headers)
        except FetchError as exc:
            self._metrics.introspection_failures += 1
            logger.warning("introspection failed: %s", exc)
            raise VerifierUnavailable(config.endpoint, debug=str(exc)) from None
        now = self._clock()
        try:
            principal = self._judge(response.body, now)
        except TokenRejected as rejected:
            self._store(self._inactive, key, rejected, now + config.negative_ttl)
            raise
        until = now + config.cache_ttl
        if principal.expires_at is not None:
            until = min(until, principal.expires_at)
        self._store(self._active, key, principal, until)
        return principal

    def _judge(self, answer: dict[str, Any], now: float) -> Principal:
        config = self.config
        if answer.get("active") is not True:
            raise TokenRejected(Reason.INACTIVE, debug="introspection: active is not true")
        # With `any_audience` (no audiences configured), `aud` is not judged: jose would refuse any.
        checked = answer if config.audiences else {k: v for k, v in answer.items() if k != "aud"}
        try:
            validate_claims(
                checked, issuer=config.issuer, audience=config.audiences or None, now=now
            )
        except JoseError as exc:
            raise rejection_for(exc) from None
        if "scope" in answer and not isinstance(answer["scope"], str):
            raise TokenRejected(Reason.CLAIM, debug="introspection: scope is not a string")
        issuer = answer.get("iss") if isinstance(answer.get("iss"), str) else config.issuer
        return principal_from_claims(answer, config.claims, issuer=issuer, method="introspection")

    def _store(self, table: dict[bytes, Any], key: bytes, value: Any, until: float) -> None:
        if until <= self._clock():
            return
        while len(table) >= self.config.max_entries:
            del table[next(iter(table))]
        table[key] = (value, until)
