"""The gate's decision for one request: path, route, credential, verification, policy (RFC 6750
§2-§3, RFC 3986 §5.2.4, RFC 9728 §5.1).

`Gate.check(GateRequest) -> Decision` is what every shell calls: the ASGI and WSGI middleware, and
the gateway and forward-auth endpoint built on this package. The steps, each of which may end the
decision:

1. canonicalise the path (400 `invalid_request` when it is ambiguous; see `authgate.policy.paths`);
2. match a route (none: 403 `access_denied`, default deny); a public route allows at once;
3. find the credential (none: 401 without an error code; two: 400; see `credentials`); a DPoP one
   (RFC 9449 §7.1) has its proof checked against the request (401 `invalid_dpop_proof`), and a
   route with `require_dpop` refuses any other (401 `invalid_token`);
4. verify it with the shared `Verifier` (401 `invalid_token`, or 503 when keys are unavailable),
   which holds a DPoP-bound token to the proof's key and refuses it as a bearer token; then a
   DPoP proof's `jti` is claimed once in the `[limits]` store (a replay: 401);
5. apply the route's requirement (403 `insufficient_scope`);
6. count the request against the route's rate limit, if it has one (429 with `Retry-After`, or 503
   when a fail-closed limit's store is down; see `rate_limits`). Public routes go from step 2
   straight to this one.

In dependencies mode (`GateMode.DEPENDENCIES`) a request that no route matches is not refused at
step 2: a credential, when there is one, goes through steps 3-4 all the same (a bad one is refused
there), and the request is passed on as `DEFERRED`, with the principal or None, for the
application's dependencies or decorators to decide.

Step 6 also serves limits applied outside of routes: `Gate.admit` (and `admit_nowait`) count a
request against a `RouteRateLimit` that a FastAPI dependency or a Flask decorator names, for the
principal it authenticated, with the same decisions, counters and answers as a route's limit.

Only steps 4 and 6 may wait for I/O: step 4 on a cache miss or a DPoP `jti` claimed in Redis,
step 6 when the counts are in Redis.
`check_nowait` runs every step without waiting and returns a `Pending` (for `verify_pending`) when
one of them needs the network, so synchronous shells (WSGI) hop to an event loop only then. A
`Decision` carries the principal for allowed requests, and for refusals the complete `Answer`
(status, `WWW-Authenticate` or `Retry-After`, JSON body) to send; `Gate.rate_limit_headers` gives
the RateLimit fields for an allowed answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from authgate.gate.challenge import Answer, Schemes, error_answer
from authgate.gate.config import GateConfig, GateMode, RouteConfig
from authgate.gate.credentials import extract_credential
from authgate.gate.loader import load_gate_config
from authgate.gate.rate_limits import (
    KeyKind,
    RouteRateLimit,
    allowed_fields,
    allowed_fields_bytes,
    limited_answer,
)
from authgate.limits import Decision as LimitDecision
from authgate.limits import Limit, Limiter, refusal
from authgate.limits.keys import KeyPart
from authgate.oauth.errors import AccessDenied, InvalidDPoPProof, InvalidRequest, OAuthError
from authgate.policy.engine import Policy
from authgate.policy.paths import InvalidPathError, canonical_decoded_path, canonical_path
from authgate.verifier.core import Credential, DPoPCredential, Verifier
from authgate.verifier.dpop import check_proof, claim_proof, claim_proof_nowait, single_proof
from authgate.verifier.errors import Reason, TokenRejected, VerifierUnavailable
from authgate.verifier.http_fetch import HttpFetcher
from authgate.verifier.principal import Principal

__all__ = ["Decision", "Gate", "GateRequest", "Outcome", "Pending", "RatePending"]

logger = logging.getLogger("authgate.gate")


class Outcome(StrEnum):
    """How a request was decided (metric label)."""

    ALLOWED = "allowed"
    PUBLIC = "public"
    BAD_REQUEST = "bad_request"
    NO_ROUTE = "no_route"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    UNAVAILABLE = "unavailable"
    LIMITED = "limited"
    DEFERRED = "deferred"  # dependencies mode, no route: passed on for the application to decide


# Enum member lookups cost a descriptor call each; the allowed path is every request's.
_ALLOWED = Outcome.ALLOWED
_ALLOWED_LABEL = Outcome.ALLOWED.value
_PUBLIC = Outcome.PUBLIC
_PUBLIC_LABEL = Outcome.PUBLIC.value


# The per-request objects below are frozen, slotted dataclasses (assignment raises; equality, hash
# and repr are the dataclass's) with a hand-written `__init__` that sets each slot through its
# descriptor: a frozen dataclass's generated one calls `object.__setattr__` per field, which costs
# about twice as much, on every request. Each `__init__` takes its fields in order, as the
# generated one would.


def _setters(cls: type, *names: str) -> tuple[Callable[[Any, Any], None], ...]:
    """The slot descriptors' setters of `names` in `cls` (for `__init__`s of frozen classes)."""
    return tuple(cls.__dict__[name].__set__ for name in names)


