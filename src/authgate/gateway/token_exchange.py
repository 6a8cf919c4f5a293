"""Token exchange at the gateway (RFC 8693 §2): a route with `token_exchange` sends its upstream a
token issued for that upstream alone instead of the client's.

After the gate admits a request, the client's access token is the `subject_token` of an exchange at
the authorization server (`resource` and `audience` the route's target, `scope` its scope). With
`delegation` the gateway's own client credentials token is the `actor_token`, so the issued token
names the gateway in `act` (RFC 8693 §4.1). Results are cached per (SHA-256 of the client's token,
audience, scope) until the issued token's expiry minus a margin, in a bounded LRU; raw tokens are
never kept as keys. Concurrent misses for one key share one call (single-flight).

Failures: the AS refusing the exchange (`invalid_target`, `invalid_scope`, an unusable subject
token…) is `ExchangeRefused` (403 to the client); the AS unreachable, slow, answering 5xx or
something unreadable, or refusing the gateway's own client, is `ExchangeUnavailable` (503 with
`Retry-After`). Neither is cached, and neither message carries a token or the client secret.
Sender-constrained tokens (DPoP, or any `cnf`) and API keys are not exchanged (403): the gateway
cannot prove possession of the client's key to the AS (RFC 9449 §7).

`exchanged_verdict` is the gateway's hook: `Generation` calls it for admitted requests on such
routes, and it forwards at once on a cache hit or awaits the exchange otherwise. The token
endpoint is configured, or found once in the issuer's metadata (RFC 8414 §3).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from authgate.gate import CredentialRules, Decision, extract_credential
from authgate.gateway.config import TokenExchangeSettings, TokenExchangeTarget
from authgate.gateway.exchange import LocalAnswer, Verdict
from authgate.gateway.request_head import RequestHead
from authgate.oauth.errors import OAuthError
from authgate.verifier import BearerCredential, DPoPCredential, TokenRejected
from authgate.verifier.discovery import discover
from authgate.verifier.http_fetch import FetchError, FetchLimits, HttpFetcher, check_fetch_url

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "TOKEN_EXCHANGE_GRANT",
    "ExchangeRefused",
    "ExchangeUnavailable",
    "NotExchangeable",
    "TokenExchanger",
    "exchangeable_token",
    "exchanged_verdict",
    "refused_body",
    "unavailable_body",
]

log = logging.getLogger("authgate.gateway")

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
# Errors that say the gateway's own client is wrong (RFC 6749 §5.2): not the caller's fault.
_CLIENT_ERRORS = frozenset({"invalid_client", "unauthorized_client", "unsupported_grant_type"})
_MAX_RESPONSE = 64 * 1024
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]{1,16384}=*")
_ERROR_CODE = re.compile(r"[a-z_]{1,64}")

_Key = tuple[bytes, str, str | None]


class ExchangeRefused(Exception):
    """The AS refused to exchange this token for the target (an RFC 6749 §5.2 / RFC 8693 §2.2.2
    `error` code)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class ExchangeUnavailable(Exception):
    """The exchange could not be made now (the AS unreachable, slow, failing, or refusing the
    gateway's client); the message is for the log."""


