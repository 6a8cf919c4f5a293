"""One loaded configuration of the gateway, and how it turns each request into a verdict
(RFC 6750 §2-§3, RFC 9110 §7.6, RFC 9728 §5.1).

The decision itself is the gate's (`authgate.gate.Gate`: route, credential, verifier, policy); this
module adds what a proxy needs around it. For each request: the gateway's own endpoints are
answered first (see `admin`); requests the gateway will not forward (no `Host`, unknown transfer
coding, a WebSocket upgrade that is not a plain GET) are refused; then the gate decides. A token in
the verifier's cache is decided without leaving the event loop's current callback (`check_nowait`);
anything else (first sight of a token, a JWKS fetch, introspection) is awaited, as is a rate limit
counted in Redis (one counted in memory is decided at once). An allowed request is forwarded with
identity fields rebuilt by the gateway (and the RateLimit fields added to its response); a refused
one gets the gate's answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any

from authgate import tracing
from authgate.gate import Decision, Gate, GateRequest, Outcome
from authgate.gate.dpop import request_url
from authgate.gateway import responses, trace_context
from authgate.gateway.access_log import AccessLog
from authgate.gateway.config import ClientLimits, GatewayConfig, GatewaySettings, RouteUpstream
from authgate.gateway.exchange import Forward, LocalAnswer, Verdict
from authgate.gateway.forwarded import ForwardedFor, TrustedProxies
from authgate.gateway.header_rules import Headers
from authgate.gateway.identity import IdentityTokenMinter, identity_headers
from authgate.gateway.metrics import GatewayStats
from authgate.gateway.request_head import RequestHead
from authgate.gateway.request_target import RequestTarget
from authgate.gateway.token_exchange import TokenExchanger, exchanged_verdict
from authgate.gateway.upstream_pool import ConnectionTracker, Origin, UpstreamPool
from authgate.gateway.upstream_request import build_request_head, forwarding_for
from authgate.limits import Limiter
from authgate.verifier import Principal, TokenRejected, Verifier
from authgate.verifier.dpop import DPoPRejected

__all__ = ["FORWARD_AUTH", "PROXY", "Generation", "finish_when_decided"]

PROXY, FORWARD_AUTH = "proxy", "forward_auth"
_OUTCOMES = {400: "bad_request", 404: "no_route", 501: "bad_request"}
_CREDENTIAL_FIELDS = (b"authorization", b"dpop")
# The `code_class` label of each status (llhttp parses three digits), not built per request.
_CODE_CLASSES = tuple(f"{n}xx" for n in range(10))


class Generation:
    """Configuration, gate and upstream pools for the requests of one config load."""

    def __init__(
        self,
        config: GatewayConfig,
        verifier: Verifier,
        *,
        stats: GatewayStats,
        access_log: AccessLog,
        admin: Callable[[Generation, RequestHead], Verdict | Awaitable[Verdict] | None],
        limiter: Limiter | None = None,
        exchanger: TokenExchanger | None = None,
    ) -> None:
        settings = config.settings
        self.exchanger = exchanger
        self.config = config
        self.settings: GatewaySettings = settings
        self.limits: ClientLimits = settings.client
        self.gate = Gate(config.gate, verifier=verifier, limiter=limiter)
        # Rate limits keyed by address need the client's address before the decision.
        self.counts_addresses = config.gate.rate_limited
        self.verifier = verifier
        self.stats = stats
        self.access_log = access_log
        self.trusted = TrustedProxies(settings.trusted_proxies)
        self.minter = (
            IdentityTokenMinter(settings.identity_token) if settings.identity_token else None
        )
        api_key_header = config.gate.credentials.api_key_header
        self.credential_headers = frozenset({api_key_header.encode()} if api_key_header else ())
        # The gate's policy hands back the `RouteConfig` objects it was built from.
        self._upstreams = {id(rc): up for rc, up in config.routes}
        self._admin = admin
        self._identity_cache: dict[int, tuple[Principal, tuple[tuple[bytes, bytes], ...]]] = {}
        self.pools: dict[Origin, UpstreamPool] = {}
        # The pool of each route's upstream by identity: `Origin`'s dataclass hash is a Python
        # call, and this lookup is every forwarded request's.
        self._pool_of: dict[int, UpstreamPool] = {}
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
        for _, upstream in self.config.routes:
            if upstream is not None:
                self._pool_of[id(upstream)] = self.pools[upstream.origin]

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
            return self.answer_error(PROXY, head, *problem)
        decided = self.judge(head.method.decode("ascii"), head.target, head)
        if isinstance(decided, Decision):
            return self._forward(head, decided)
        return finish_when_decided(decided, lambda d: self._forward(head, d))

    def judge(
        self, method: str, target: RequestTarget, head: RequestHead
    ) -> Decision | Coroutine[Any, Any, Decision]:
        """The gate's decision for `method` and `target`, with the credentials in `head`."""
        request = GateRequest(
            method,
            target.path,
            _credential_fields(head, self.credential_headers),
            target.query.decode("latin-1"),
            client=self.client_address(head) if self.counts_addresses else None,
            url=self.request_url(head, target) if b"dpop" in head.fields else None,
            canonical=True,  # `parse_request_target` canonicalised it
        )
        step = self.gate.check_nowait(request)
        return step if isinstance(step, Decision) else self.gate.verify_pending(step)

    def request_url(self, head: RequestHead, target: RequestTarget) -> str:
        """The URI the client sent the request to, for a DPoP proof's `htu` (RFC 9449 §4.3): the
        scheme and host the trusted proxies name (`X-Forwarded-Proto`/`-Host`), else the gateway's
        own scheme and the `Host`; and the path judged (its canonical form)."""
        forwarded = self.forwarding(head)
        return request_url(
            forwarded.proto.decode("latin-1"), forwarded.host.decode("latin-1"), target.path
        )

    def forwarding(self, head: RequestHead) -> ForwardedFor:
        """The forwarding values of `head` (see `forwarded`), computed once per request."""
        forwarded = head.forwarded
        if forwarded is None:
            forwarded = head.forwarded = forwarding_for(head, self.trusted, b"http")
        return forwarded

    def client_address(self, head: RequestHead) -> str:
        """The client's address: the peer, or behind `trusted_proxies` the address they name."""
        if not self.trusted:
            return head.peer
        return self.forwarding(head).client

    def rate_limit_fields(self, decision: Decision) -> list[tuple[bytes, bytes]]:
        """The RateLimit fields for an allowed decision's answer (empty on unlimited routes)."""
        if decision.rate_limit is None:
            return []
        return self.gate.rate_limit_fields(decision)

    def upstream_of(self, decision: Decision) -> RouteUpstream | None:
        """The upstream of the route that decided."""
        return self._upstreams.get(id(decision.route)) if decision.route is not None else None

    def _forward(self, head: RequestHead, decision: Decision) -> Verdict | Awaitable[Verdict]:
        if not decision.allowed:
            return self.answer_refusal(PROXY, head, decision)
        upstream = self.upstream_of(decision)
        if upstream is None:  # a forward-auth-only route: nothing to proxy to
            return self.answer_error(PROXY, head, 404, "this route has no upstream")
        target, exchanger = upstream.token_exchange, self.exchanger
        if target is not None and exchanger is not None and decision.principal is not None:
            return exchanged_verdict(
                exchanger,
                head,
                decision,
                target=target,
                rules=self.config.gate.credentials,
                forward=partial(self._forward_to, head, decision, upstream),
                refuse=partial(self.record_answer, PROXY, head),
            )
        return self._forward_to(head, decision, upstream)

    def _forward_to(
        self,
        head: RequestHead,
        decision: Decision,
        upstream: RouteUpstream,
        authorization: bytes | None = None,
    ) -> Verdict:
        principal = decision.principal
        identity = self.identity_for(principal, upstream) if principal is not None else []
        forwarded = self.forwarding(head)
        if forwarded.client != head.peer:
            head.log["forwarded_client"] = forwarded.client
        outcome = decision.outcome._value_  # `.value` is a Python-level descriptor call
        on_response: Callable[[int], None] = partial(self._proxied, head, outcome=outcome)
        on_failure: Callable[[int], None] = partial(self._failed, head)
        trace = None
        if tracing.active():  # one span per forwarded request, its traceparent sent upstream
            label = decision.route.route.label if decision.route is not None else "-"
            span, trace = trace_context.open_span(head, label)
            on_response = trace_context.ended_by(span, on_response, failed=False)
            on_failure = trace_context.ended_by(span, on_failure, failed=True)
        request_head = build_request_head(
            head,
            upstream,
            forwarded,
            identity,
            credentials=self.credential_headers,
            trace=trace,
            authorization=authorization,
        )
        self.stats.decisions[PROXY, outcome] += 1
        fields = self.rate_limit_fields(decision) if decision.rate_limit is not None else ()
        if decision.route is not None:
            head.log["route"] = decision.route.route.label
        if principal is not None:
            head.log["subject"] = principal.subject
        return Forward(
            self._pool_of[id(upstream)],
            request_head,
            head.chunked,
            on_response=on_response,
            on_failure=on_failure,
            response_fields=fields,
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

    def answer_refusal(self, endpoint: str, head: RequestHead, decision: Decision) -> LocalAnswer:
        """The gate's refusal as the gateway's answer, counted and logged."""
        gate_answer = decision.answer
        assert gate_answer is not None  # noqa: S101 - a refused Decision always carries its answer
        error = decision.error
        if error is not None:
            head.log["reason"] = (
                error.reason.value
                if isinstance(error, TokenRejected)
                else f"dpop_{error.reason.value}"
                if isinstance(error, DPoPRejected)
                else error.error
            )
        if decision.rate_limit is not None:
            self._note_rate_limit(endpoint, head, decision)
        answer = LocalAnswer.from_gate(gate_answer)
        return self.record_answer(endpoint, head, decision.outcome.value, answer)

    def _note_rate_limit(self, endpoint: str, head: RequestHead, decision: Decision) -> None:
        decided, route = decision.rate_limit, decision.route
        if decided is None or route is None:  # pragma: no cover - set on every limited decision
            return
        limited = decision.outcome is Outcome.LIMITED
        head.log["reason"] = "rate_limited" if limited else "limit_store_unavailable"
        head.log["limit"] = decided.limit.name
        head.log["limit_key"] = str(decision.rate_key)
        head.log["route"] = route.route.label
        if decision.principal is not None:
            head.log["subject"] = decision.principal.subject
        if limited:
            self.stats.rate_limited[endpoint, route.route.label, str(decision.rate_key)] += 1

    def answer_error(
        self, endpoint: str, head: RequestHead, status: int, message: str
    ) -> LocalAnswer:
        """A refusal made by the gateway itself (framing, missing upstream), counted and logged."""
        answer = LocalAnswer(status, responses.error_body(status, message))
        return self.record_answer(endpoint, head, _OUTCOMES.get(status, "bad_request"), answer)

    def record_answer(
        self, endpoint: str, head: RequestHead, outcome: str, answer: LocalAnswer
    ) -> LocalAnswer:
        """Count and log a decision answered by the gateway itself; return `answer`."""
        self.stats.decisions[endpoint, outcome] += 1
        self._log(head, answer.status, outcome)
        return answer

    def _proxied(self, head: RequestHead, status: int, outcome: str) -> None:
        self.stats.upstream_responses[_CODE_CLASSES[status // 100 % 10]] += 1
        self._log(head, status, outcome)

    def _failed(self, head: RequestHead, status: int) -> None:
        self.stats.upstream_errors[str(status)] += 1
        self._log(head, status, "upstream_error")

    def _log(self, head: RequestHead, status: int, outcome: str) -> None:
        self.access_log.record_request(head, status, outcome)


async def finish_when_decided(
    pending: Awaitable[Decision], finish: Callable[[Decision], Verdict | Awaitable[Verdict]]
) -> Verdict:
    """`finish` applied to the awaited decision (and awaited too when it needs I/O)."""
    verdict = finish(await pending)
    if isinstance(verdict, LocalAnswer | Forward):
        return verdict
    return await verdict


def _credential_fields(head: RequestHead, extra: frozenset[bytes]) -> list[tuple[str, str]]:
    """Only the fields that can carry credentials, as text, for the gate."""
    out: list[tuple[str, str]] = []
    fields = head.fields
    for name in (b"authorization", b"dpop", *extra) if extra else _CREDENTIAL_FIELDS:
        if name in fields:
            values = head.all_values(name) if name in head.repeated else [fields[name]]
            text = name.decode("latin-1")
            for value in values:
                out.append((text, value.decode("latin-1")))
    return out


def _framing_problem(head: RequestHead) -> tuple[int, str] | None:
    """Requests the gateway will not forward: another HTTP version (505), no single Host (RFC 9112
    §3.2), an unknown transfer coding (RFC 9112 §6.1: 501), a WebSocket upgrade that is not a
    body-less GET (RFC 6455 §4.1)."""
    if head.version not in (b"1.1", b"1.0"):
        return 505, "only HTTP/1.1 and HTTP/1.0 are served"  # RFC 9112 §2.3: not 0.9, not 2.0
    if head.version == b"1.1" and (b"host" not in head.fields or b"host" in head.repeated):
        return 400, "a request needs exactly one Host header"
    if head.chunked:
        # Repeated fields are one list (RFC 9110 §5.3): `gzip` then `chunked` is "gzip, chunked".
        codings = b",".join(head.all_values(b"transfer-encoding"))
        if codings.strip().lower() != b"chunked":
            return 501, "only the chunked transfer coding is supported"
    if head.upgrade and (head.method != b"GET" or head.has_body):
        return 400, "a WebSocket upgrade is a GET without a body"
    return None