@dataclass(frozen=True, slots=True, init=False)
class GateRequest:
    """What the gate needs to know about a request.

    `path`: the percent-encoded path as received (no query); or an already decoded path, with
    `decoded_as` naming how its bytes became text ("latin-1" for WSGI `PATH_INFO`, "utf-8" for
    ASGI `path` when `raw_path` is absent). `headers`: (name, value) pairs, names in any case,
    values decoded as latin-1. `form_body`: the urlencoded body, when the shell read it because
    `Gate.wants_body` said so. `client`: the client's address as the shell knows it (behind
    trusted proxies, the address they name), counted by rate limits keyed by address. `url`: the
    URI the client sent the request to (scheme, host, encoded path; behind trusted proxies, the
    one they name), which a DPoP proof's `htu` must name (RFC 9449 §4.3); shells may leave it out
    when the request carries no `DPoP` field (then no proof can match).
    `canonical`: `path` is already `canonical_path`'s result (the gateway canonicalises the
    target while parsing it), so it is not canonicalised a second time.
    """

    method: str
    path: str | bytes
    headers: Sequence[tuple[str, str]] = ()
    query_string: str = ""
    form_body: bytes | None = None
    decoded_as: str | None = None
    client: str | None = None
    url: str | None = None
    canonical: bool = False

    def __init__(  # noqa: PLR0917 - the generated `__init__`'s positional fields
        self,
        method: str,
        path: str | bytes,
        headers: Sequence[tuple[str, str]] = (),
        query_string: str = "",
        form_body: bytes | None = None,
        decoded_as: str | None = None,
        client: str | None = None,
        url: str | None = None,
        canonical: bool = False,
    ) -> None:
        _rq_method(self, method)
        _rq_path(self, path)
        _rq_headers(self, headers)
        _rq_query_string(self, query_string)
        _rq_form_body(self, form_body)
        _rq_decoded_as(self, decoded_as)
        _rq_client(self, client)
        _rq_url(self, url)
        _rq_canonical(self, canonical)


(
    _rq_method,
    _rq_path,
    _rq_headers,
    _rq_query_string,
    _rq_form_body,
    _rq_decoded_as,
    _rq_client,
    _rq_url,
    _rq_canonical,
) = _setters(
    GateRequest,
    "method",
    "path",
    "headers",
    "query_string",
    "form_body",
    "decoded_as",
    "client",
    "url",
    "canonical",
)


@dataclass(frozen=True, slots=True, init=False)
class Decision:
    """The verdict. `path` is the canonical path judged (send it to the application or upstream).

    Allowed: `principal` is set (None on public routes, and when a deferred request carried no
    credential) and `answer` is None; `route` is None for deferred requests and the framework's
    documentation paths. Refused: `error` and `answer` are set. On a rate-limited route,
    `rate_limit` is the limit's decision (allowed or refused, with the caller's `principal` in both
    cases) and `rate_key` what it counted (`KeyKind`: the route's key, or "address" when the
    request had no value for it).
    """

    outcome: Outcome
    path: str | None = None
    route: RouteConfig | None = None
    principal: Principal | None = None
    error: OAuthError | None = None
    answer: Answer | None = None
    rate_limit: LimitDecision | None = None
    rate_key: KeyKind | None = None

    def __init__(  # noqa: PLR0917 - the generated `__init__`'s positional fields
        self,
        outcome: Outcome,
        path: str | None = None,
        route: RouteConfig | None = None,
        principal: Principal | None = None,
        error: OAuthError | None = None,
        answer: Answer | None = None,
        rate_limit: LimitDecision | None = None,
        rate_key: KeyKind | None = None,
    ) -> None:
        _d_outcome(self, outcome)
        _d_path(self, path)
        _d_route(self, route)
        _d_principal(self, principal)
        _d_error(self, error)
        _d_answer(self, answer)
        _d_rate_limit(self, rate_limit)
        _d_rate_key(self, rate_key)

    @property
    def allowed(self) -> bool:
        return self.answer is None


