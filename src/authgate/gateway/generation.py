"""One loaded configuration of the gateway, and how it decides on each request (RFC 6750 §2-§3,
RFC 9110 §7.6, RFC 9728 §5.1).

For each request: the gateway's own endpoints (health, readiness, metrics, its JWKS, forward-auth)
are answered first; then the route is chosen by the policy (no route: refused), public routes are
forwarded without identity, and other routes need a credential that the verifier accepts and the
route's requirement allows. Identity fields are always stripped from the client's request and, when
a principal exists, rebuilt by the gateway. A cache hit is decided without leaving the event loop's
current callback; anything else (a first sight of a token, a JWKS fetch, introspection) is awaited.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from authgate.gate.challenge import error_answer
from authgate.gate.credentials import extract_credential
from authgate.gateway import responses
from authgate.gateway.access_log import AccessLog
from authgate.gateway.config import ClientLimits, GatewaySettings, RouteUpstream
from authgate.gateway.exchange import Answer, Forward, Verdict
from authgate.gateway.forwarded import TrustedProxies
from authgate.gateway.gateway_config import GatewayConfig
from authgate.gateway.header_rules import Headers
from authgate.gateway.identity import IdentityTokenMinter, identity_headers
from authgate.gateway.metrics import GatewayStats
from authgate.gateway.request_head import RequestHead
from authgate.gateway.request_target import RequestTarget
from authgate.gateway.upstream_pool import ConnectionTracker, Origin, UpstreamPool
from authgate.gateway.upstream_request import build_request_head, forwarding_for
from authgate.oauth.errors import AccessDenied, OAuthError
from authgate.policy import Policy, Route
from authgate.verifier import Credential, Principal, Reason, TokenRejected, Verifier

__all__ = ["FORWARD_AUTH", "PROXY", "Generation", "Judgement", "then"]

PROXY, FORWARD_AUTH = "proxy", "forward_auth"
_OUTCOMES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 503: "unavailable"}


@dataclass(frozen=True, slots=True)
class Judgement:
    """A request that the policy lets through: its route, upstream and principal (None: public)."""

    route: Route
    upstream: RouteUpstream | None
    principal: Principal | None


Decided = Judgement | Answer


class Generation:
    """Configuration, verifier, policy and upstream pools for the requests of one config load."""

    def __init__(
        self,
        config: GatewayConfig,
        verifier: Verifier,
        *,
        stats: GatewayStats,
        access_log: AccessLog,
        admin: Callable[[Generation, RequestHead], Verdict | Awaitable[Verdict] | None],
    ) -> None:
        settings = config.settings
        self.config = config
        self.settings: GatewaySettings = settings
        self.limits: ClientLimits = settings.client
        self.verifier = verifier
        self.stats = stats
        self.access_log = access_log
        self.policy: Policy[RouteUpstream | None] = Policy(config.routes)
        self.trusted = TrustedProxies(settings.trusted_proxies)
        self.minter = (
            IdentityTokenMinter(settings.identity_token) if settings.identity_token else None
        )
        self.credential_rules = config.gate.credentials
        self.credential_headers = frozenset(
            {verifier.api_key_header.encode("latin-1")} if verifier.api_key_header else ()
        )
        self._admin = admin
        self._identity_cache: dict[int, tuple[Principal, tuple[tuple[bytes, bytes], ...]]] = {}
        self.pools: dict[Origin, UpstreamPool] = {}
        shortest = min(
            settings.upstream.connect, settings.upstream.read, settings.client.header_timeout
        )
        self.sweep_interval = max(0.02, min(1.0, shortest / 10))

    def attach(self, tracker: ConnectionTracker) -> None:
        """Create the upstream pools, whose connections `tracker` (the server) watches."""
        timeouts = self.settings.upstream
        for _, upstream in self.config.routes:
            if upstream is not None and upstream.origin not in self.pools:
                self.pools[upstream.origin] = UpstreamPool(
                    upstream.origin,
                    connect_timeout=timeouts.connect,
                    read_timeout=timeouts.read,
                    idle_timeout=timeouts.idle,
                    max_idle=timeouts.max_idle,
                    tracker=tracker,
                )

    def close(self) -> None:
        """Stop reusing this generation's upstream connections (busy ones finish first)."""
        for pool in self.pools.values():
            pool.close()

    # -- the request path ------------------------------------------------------------------------

    def route(self, head: RequestHead) -> Verdict | Awaitable[Verdict]:
        """The verdict for one request (see the module docstring)."""
        admin = self._admin(self, head)
        if admin is not None:
            return admin
        problem = _framing_problem(head)
        if problem is not None:
            return self.refuse(PROXY, head, problem[0], problem[1])
        decided = self.judge(head.method.decode("ascii"), head.target, head, PROXY)
        if isinstance(decided, Judgement | Answer):
            return self._forward(head, decided)
        return then(decided, lambda d: self._forward(head, d))

    def judge(
        self, method: str, target: RequestTarget, head: RequestHead, endpoint: str
    ) -> Decided | Awaitable[Decided]:
        """Match the route for `method` and `target` and check the credentials in `head`: a
        `Judgement`, or the refusal to send."""
        matched = self.policy.match(method, target.path)
        if matched is None:
            denied = AccessDenied("no route allows this request")
            return self._error(endpoint, head, denied, "no_route")
        route, upstream = matched
        if route.public:
            return Judgement(route, upstream, None)
        try:
            credential = extract_credential(
                _credential_fields(head, self.credential_headers),
                target.query.decode("latin-1"),
                None,
                self.credential_rules,
            )
        except OAuthError as error:
            return self._error(endpoint, head, error)
        if credential is None:
            return self._error(endpoint, head, TokenRejected(Reason.MISSING))
        try:
            principal = self.verifier.authenticate_nowait(credential)
        except OAuthError as error:
            return self._error(endpoint, head, error)
        if principal is not None:
            return self._check(endpoint, head, route, upstream, principal)
        return self._verify(endpoint, head, route, upstream, credential)

    async def _verify(
        self,
        endpoint: str,
        head: RequestHead,
        route: Route,
        upstream: RouteUpstream | None,
        credential: Credential,
    ) -> Decided:
        try:
            principal = await self.verifier.authenticate(credential)
        except OAuthError as error:
            return self._error(endpoint, head, error)
        return self._check(endpoint, head, route, upstream, principal)

    def _check(
        self,
        endpoint: str,
        head: RequestHead,
        route: Route,
        upstream: RouteUpstream | None,
        principal: Principal,
    ) -> Decided:
        refusal = route.requirement.check(principal)
        if refusal is not None:
            head.log["subject"] = principal.subject
            return self._error(endpoint, head, refusal)
        return Judgement(route, upstream, principal)

    def _forward(self, head: RequestHead, decided: Decided) -> Verdict:
        if isinstance(decided, Answer):
            return decided
        upstream = decided.upstream
        if upstream is None:  # a forward-auth-only route: nothing to proxy to
            return self.refuse(PROXY, head, 404, "this route has no upstream", "no_route")
        principal = decided.principal
        identity = self.identity_for(principal, upstream) if principal is not None else []
        forwarded = forwarding_for(head, self.trusted, b"http")
        if forwarded.client != head.peer:
            head.log["forwarded_client"] = forwarded.client
        request_head = build_request_head(
            head, upstream, forwarded, identity, credentials=self.credential_headers
        )
        outcome = "allow" if principal is not None else "public"
        self.stats.decisions[PROXY, outcome] += 1
        log_fields = head.log
        log_fields["route"] = decided.route.label
        if principal is not None:
            log_fields["subject"] = principal.subject
        return Forward(
            self.pools[upstream.origin],
            request_head,
            head.chunked,
            on_response=lambda status: self._proxied(head, status, outcome),
        )

    def identity_for(self, principal: Principal, upstream: RouteUpstream | None) -> Headers:
        """The identity fields for an allowed request (plus `X-Auth-Token` when configured)."""
        # Principals come from the verifier's cache, so repeat callers share one object.
        cached = self._identity_cache.get(id(principal))
        if cached is not None and cached[0] is principal:
            fields = list(cached[1])
        else:
            fields = identity_headers(principal)
            if len(self._identity_cache) >= 4096:
                self._identity_cache.clear()
            self._identity_cache[id(principal)] = (principal, tuple(fields))
        minter = self.minter
        if minter is not None and (upstream is None or upstream.identity_token):
            audience = upstream.audience if upstream is not None else minter.settings.audience
            fields.append((minter.header_name, minter.token_for(principal, audience)))
        return fields

    # -- refusals and logging --------------------------------------------------------------------

    def _error(
        self, endpoint: str, head: RequestHead, error: OAuthError, outcome: str | None = None
    ) -> Answer:
        rendered = error_answer(
            error, realm=self.config.gate.realm, resource_metadata=self.config.resource_metadata_url
        )
        head.log["reason"] = error.reason.value if isinstance(error, TokenRejected) else error.error
        headers = [
            (n.encode("latin-1"), v.encode("latin-1"))
            for n, v in rendered.headers
            if n not in ("content-type", "cache-control")
        ]
        answer = Answer(rendered.status, rendered.body, headers)
        return self.answered(
            endpoint, head, outcome or _OUTCOMES.get(answer.status, "error"), answer
        )

    def refuse(
        self,
        endpoint: str,
        head: RequestHead,
        status: int,
        message: str,
        outcome: str | None = None,
    ) -> Answer:
        """A gateway-made error answer, counted and logged."""
        answer = Answer(status, responses.error_body(status, message))
        return self.answered(endpoint, head, outcome or _OUTCOMES.get(status, "error"), answer)

    def answered(self, endpoint: str, head: RequestHead, outcome: str, answer: Answer) -> Answer:
        """Count and log a decision answered by the gateway itself; return `answer`."""
        self.stats.decisions[endpoint, outcome] += 1
        self._log(head, answer.status, outcome)
        return answer

    def _proxied(self, head: RequestHead, status: int, outcome: str) -> None:
        self.stats.upstream_responses[f"{status // 100}xx"] += 1
        self._log(head, status, outcome)

    def _log(self, head: RequestHead, status: int, outcome: str) -> None:
        self.access_log.record(
            head.method.decode("ascii"),
            head.target.path,
            status,
            outcome,
            client=head.peer,
            extra=head.log,
        )