class TokenExchanger:
    """Exchanges tokens at the AS, caching the results; `outcomes` counts hit, miss, refused and
    error (a request that waited for another's in-flight exchange counts as a hit)."""

    def __init__(
        self,
        settings: TokenExchangeSettings,
        outcomes: Counter[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.outcomes: Counter[str] = Counter() if outcomes is None else outcomes
        self._clock = clock
        self._cache: OrderedDict[_Key, tuple[str, float]] = OrderedDict()
        self._actors: dict[str, tuple[str, float]] = {}
        self._inflight: dict[object, asyncio.Future[str]] = {}
        self._http: httpx.AsyncClient | None = None
        self._discovered = ""

    def cached(self, token: str, target: TokenExchangeTarget) -> str | None:
        """The exchanged token when cached and fresh (counted as a hit), else None."""
        key = _key(token, target)
        found = self._fresh(key)
        if found is not None:
            self.outcomes["hit"] += 1
        return found

    async def exchange(self, token: str, target: TokenExchangeTarget) -> str:
        """The token for `target` in place of `token`; `ExchangeRefused`/`ExchangeUnavailable`."""
        key = _key(token, target)
        found = self._fresh(key)
        if found is not None:
            self.outcomes["hit"] += 1
            return found
        pending = self._inflight.get(key)
        if pending is not None:
            self.outcomes["hit"] += 1
            return await asyncio.shield(pending)
        self.outcomes["miss"] += 1
        return await self._single_flight(key, lambda: self._exchange(key, token, target))

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # -- internals -------------------------------------------------------------------------------

    def _fresh(self, key: _Key) -> str | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return entry[0]

    async def _single_flight(self, key: object, make: Callable[[], Awaitable[str]]) -> str:
        """One call for `key` at a time; it runs on its own task, so a waiter that leaves (the
        client disconnected) does not cancel it for the others."""
        task = asyncio.ensure_future(make())
        self._inflight[key] = task
        task.add_done_callback(lambda done: self._landed(key, done))
        return await asyncio.shield(task)

    def _landed(self, key: object, task: asyncio.Future[str]) -> None:
        self._inflight.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved: every waiter may have left (no "never retrieved")

    async def _exchange(self, key: _Key, token: str, target: TokenExchangeTarget) -> str:
        form = {
            "grant_type": TOKEN_EXCHANGE_GRANT,
            "subject_token": token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "resource": target.audience,  # RFC 8693 §2.1: both may name the target service
            "audience": target.audience,
        }
        if target.scope is not None:
            form["scope"] = target.scope
        try:
            if self.settings.delegation:
                form["actor_token"] = await self._actor_token(target.audience)
                form["actor_token_type"] = ACCESS_TOKEN_TYPE
            value, lifetime = await self._token_request(form, f"exchange for {target.audience}")
        except (ExchangeRefused, ExchangeUnavailable) as exc:
            self.outcomes["refused" if isinstance(exc, ExchangeRefused) else "error"] += 1
            raise
        expires = self._clock() + lifetime - self.settings.expiry_margin
        if expires > self._clock():
            self._cache[key] = (value, expires)
            self._cache.move_to_end(key)
            while len(self._cache) > self.settings.cache_size:
                self._cache.popitem(last=False)
        return value

    async def _actor_token(self, audience: str) -> str:
        """The gateway's own client credentials token for `audience` (cached until its expiry)."""
        entry = self._actors.get(audience)
        if entry is not None and entry[1] > self._clock():
            return entry[0]
        pending = self._inflight.get(("actor", audience))
        if pending is not None:
            return await asyncio.shield(pending)
        return await self._single_flight(("actor", audience), lambda: self._fetch_actor(audience))

    async def _fetch_actor(self, audience: str) -> str:
        form = {"grant_type": "client_credentials", "resource": audience}
        # A refusal (`invalid_target`: the gateway's client holds nothing on this API) refuses
        # the exchange for this target alike.
        value, lifetime = await self._token_request(form, f"actor token for {audience}")
        if len(self._actors) >= 1024:
            self._actors.clear()
        self._actors[audience] = (value, self._clock() + lifetime - self.settings.expiry_margin)
        return value

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=self.settings.timeout, follow_redirects=False, trust_env=False
            )
        return self._http

    async def _token_endpoint(self) -> str:
        """The configured token endpoint, or the one in the issuer's metadata (RFC 8414 §3; its
        `issuer` must equal the configured one, §3.3), looked up once it is first needed."""
        endpoint = self.settings.token_endpoint or self._discovered
        if endpoint:
            return endpoint
        issuer = self.settings.issuer or ""
        limits = FetchLimits(timeout=self.settings.timeout)
        try:
            async with asyncio.timeout(self.settings.timeout):
                metadata = await discover(HttpFetcher(self._client()), issuer, limits)
            self._discovered = check_fetch_url(metadata.document["token_endpoint"])
        except (FetchError, KeyError, ValueError, TypeError, TimeoutError) as exc:
            raise ExchangeUnavailable(f"metadata of {issuer}: {exc}") from None
        return self._discovered

    async def _token_request(self, form: dict[str, str], what: str) -> tuple[str, float]:
        """POST `form` to the token endpoint; the access token and its lifetime in seconds."""
        settings = self.settings
        endpoint = await self._token_endpoint()
        try:
            async with asyncio.timeout(settings.timeout):
                client = self._client()
                request = client.build_request(
                    "POST",
                    endpoint,
                    data=form,
                    # identity: a compressed body could expand far past the bound in one chunk.
                    headers={"Accept": "application/json", "Accept-Encoding": "identity"},
                )
                auth = httpx.BasicAuth(settings.client_id, settings.client_secret)
                response = await client.send(request, auth=auth, stream=True)
                try:
                    raw = await _read_bounded(response)
                finally:
                    await response.aclose()
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            reason = type(exc).__name__
            raise ExchangeUnavailable(
                f"{what}: the token endpoint is unreachable ({reason})"
            ) from None
        body = _json_object(raw) or {}
        if response.status_code == 200:
            value, lifetime = body.get("access_token"), body.get("expires_in")
            if (
                not isinstance(value, str)
                or str(body.get("token_type", "")).lower() != "bearer"
                # It goes into a request head: RFC 6750 §2.1 b64token only (no CR/LF injection).
                or not _B64TOKEN.fullmatch(value)
            ):
                raise ExchangeUnavailable(f"{what}: the answer holds no bearer token")
            if not isinstance(lifetime, int | float) or isinstance(lifetime, bool):
                lifetime = 0.0  # unknown: used for this request, not cached
            return value, float(lifetime)
        error = body.get("error")
        if response.status_code in (400, 401, 403) and isinstance(error, str):
            if error in _CLIENT_ERRORS:
                raise ExchangeUnavailable(f"{what}: the AS refused the gateway's client ({error})")
            if not _ERROR_CODE.fullmatch(error):
                error = "invalid_request"
            description = body.get("error_description")
            raise ExchangeRefused(error, description if isinstance(description, str) else "")
        raise ExchangeUnavailable(f"{what}: the token endpoint answered {response.status_code}")


def exchanged_verdict(
    exchanger: TokenExchanger,
    head: RequestHead,
    decision: Decision,
    *,
    target: TokenExchangeTarget,
    rules: CredentialRules,
    forward: Callable[[bytes], Verdict],
    refuse: Callable[[str, LocalAnswer], LocalAnswer],
) -> Verdict | Awaitable[Verdict]:
    """The verdict for an admitted request on a `token_exchange` route: `forward(token)` with the
    exchanged token (at once when cached), or `refuse(outcome, answer)`: 403 when the token cannot
    be exchanged or the AS refuses, 503 with `Retry-After` when it cannot be reached."""
    token = exchangeable_token(head, decision, rules)
    if isinstance(token, NotExchangeable):
        head.log["reason"] = "token_not_exchangeable"
        return refuse("exchange_refused", LocalAnswer(403, token.body()))
    cached = exchanger.cached(token, target)
    if cached is not None:
        return forward(cached.encode("ascii"))
    return _exchange_then(exchanger, head, token, target=target, forward=forward, refuse=refuse)


async def _exchange_then(
    exchanger: TokenExchanger,
    head: RequestHead,
    token: str,
    *,
    target: TokenExchangeTarget,
    forward: Callable[[bytes], Verdict],
    refuse: Callable[[str, LocalAnswer], LocalAnswer],
) -> Verdict:
    try:
        exchanged = await exchanger.exchange(token, target)
    except ExchangeRefused as exc:
        head.log["reason"] = f"exchange_{exc.error}"
        if exc.description:
            head.log["exchange_error"] = exc.description[:200]
        return refuse("exchange_refused", LocalAnswer(403, refused_body(exc, target.audience)))
    except ExchangeUnavailable as exc:
        log.warning("token exchange failed: %s", exc)
        head.log["reason"] = "exchange_unavailable"
        retry = [(b"Retry-After", b"%d" % exchanger.settings.retry_after)]
        return refuse("exchange_unavailable", LocalAnswer(503, unavailable_body(), retry))
    return forward(exchanged.encode("ascii"))


@dataclass(frozen=True, slots=True)
class NotExchangeable:
    """Why the admitted credential cannot be exchanged (answered 403 `invalid_request`)."""

    reason: str

    def body(self) -> bytes:
        return json.dumps(
            {"error": "invalid_request", "error_description": self.reason}, separators=(",", ":")
        ).encode()


def exchangeable_token(
    head: RequestHead, decision: Decision, rules: CredentialRules
) -> str | NotExchangeable:
    """The client's bearer access token, which the gate admitted; otherwise why it cannot be
    exchanged."""
    fields: list[tuple[str, str]] = []
    for name in (
        b"authorization",
        *((rules.api_key_header.encode(),) if rules.api_key_header else ()),
    ):
        if name in head.fields:
            values = head.all_values(name) if name in head.repeated else [head.fields[name]]
            fields.extend((name.decode("latin-1"), v.decode("latin-1")) for v in values)
    try:
        credential = extract_credential(fields, head.target.query.decode("latin-1"), None, rules)
    except (OAuthError, TokenRejected):  # pragma: no cover - the gate refused these already
        credential = None
    principal = decision.principal
    if isinstance(credential, DPoPCredential) or (
        principal is not None and "cnf" in principal.claims
    ):
        # The gateway cannot prove possession of the client's key to the AS (RFC 9449 §7), and a
        # bearer token in its place would drop the binding: sender-constrained tokens stay out.
        return NotExchangeable(
            "a sender-constrained (DPoP or certificate-bound) token is not exchanged"
        )
    if not isinstance(credential, BearerCredential):
        return NotExchangeable("only an access token sent as a bearer token can be exchanged")
    return credential.token


def refused_body(exc: ExchangeRefused, audience: str) -> bytes:
    """The 403 body for a refused exchange: the AS's error code, a description of our own (the
    AS's description is logged, not passed on)."""
    return json.dumps(
        {
            "error": exc.error,
            "error_description": f"the authorization server refused a token for {audience}",
        },
        separators=(",", ":"),
    ).encode()


def unavailable_body() -> bytes:
    """The 503 body when no token could be obtained for the upstream."""
    return json.dumps(
        {
            "error": "temporarily_unavailable",
            "error_description": "no token for the upstream could be obtained; retry later",
        },
        separators=(",", ":"),
    ).encode()


def _key(token: str, target: TokenExchangeTarget) -> _Key:
    # Keyed by the token's hash: the cache never holds the clients' tokens themselves.
    return hashlib.sha256(token.encode()).digest(), target.audience, target.scope


async def _read_bounded(response: httpx.Response) -> bytes | None:
    """The body, or None when it is larger than `_MAX_RESPONSE` or encoded."""
    if response.headers.get("content-encoding", "identity").strip().lower() != "identity":
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > _MAX_RESPONSE:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _json_object(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