(
    _d_outcome,
    _d_path,
    _d_route,
    _d_principal,
    _d_error,
    _d_answer,
    _d_rate_limit,
    _d_rate_key,
) = _setters(
    Decision, "outcome", "path", "route", "principal", "error", "answer", "rate_limit", "rate_key"
)


@dataclass(frozen=True, slots=True, init=False)
class Pending:
    """A request that needs its credential verified before it can be decided (`route` None: a
    deferred request, in dependencies mode; a `RatePending` on a rate-limited route)."""

    path: str
    route: RouteConfig | None
    credential: Credential | None

    def __init__(self, path: str, route: RouteConfig | None, credential: Credential | None) -> None:
        _p_path(self, path)
        _p_route(self, route)
        _p_credential(self, credential)


_p_path, _p_route, _p_credential = _setters(Pending, "path", "route", "credential")


@dataclass(frozen=True, slots=True, init=False)
class RatePending(Pending):
    """A request on a rate-limited route: its credential to verify (`principal` None), or, once
    verified (or on a public route, without a credential), its count to make in the store
    (`limit` and the key's parts set). `client` is the address, for keys by address."""

    principal: Principal | None = None
    client: str | None = None
    limit: Limit | None = None
    key: tuple[KeyKind, tuple[KeyPart, ...]] | None = None

    def __init__(  # noqa: PLR0917 - the generated `__init__`'s positional fields
        self,
        path: str,
        route: RouteConfig | None,
        credential: Credential | None,
        principal: Principal | None = None,
        client: str | None = None,
        limit: Limit | None = None,
        key: tuple[KeyKind, tuple[KeyPart, ...]] | None = None,
    ) -> None:
        _p_path(self, path)
        _p_route(self, route)
        _p_credential(self, credential)
        _rp_principal(self, principal)
        _rp_client(self, client)
        _rp_limit(self, limit)
        _rp_key(self, key)


_rp_principal, _rp_client, _rp_limit, _rp_key = _setters(
    RatePending, "principal", "client", "limit", "key"
)


# A rate-limited route's request whose credential is to verify: path, route, credential, client.
_ToVerify = tuple[str, RouteConfig, Credential, str | None]