def then(pending: Awaitable[Decided], finish: Callable[[Decided], Verdict]) -> Awaitable[Verdict]:
    """`finish` applied to the awaited decision."""

    async def run() -> Verdict:
        return finish(await pending)

    return run()


def _credential_fields(head: RequestHead, extra: frozenset[bytes]) -> list[tuple[str, str]]:
    """Only the fields that can carry credentials, as text, for `extract_credential`."""
    out: list[tuple[str, str]] = []
    for name in (b"authorization", *extra):
        if name in head.fields:
            values = head.all_values(name) if name in head.repeated else [head.fields[name]]
            out.extend((name.decode("latin-1"), v.decode("latin-1")) for v in values)
    return out


def _framing_problem(head: RequestHead) -> tuple[int, str] | None:
    """Requests the gateway will not forward: no single Host (RFC 9112 §3.2), an unknown transfer
    coding (RFC 9112 §6.1: 501), a WebSocket upgrade that is not a body-less GET (RFC 6455 §4.1)."""
    if head.version == b"1.1" and (b"host" not in head.fields or b"host" in head.repeated):
        return 400, "a request needs exactly one Host header"
    if head.chunked and head.fields[b"transfer-encoding"].strip().lower() != b"chunked":
        return 501, "only the chunked transfer coding is supported"
    if head.upgrade and (head.method != b"GET" or head.has_body):
        return 400, "a WebSocket upgrade is a GET without a body"
    return None
