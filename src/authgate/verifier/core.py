"""The verifier: a presented credential in, a `Principal` or a precise failure out (RFC 6750 §3.1,
RFC 7519 §7.2, RFC 9068 §4, RFC 7662, RFC 8725 §3).

One `Verifier` serves the gateway, the forward-auth endpoint and every middleware. For a bearer
token it:

1. refuses tokens over `max_token_bytes` before decoding anything;
2. answers from the verified-token cache when it can (no signature check; see `token_cache`);
3. for a compact JWS whose unverified `iss` names a configured issuer: refuses an algorithm outside
   that issuer's allow-list before any key lookup (so `alg: none` or HS256-over-a-public-key never
   causes a fetch), gets the key set from that issuer only (`jwks_cache`), and verifies signature,
   `iss`, `aud`, `exp`/`nbf`/`iat` with leeway, `typ` and required claims (`authgate.jose.jwt`),
   and refuses sender-constrained tokens (`cnf`, see `confirmation`);
4. otherwise introspects (RFC 7662) when introspection is configured, or refuses the token.

An API key is checked against configured digests (`api_keys`). Outcomes are counted in `metrics`;
`ready` is true once every JWT issuer holds usable keys; `issuer_status()` describes each issuer.

Use: `verifier = Verifier(config)`; `await verifier.start()` (first fetch, background refresh);
`principal = await verifier.authenticate(BearerCredential(token))`; `await verifier.aclose()`.
Synchronous shells call `authenticate_nowait(credential)` first (API keys and cache hits need no
I/O) and run `authenticate` on their event loop only when it returns None.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from authgate.jose import jwt
from authgate.jose.errors import JoseError, MalformedToken
from authgate.jose.jwk import JWK
from authgate.verifier.api_keys import ApiKeyVerifier
from authgate.verifier.config import IssuerConfig, VerifierConfig
from authgate.verifier.confirmation import check_binding, refuse_bound_token
from authgate.verifier.dpop import Proof
from authgate.verifier.errors import Reason, TokenRejected, VerifierUnavailable, rejection_for
from authgate.verifier.http_fetch import HttpFetcher
from authgate.verifier.introspection import Introspector
from authgate.verifier.jwks_cache import IssuerStatus, JWKSCache, KeySource, StaticKeys
from authgate.verifier.metrics import VerifierMetrics
from authgate.verifier.principal import Principal, principal_from_claims
from authgate.verifier.token_cache import VerifiedTokenCache

__all__ = ["ApiKeyCredential", "BearerCredential", "Credential", "DPoPCredential", "Verifier"]

_perf_counter = time.perf_counter


@dataclass(frozen=True, slots=True)
class BearerCredential:
    """An access token as presented (RFC 6750 §2)."""

    token: str = ""

    def __repr__(self) -> str:
        return "BearerCredential(<redacted>)"


@dataclass(frozen=True, slots=True)
class DPoPCredential(BearerCredential):
    """An access token presented with the DPoP scheme (RFC 9449 §7.1), with its request's proof
    as checked by `authgate.verifier.dpop.check_proof` (`proof.jkt` is the key's thumbprint)."""

    proof: Proof | None = None

    def __repr__(self) -> str:
        return "DPoPCredential(<redacted>)"


def _presented_key(credential: BearerCredential) -> str | None:
    """The thumbprint a presentation proves possession of; None for a bearer presentation."""
    if type(credential) is BearerCredential:
        return None
    proof = getattr(credential, "proof", None)
    # A DPoP presentation whose proof was not checked proves nothing: no key matches "".
    return proof.jkt if proof is not None else ""


@dataclass(frozen=True, slots=True)
class ApiKeyCredential:
    """An API key as presented in the configured header."""

    key: str = ""

    def __repr__(self) -> str:
        return "ApiKeyCredential(<redacted>)"


Credential = BearerCredential | ApiKeyCredential


class _Issuer:
    """One configured issuer: its claim rules and where its keys come from."""

    __slots__ = ("algorithms", "config", "keys")

    def __init__(self, config: IssuerConfig, keys: KeySource) -> None:
        self.config = config
        self.keys = keys
        self.algorithms = frozenset(config.algorithms)

    async def verify(
        self, token: str, unverified: jwt.UnverifiedJWT, now: Callable[[], float]
    ) -> Principal:
        config = self.config
        if unverified.alg not in self.algorithms:
            # RFC 8725 §3.1: the issuer's allow-list decides, before any key is looked up.
            raise TokenRejected(
                Reason.SIGNATURE, debug=f"algorithm {unverified.alg!r:.40} not allowed"
            )
        keys = await self.keys.keys_for(unverified.kid)
        try:
            claims = jwt.decode(
                token,
                keys,
                algorithms=config.algorithms,
                issuer=config.issuer,
                audience=config.audiences,
                leeway=config.leeway,
                required=config.required_claims,
                typ=config.typ,
                now=now(),
            )
        except JoseError as exc:
            raise rejection_for(exc) from None
        return principal_from_claims(claims, config.claims, issuer=config.issuer, method="jwt")


class Verifier:
    """Verifies bearer tokens and API keys against a `VerifierConfig`."""

    def __init__(
        self,
        config: VerifierConfig,
        *,
        fetcher: HttpFetcher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.metrics = VerifierMetrics()
        self._clock = clock
        self._fetcher = fetcher or HttpFetcher()
        self._issuers: dict[str, _Issuer] = {}
        for issuer in config.issuers:
            source: KeySource
            if issuer.secret is not None:
                alg = issuer.algorithms[0] if len(issuer.algorithms) == 1 else None
                source = StaticKeys(issuer.issuer, JWK.from_secret(issuer.secret, alg=alg))
            else:
                source = JWKSCache(
                    issuer, self._fetcher, clock=clock, metrics=self.metrics.issuer(issuer.issuer)
                )
            self._issuers[issuer.issuer] = _Issuer(issuer, source)
        self._introspector = (
            Introspector(config.introspection, self._fetcher, clock=clock, metrics=self.metrics)
            if config.introspection is not None
            else None
        )
        self._api_keys = ApiKeyVerifier(config.api_keys) if config.api_keys is not None else None
        self._max_token_bytes = config.max_token_bytes
        cache = config.token_cache
        self.token_cache = VerifiedTokenCache(cache.max_entries, cache.max_ttl, clock)
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, *, background: bool = True) -> None:
        """Fetch every issuer's keys (concurrently) and start background refreshes. Idempotent.

        Fetch failures are logged and leave the issuer not ready; they do not raise.
        """
        if self._started:
            return
        self._started = True
        await asyncio.gather(*(i.keys.start(background=background) for i in self._issuers.values()))

    async def aclose(self) -> None:
        """Stop background tasks and close the HTTP client."""
        await asyncio.gather(*(i.keys.aclose() for i in self._issuers.values()))
        await self._fetcher.aclose()
        self._started = False

    @property
    def ready(self) -> bool:
        """True when every configured issuer holds keys that may verify (fresh or in grace)."""
        return all(status.ready for status in self.issuer_status())

    def issuer_status(self) -> tuple[IssuerStatus, ...]:
        """The key state of every configured issuer, in configuration order."""
        return tuple(i.keys.snapshot() for i in self._issuers.values())

    @property
    def api_key_header(self) -> str | None:
        """The lower-case header that carries API keys, when API keys are configured."""
        return self._api_keys.header if self._api_keys is not None else None

    # -- verification ------------------------------------------------------------------------

    def authenticate_nowait(self, credential: Credential) -> Principal | None:
        """Decide without I/O when possible: an API key, or a token in the verified-token cache.

        Returns the principal, raises `TokenRejected`, or returns None: then await `authenticate`.
        """
        started = _perf_counter()
        if isinstance(credential, BearerCredential):  # the hot path: one dict lookup
            token = credential.token
            if len(token) > self._max_token_bytes:
                return None
            found = self.token_cache.get(token)
            if found is not None:
                if type(credential) is not BearerCredential or "cnf" in found.claims:
                    self._bind(found, credential, started)
                metrics = self.metrics
                metrics.token_cache_hits += 1
                metrics.outcomes["ok"] += 1
                metrics.latency.observe(_perf_counter() - started)
            return found
        try:
            principal = self.verify_api_key(credential.key)
        except TokenRejected as exc:
            self._observe(exc.reason.value, started)
            raise
        self._observe("ok", started)
        return principal

    async def authenticate(self, credential: Credential) -> Principal:
        """Verify a credential; raise `TokenRejected` (401) or `VerifierUnavailable` (503)."""
        principal = self.authenticate_nowait(credential)
        if principal is not None:
            return principal
        if not isinstance(credential, BearerCredential):  # pragma: no cover - decided above
            raise TypeError("expected a BearerCredential")
        started = time.perf_counter()
        try:
            principal = await self._verify_uncached(credential.token)
            check_binding(principal.claims, _presented_key(credential))
        except TokenRejected as exc:
            self._observe(exc.reason.value, started)
            raise
        except VerifierUnavailable:
            self._observe("unavailable", started)
            raise
        self._observe("ok", started)
        return principal

    def _bind(self, principal: Principal, credential: BearerCredential, started: float) -> None:
        try:
            check_binding(principal.claims, _presented_key(credential))
        except TokenRejected as exc:
            self._observe(exc.reason.value, started)
            raise

    def _observe(self, outcome: str, started: float) -> None:
        self.metrics.outcomes[outcome] += 1
        self.metrics.latency.observe(time.perf_counter() - started)

    def verify_api_key(self, key: str) -> Principal:
        """The principal of an API key (not counted in `metrics`)."""
        if self._api_keys is None:
            raise TokenRejected(Reason.API_KEY, debug="API keys are not configured")
        return self._api_keys.verify(key)

    async def verify_token(self, token: str) -> Principal:
        """Verify a bearer token, JWT or opaque (not counted in `metrics.outcomes`); one bound to
        a key (`cnf`) is refused, as for any bearer presentation."""
        principal = self.token_cache.get(token)
        if principal is not None:
            self.metrics.token_cache_hits += 1
        else:
            principal = await self._verify_uncached(token)
        refuse_bound_token(principal.claims)
        return principal

    async def _verify_uncached(self, token: str) -> Principal:
        if not token:
            raise TokenRejected(Reason.MISSING)
        if len(token) > self.config.max_token_bytes:
            raise TokenRejected(Reason.TOO_LARGE)
        self.metrics.token_cache_misses += 1
        unverified: jwt.UnverifiedJWT | None = None
        if token.count(".") == 2:  # the compact JWS shape (a JWE has five segments)
            try:
                unverified = jwt.peek(token, max_size=self.config.max_token_bytes)
            except MalformedToken:
                unverified = None
        issuer = self._issuers.get(unverified.issuer or "") if unverified is not None else None
        if issuer is not None and unverified is not None:
            principal = await issuer.verify(token, unverified, self._clock)
            self.token_cache.put(token, principal)
            return principal
        if self._introspector is not None:
            return await self._introspector.introspect(token)
        if unverified is None:
            raise TokenRejected(Reason.MALFORMED)
        raise TokenRejected(Reason.UNKNOWN_ISSUER, debug="no configured issuer matches 'iss'")