class Gate:
    """One configuration's verifier and policy, and the decision pipeline over them."""

    def __init__(
        self,
        config: GateConfig,
        *,
        verifier: Verifier | None = None,
        fetcher: HttpFetcher | None = None,
        clock: Callable[[], float] = time.time,
        limiter: Limiter | None = None,
    ) -> None:
        self.config = config
        self.verifier = verifier or Verifier(config.verifier, fetcher=fetcher, clock=clock)
        self._clock = clock
        # The rate limits' counts and the DPoP proofs' used `jti`s: given (a gateway keeps one
        # across reloads), or built from `config.limits` when needed (then closed with the gate).
        self._owns_limiter = limiter is None and config.uses_store
        if limiter is None and config.uses_store:
            limiter = config.limits.limiter()
        self.limiter: Limiter | None = limiter
        dpop = config.dpop
        self._dpop_rules = dpop.rules
        algs = dpop.algs if dpop.enabled else None
        self._schemes = {
            (bearer, used): Schemes(bearer, algs, used)
            for bearer in (True, False)
            for used in (True, False)
        }
        # (route label, or a dependency's limit name; key kind)
        self.rate_limited: Counter[tuple[str, str]] = Counter()
        self._limiter_lock = threading.Lock()
        # Each limit's name is its counts' key in the store: one name, one limit; a route's
        # limit is not a dependency's too (a request would be counted twice).
        self._route_limits = frozenset(
            limit.name
            for route in config.routes
            if route.rate_limit is not None
            for limit in route.rate_limit.limits
        )
        self._dependency_limits: dict[str, Limit] = {}
        self._headers_on_allowed = config.limits.headers == "all"
        self.policy: Policy[RouteConfig] = Policy(
            ((r.route, r) for r in config.routes), case_insensitive=config.case_insensitive
        )
        self.decisions: Counter[str] = Counter()
        self._defer_unmatched = config.mode is GateMode.DEPENDENCIES
        resource = config.resource
        self._metadata_url = resource.url if resource is not None else None

    @classmethod
    def from_file(
        cls,
        path: str,
        *,
        fetcher: HttpFetcher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Gate:
        """A gate for a TOML file (see `authgate.gate.loader`)."""
        return cls(load_gate_config(path), fetcher=fetcher, clock=clock)

    async def start(self, *, background: bool = True) -> None:
        """Fetch keys and start refreshing them (see `Verifier.start`)."""
        await self.verifier.start(background=background)

    async def aclose(self) -> None:
        await self.verifier.aclose()
        if self._owns_limiter and self.limiter is not None:
            await self.limiter.aclose()

    @property
    def ready(self) -> bool:
        return self.verifier.ready

    # -- shell helpers -----------------------------------------------------------------------

    def wants_body(self, method: str, content_type: str | None) -> bool:
        """Whether the shell must read the body for RFC 6750 §2.2 (form-encoded, not GET)."""
        if "body" not in self.config.credentials.bearer_methods or method in ("GET", "HEAD"):
            return False
        media = (content_type or "").partition(";")[0].strip().lower()
        return media == "application/x-www-form-urlencoded"

    def resource_metadata_answer(self, method: str, path: str) -> Answer | None:
        """The RFC 9728 document when `path` (canonical or raw) is its well-known path."""
        resource = self.config.resource
        if resource is None or path.rstrip("/") != resource.path:
            return None
        return resource.answer(method)

    def public_path(self, request: GateRequest, paths: Collection[str]) -> Decision | None:
        """A public decision when `request` is a GET or HEAD for exactly one of `paths` (compared
        with the canonical path), else None: for shells that serve their framework's own pages
        (API documentation) by an explicit option. An ambiguous path is left to `check`."""
        if request.method.upper() not in ("GET", "HEAD") or not paths:
            return None
        try:
            path = self._canonical(request)
        except InvalidPathError:
            return None
        if path not in paths:
            return None
        self.decisions[Outcome.PUBLIC.value] += 1
        return Decision(Outcome.PUBLIC, path)

    def refusal_for(
        self,
        error: OAuthError,
        *,
        path: str | None = None,
        route: RouteConfig | None = None,
        scopes: Sequence[str] | None = None,
        dpop_used: bool = False,
    ) -> Decision:
        """The decision for `error` (also for shells that catch an error themselves). `scopes`: what
        a 401's challenge names (RFC 6750 §3); by default the route's. `dpop_used`: the request
        presented its token with the DPoP scheme."""
        if isinstance(error, VerifierUnavailable):
            outcome = Outcome.UNAVAILABLE
        elif isinstance(error, TokenRejected | InvalidDPoPProof):
            outcome = Outcome.UNAUTHENTICATED
        elif isinstance(error, InvalidRequest):
            outcome = Outcome.BAD_REQUEST
        elif isinstance(error, AccessDenied):
            outcome = Outcome.NO_ROUTE
        elif error.status_code == 401:
            outcome = Outcome.UNAUTHENTICATED
        elif error.status_code == 403:
            outcome = Outcome.FORBIDDEN
        else:
            outcome = Outcome.UNAVAILABLE if error.status_code == 503 else Outcome.BAD_REQUEST
        if scopes is None:
            scopes = route.route.requirement.scopes if route is not None else ()
        bearer = route is None or not route.require_dpop
        answer = error_answer(
            error,
            realm=self.config.realm,
            resource_metadata=self._metadata_url,
            scope=" ".join(scopes) or None,
            schemes=self._schemes[bearer, dpop_used],
        )
        self.decisions[outcome.value] += 1
        logger.debug("refused: %s (%s)", outcome, error.debug or error.description)
        return Decision(outcome, path, route, None, error, answer)

    # -- the pipeline ------------------------------------------------------------------------

    def prepare(self, request: GateRequest) -> Decision | Pending:
        """Steps 1-3: a final `Decision`, or `Pending` when a credential must be verified."""
        step = self._prepare(request)
        if isinstance(step, tuple):
            path, route, credential, client = step
            return RatePending(path, route, credential, None, client)
        return step

    def _prepare(self, request: GateRequest) -> Decision | Pending | _ToVerify:
        """`prepare`, with a rate-limited route's credential to verify as a plain tuple:
        `check_nowait` builds its `RatePending` only when the verification must be awaited."""
        try:  # inline, not `_canonical`: this runs for every request of every shell
            if request.canonical and isinstance(request.path, str):
                path = request.path
            elif request.decoded_as is not None:
                path = canonical_decoded_path(str(request.path), request.decoded_as)
            else:
                path = canonical_path(request.path)
        except InvalidPathError as exc:
            return self.refusal_for(InvalidRequest(str(exc)))
        matched = self.policy.match(request.method.upper(), path)
        if matched is None:
            if self._defer_unmatched:
                return self._defer(request, path)
            return self.refusal_for(AccessDenied("no route allows this request"), path=path)
        route_config = matched[1]
        if matched[0].public:
            if route_config.rate_limit is not None:
                return self._admit(path, route_config, None, request.client, None)
            self.decisions[_PUBLIC_LABEL] += 1
            return Decision(_PUBLIC, path, route_config)
        try:
            credential = self.extract(request)
            if route_config.require_dpop and type(credential) is not DPoPCredential:
                raise TokenRejected(Reason.DPOP_REQUIRED)  # RFC 9449 §7.1
        except OAuthError as exc:
            return self.refusal_for(exc, path=path, route=route_config)
        if route_config.rate_limit is not None:
            return path, route_config, credential, request.client
        return Pending(path, route_config, credential)

    def _canonical(self, request: GateRequest) -> str:
        if request.canonical and isinstance(request.path, str):
            return request.path
        if request.decoded_as is not None:
            return canonical_decoded_path(str(request.path), request.decoded_as)
        return canonical_path(request.path)

    def _defer(self, request: GateRequest, path: str) -> Decision | Pending:
        """Dependencies mode, no route: verify a credential if one was sent, then pass it on."""
        try:
            credential = self._credential(request)
        except OAuthError as exc:
            return self.refusal_for(exc, path=path)
        if credential is None:
            self.decisions[Outcome.DEFERRED.value] += 1
            return Decision(Outcome.DEFERRED, path)
        return Pending(path, None, credential)

    def extract(self, request: GateRequest) -> Credential:
        """Step 3 alone: the request's credential, or raise (400, or 401 when there is none).

        For shells that authenticate outside of routes (FastAPI dependencies, Flask decorators):
        then `authenticate_credential` verifies it.
        """
        credential = self._credential(request)
        if credential is None:
            raise TokenRejected(Reason.MISSING)
        return credential

    def _credential(self, request: GateRequest) -> Credential | None:
        """The request's credential, a DPoP one with its proof checked (RFC 9449 §4.3, §7.1)."""
        credential = extract_credential(
            request.headers, request.query_string, request.form_body, self.config.credentials
        )
        if type(credential) is not DPoPCredential:
            return credential
        proof = single_proof([value for name, value in request.headers if name.lower() == "dpop"])
        checked = check_proof(
            proof,
            method=request.method,
            uri=request.url or "",
            rules=self._dpop_rules,
            access_token=credential.token,
            now=self._clock(),
        )
        return DPoPCredential(credential.token, checked)

    async def authenticate(self, request: GateRequest) -> Principal:
        """Steps 3 and 4 for shells that authenticate outside of routes: the caller's principal,
        or an `OAuthError` (refuse it with `refusal_for`)."""
        return await self.authenticate_credential(self.extract(request))

    async def authenticate_credential(self, credential: Credential) -> Principal:
        """Step 4 for a credential from `extract`: verify it and claim a DPoP proof's `jti`."""
        principal = await self.verifier.authenticate(credential)
        if type(credential) is DPoPCredential:
            await self._claim(credential)
        return principal

    async def _claim(self, credential: DPoPCredential) -> None:
        limiter = self.limiter
        if credential.proof is None or limiter is None:  # pragma: no cover - set by `_credential`
            raise TypeError("a DPoP credential without its checked proof, or no store")
        await claim_proof(
            credential.proof, limiter.store, self._dpop_rules, namespace=limiter.namespace
        )

    def _claim_nowait(self, credential: DPoPCredential) -> bool:
        """Claim the proof's `jti` when the store is in this process (True); False: await."""
        limiter = self.limiter
        if credential.proof is None or limiter is None:  # pragma: no cover - set by `_credential`
            raise TypeError("a DPoP credential without its checked proof, or no store")
        return claim_proof_nowait(
            credential.proof, limiter.store, self._dpop_rules, namespace=limiter.namespace
        )

    def finish(self, pending: Pending, principal: Principal) -> Decision | Pending:
        """Steps 5 and 6: apply the route's requirement to a verified principal, then its rate
        limit (`Pending` when the limit's store must be asked)."""
        if pending.route is None:  # deferred: the application's dependencies decide
            self.decisions[Outcome.DEFERRED.value] += 1
            return Decision(Outcome.DEFERRED, pending.path, None, principal)
        denied = pending.route.route.requirement.check(principal)
        if denied is not None:
            return self.refusal_for(denied, path=pending.path, route=pending.route)
        if isinstance(pending, RatePending):  # what `prepare` makes for a rate-limited route
            return self._admit(
                pending.path, pending.route, pending.credential, pending.client, principal
            )
        self.decisions[_ALLOWED_LABEL] += 1
        return Decision(_ALLOWED, pending.path, pending.route, principal)

    async def check(self, request: GateRequest) -> Decision:
        """Decide a request (the asynchronous shells' entry point)."""
        step = self.prepare(request)
        if isinstance(step, Decision):
            return step
        return await self.verify_pending(step)

    async def verify_pending(self, pending: Pending) -> Decision:
        """The steps a `Pending` request still needs: 4 to 6, or only 6's count in the store."""
        if isinstance(pending, RatePending) and pending.limit is not None:
            limiter, key = self.limiter, pending.key
            if limiter is None or key is None:  # pragma: no cover - set with `limit`
                raise TypeError("a count to make without a limiter or a key")
            decided = await limiter.hit(pending.limit, *key[1])
            return self._rate_decided(
                pending.path, pending.route, pending.principal, decided, key[0]
            )
        if pending.credential is None:  # pragma: no cover - a Pending always needs one or other
            raise TypeError("a Pending request without a credential or a limit to count")
        try:
            principal = await self.authenticate_credential(pending.credential)
        except OAuthError as exc:
            dpop_used = type(pending.credential) is DPoPCredential
            return self.refusal_for(
                exc, path=pending.path, route=pending.route, dpop_used=dpop_used
            )
        step = self.finish(pending, principal)
        return step if isinstance(step, Decision) else await self.verify_pending(step)

    # -- rate limits -------------------------------------------------------------------------

    def admit_nowait(
        self,
        rate_limit: RouteRateLimit,
        principal: Principal | None,
        *,
        credential: Credential | None = None,
        client: str | None = None,
        path: str = "",
    ) -> Decision | Pending:
        """Step 6 for a limit applied outside of routes (a FastAPI dependency, a Flask
        decorator): count the request of `principal` (None: an anonymous caller, counted by
        `client`, its address) against `rate_limit`. A `Decision` (allowed, with the limit's
        decision for `rate_limit_headers`; or refused with the gate's 429/503 answer), or
        `Pending` when the store must be asked (`verify_pending`). `credential` is needed only
        for limits counted by API key. Dependencies naming equal limits share their counts.
        Raises `ValueError` when one of its limits has the name of a route's limit, or of a
        different limit of another dependency: names key the counts.
        """
        if self.limiter is None:  # no route is limited: dependencies' limits count in `[limits]`
            with self._limiter_lock:  # Flask serves requests on several threads
                if self.limiter is None:
                    self.limiter = self.config.limits.limiter()
                    self._owns_limiter = True
        for limit in rate_limit.limits:
            known = self._dependency_limits.get(limit.name)
            if known is limit:
                continue
            if limit.name in self._route_limits:
                raise ValueError(f"the rate limit {limit.name!r} is a route's: name it apart")
            if known is None:
                self._dependency_limits[limit.name] = limit
            elif known != limit:
                raise ValueError(f"two different rate limits are named {limit.name!r}")
        return self._admit(path, None, credential, client, principal, rate_limit)

    async def admit(
        self,
        rate_limit: RouteRateLimit,
        principal: Principal | None,
        *,
        credential: Credential | None = None,
        client: str | None = None,
        path: str = "",
    ) -> Decision:
        """`admit_nowait`, waiting for the store when it must be asked."""
        step = self.admit_nowait(
            rate_limit, principal, credential=credential, client=client, path=path
        )
        return step if isinstance(step, Decision) else await self.verify_pending(step)

    def _admit(  # noqa: PLR0917 - positional: every limited request's path
        self,
        path: str,
        route: RouteConfig | None,
        credential: Credential | None,
        client: str | None,
        principal: Principal | None,
        rate: RouteRateLimit | None = None,
    ) -> Decision | Pending:
        """Step 6: count the request against its route's limit, or `rate` (decided at once when
        the store is in this process; `Pending` when it must be asked)."""
        if rate is None and route is not None:
            rate = route.rate_limit
        limiter = self.limiter
        if rate is None or limiter is None:  # pragma: no cover - a limited route has a limiter
            raise TypeError("step 6 needs a rate-limited route and the gate's limiter")
        limit = rate.limit_for(principal)
        kind, parts = rate.key_for(principal, credential, client)
        decided = limiter.hit_parts_nowait(limit, parts)
        if decided is None:
            return RatePending(path, route, credential, principal, client, limit, (kind, parts))
        if decided.allowed and route is not None and principal is not None:
            # `_rate_decided`'s most frequent answer, inline (one call less per request).
            self.decisions[_ALLOWED_LABEL] += 1
            return Decision(_ALLOWED, path, route, principal, None, None, decided, kind)
        return self._rate_decided(path, route, principal, decided, kind)

    def _rate_decided(
        self,
        path: str,
        route: RouteConfig | None,
        principal: Principal | None,
        decided: LimitDecision,
        kind: KeyKind,
    ) -> Decision:
        if decided.allowed:
            if route is None:  # a dependency's limit: not a decision of its own (uncounted)
                outcome = _ALLOWED if principal is not None else _PUBLIC
                return Decision(outcome, path, None, principal, None, None, decided, kind)
            if principal is not None:
                self.decisions[_ALLOWED_LABEL] += 1
                return Decision(_ALLOWED, path, route, principal, None, None, decided, kind)
            self.decisions[_PUBLIC_LABEL] += 1
            return Decision(_PUBLIC, path, route, None, None, None, decided, kind)
        refused = refusal((decided,))
        assert refused is not None  # noqa: S101 - a refused decision always has its refusal
        outcome = Outcome.LIMITED if refused.status == 429 else Outcome.UNAVAILABLE
        self.decisions[outcome.value] += 1
        if outcome is Outcome.LIMITED:
            label = route.route.label if route is not None else decided.limit.name
            self.rate_limited[label, kind.value] += 1
        logger.debug("refused: %s (limit %s, by %s)", outcome, decided.limit.name, kind)
        answer = limited_answer(refused)
        return Decision(outcome, path, route, principal, refused.error, answer, decided, kind)

    def rate_limit_headers(self, decision: Decision) -> list[tuple[str, str]]:
        """The `RateLimit-Policy` and `RateLimit` fields for an allowed answer (none when the
        route is not limited, or when `[limits] headers = "refusals"`); a refusal's are in its
        `answer` already."""
        decided = decision.rate_limit
        if decided is None or decision.answer is not None or not self._headers_on_allowed:
            return []
        return allowed_fields(decided)

    def rate_limit_fields(self, decision: Decision) -> list[tuple[bytes, bytes]]:
        """`rate_limit_headers` as bytes, for servers that write them (the gateway)."""
        decided = decision.rate_limit
        if decided is None or decision.answer is not None or not self._headers_on_allowed:
            return []
        return allowed_fields_bytes(decided)

    def check_nowait(self, request: GateRequest) -> Decision | Pending:
        """Decide without waiting for I/O; `Pending` means `verify_pending` must be awaited."""
        step = self._prepare(request)
        if isinstance(step, Decision):
            return step
        route: RouteConfig | None
        if isinstance(step, tuple):  # a rate-limited route
            path, route, credential, client = step
        elif step.credential is None:  # a public route whose limit must ask its store
            return step
        else:
            path, route, credential, client = step.path, step.route, step.credential, None
        try:
            principal = self.verifier.authenticate_nowait(credential)
            dpop = principal is not None and type(credential) is DPoPCredential
            if dpop and not self._claim_nowait(credential):  # type: ignore[arg-type]
                principal = None  # the store is Redis: `verify_pending` claims it
        except OAuthError as exc:
            dpop_used = type(credential) is DPoPCredential
            return self.refusal_for(exc, path=path, route=route, dpop_used=dpop_used)
        if not isinstance(step, tuple):
            return step if principal is None else self.finish(step, principal)
        if principal is None:
            return RatePending(path, route, credential, None, client)
        # `finish` for a rate-limited route, without its `RatePending`.
        denied = step[1].route.requirement.check(principal)
        if denied is not None:
            return self.refusal_for(denied, path=path, route=route)
        return self._admit(path, route, credential, client, principal)
