"""What every OAuth endpoint a client POSTs to does first: read the urlencoded form
(`http.forms`) and authenticate the client (RFC 6749 §2.3, `clients.authentication`), whose id
then goes into the access log. A refused authentication is counted for the metrics, by the method
it tried and the error. A dynamically registered client's first use is recorded (the purge
removes those never used)."""

from __future__ import annotations

import logging
from collections.abc import Collection

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.requests import Request

from authgate.oauth.errors import InvalidClient, OAuthError
from authgate.server.auth_server import AuthServer
from authgate.server.clients.authentication import secret_client_id
from authgate.server.endpoints.browser import request_address
from authgate.server.endpoints.responses import LimitRefused
from authgate.server.http.forms import Form, read_form
from authgate.server.models import Client
from authgate.server.observability.counters import presented_method
from authgate.server.paths import ENDPOINT_PATHS

__all__ = ["read_client_form"]

_log = logging.getLogger("authgate.server")
_SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post"})


async def read_client_form(
    request: Request,
    server: AuthServer,
    *,
    endpoint: str,
    repeatable: Collection[str] = (),
    allow_public: bool = True,
    limit: str | None = None,
) -> tuple[Form, Client]:
    """The form and the client it authenticates as. `endpoint` names (in `ENDPOINT_PATHS`) the
    endpoint a `private_key_jwt` assertion may be addressed to; `allow_public=False` refuses
    clients that only name themselves. `limit`: the per-caller rate limit (`token`, or one of
    `CALLER_LIMITS`) to count the request against, decided with the lockouts in one store
    operation; its decisions go to `request.state.rate_limits`. A lockout after failed client
    authentication (`authgate.server.lockouts`) or the limit refuses with `LimitRefused` (429)."""
    form = await read_form(request, server.config.http.max_body_size, repeatable)
    authorization = request.headers.get("authorization")
    address = request_address(request, server)
    lockouts = server.limits.client_auth
    # The credentials are checked before the lockouts (RFC 6749 §2.3.1 and §10.10: brute force
    # protection; RFC 9700 §2.5): a client secret is compared in constant time, and while a key
    # is locked out a right and a wrong secret get the same 429 (the wrong one still counted),
    # so the order reveals nothing to a guesser. It lets one store operation (one Redis call)
    # decide the lockouts and the rate limit together.
    try:
        authenticated = await server.client_auth.authenticate(
            authorization,
            form,
            server.config.endpoint(ENDPOINT_PATHS[endpoint]),
            allow_public=allow_public,
        )
    except OAuthError as exc:
        server.counters.client_auth_failures[presented_method(authorization, form), exc.error] += 1
        if isinstance(exc, InvalidClient):
            locked = await lockouts.failed(secret_client_id(authorization, form), address)
            if locked is not None:
                raise LimitRefused(locked) from None
        raise
    client = authenticated.client
    # The id `secret_client_id` would read again from the request: the client's own when it
    # authenticated with a secret (the Basic header is not decoded twice).
    secret_id = client.client_id if authenticated.method in _SECRET_METHODS else None
    refused, decisions = await server.limits.client_succeeded(
        limit, secret_id, client.client_id, address, public=client.is_public
    )
    if refused is not None:
        raise LimitRefused(refused)
    request.state.client_id = client.client_id
    if client.first_used_at is None and client.origin != "cli":
        await _mark_used(server, client)
    if limit is not None:
        request.state.rate_limits = decisions
    return form, client


async def _mark_used(server: AuthServer, client: Client) -> None:
    """Record a dynamically registered client's first use, so that the purge keeps it. Best
    effort: a request that needs no database (a cached client's JWT) must not fail for this; a
    later request records it."""
    try:
        await server.storage.mark_client_used(client.client_id, int(server.clock()))
    except (DBAPIError, PoolTimeout, OSError, TimeoutError) as exc:
        _log.warning("recording the first use of a client failed: %s", type(exc).__name__)
