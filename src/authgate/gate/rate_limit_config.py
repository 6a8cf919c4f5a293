"""Reading the gate's rate limits from TOML: the top-level `[limits]` table and each route's
`rate_limit`, `burst`, `rate_limit_key`, `on_store_failure` and `limits` tiers (see docs/gate.md).

```toml
[limits]
redis_url_env = "LIMITS_REDIS_URL"       # or redis_url_file, or redis_url; default "memory://"
timeout = "100ms"                        # each Redis call as a whole
on_store_failure = "open"                # default of every route: "open" or "closed"

[[routes]]
path = "/orders"
name = "orders"
rate_limit = "600/minute"                # the default tier
burst = 60
rate_limit_key = "client_id"             # subject (default), client_id, api_key, address, claim:X
limits = [{ role = "free", rate = "60/minute" }, { scope = "bulk", rate = "6000/minute" }]
```

`AUTHGATE_LIMITS_REDIS_URL` in the environment overrides the URL (it may hold a password: it is
never logged or shown; errors give the URL without credentials). `[limits]` is shared with the
gateway, whose own keys there (request sizes and timeouts) are handed to its extension.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol

from authgate.config import Table
from authgate.gate.rate_limits import KeyKind, LimitsSettings, RateTier, RouteRateLimit
from authgate.limits import FailMode, Limit, open_store, parse_rate

__all__ = ["LIMITS_REDIS_URL_ENV", "read_limits", "read_route_limit"]

LIMITS_REDIS_URL_ENV = "AUTHGATE_LIMITS_REDIS_URL"
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}", re.ASCII)
_FAIL_MODES = ("open", "closed", "fail_open", "fail_closed")
_KEYS = ", ".join([*(k.value for k in KeyKind if k is not KeyKind.CLAIM), "claim:NAME"])


class SecretReader(Protocol):
    """The gate loader's reader of `NAME_env` / `NAME_file` secrets."""

    def read(self, table: Table, name: str, *, required: bool) -> bytes | None: ...


def read_limits(
    table: Table | None, secrets: SecretReader, environ: Mapping[str, str], *, shared: bool
) -> tuple[LimitsSettings, FailMode, dict[str, Any]]:
    """The `[limits]` settings, the routes' default failure mode, and the keys left for an
    extension that shares the table (`shared`; otherwise any other key is an error)."""
    if table is None:
        url = environ.get(LIMITS_REDIS_URL_ENV) or "memory://"
        return _settings(Table({}, "limits"), url, {}), FailMode.OPEN, {}
    given = [k for k in ("redis_url", "redis_url_env", "redis_url_file") if k in table.data]
    if len(given) > 1:
        raise table.error("give redis_url, redis_url_env or redis_url_file, not two of them")
    plain = table.string("redis_url", None)
    secret = secrets.read(table, "redis_url", required=False)
    url = environ.get(LIMITS_REDIS_URL_ENV) or (
        secret.decode("utf-8", "replace") if secret is not None else plain
    )
    values: dict[str, Any] = {}
    for key in ("timeout", "retry_interval"):
        if key in table.data:
            values[key] = table.duration(key)
    values["namespace"] = table.string("namespace", "authgate")
    values["headers"] = table.choice("headers", ("all", "refusals"), "refusals")
    mode = _fail_mode(table, "on_store_failure", FailMode.OPEN)
    if not shared:
        table.finish()  # any other key is unknown
    rest = {key: value for key, value in table.data.items() if key not in table.consumed}
    return _settings(table, url or "memory://", values), mode, rest


def _settings(table: Table, url: str, values: dict[str, Any]) -> LimitsSettings:
    with table.checking():
        settings = LimitsSettings(redis_url=url.strip(), **values)
        # Checks the URL now (scheme, port, options) rather than at the first request; no
        # connection is made. Its message shows the URL without credentials.
        open_store(settings.redis_url, timeout=settings.timeout)
    return settings


def _fail_mode(table: Table, key: str, default: FailMode) -> FailMode:
    value = table.choice(key, _FAIL_MODES, None)
    return default if value is None else FailMode(value.removeprefix("fail_"))


def read_route_limit(
    table: Table, index: int, *, name: str | None, public: bool, default_mode: FailMode
) -> RouteRateLimit | None:
    """A route's rate limit from its keys (None when it has none).

    Limit names (in store keys, metrics and the `RateLimit` fields) come from the route's `name`
    when it is a valid limit name, else `routes-<index>`; a tier is `<route>-<role or scope>`
    (or `<route>-<n>` when that is not a valid name), or its own `name`; a tier without role or
    scope is the route's name.
    """
    rate_text = table.string("rate_limit", None)
    burst = table.integer("burst", None)
    key_text = table.string("rate_limit_key", None)
    tier_tables = table.tables("limits")
    mode = _fail_mode(table, "on_store_failure", default_mode)
    if rate_text is None and not tier_tables:
        for key in ("burst", "rate_limit_key", "on_store_failure"):
            if key in table.data:
                raise table.error("needs a rate_limit (or limits tiers) on the route", key)
        return None
    if burst is not None and rate_text is None:
        raise table.error("applies to rate_limit, which is missing", "burst")
    if public and tier_tables:
        raise table.error("a public route has no caller to sort into tiers", "limits")
    base = name if name is not None and _NAME.fullmatch(name) else f"routes-{index}"
    key, claim = _key(table, key_text, public)
    tiers = [_tier(t, (base, f"routes-{index}", j), mode) for j, t in enumerate(tier_tables)]
    if any(t.default for t in tiers[:-1]):
        raise table.error(
            "only the last tier may have no role or scope (the tiers after it would never match)",
            "limits",
        )
    if rate_text is not None:
        if any(t.default for t in tiers):
            raise table.error(
                "a tier without role or scope and the route's rate_limit are both defaults; "
                "keep one",
                "limits",
            )
        rate = _rate(table, "rate_limit", rate_text, burst)
        with table.checking():
            tiers.append(RateTier(Limit(base, rate, mode)))
    elif not tiers[-1].default:
        raise table.error(
            "needs a default: a rate_limit on the route, or a last tier without role or scope "
            "(otherwise callers that match no tier would not be limited)",
            "limits",
        )
    with table.checking():
        return RouteRateLimit(tuple(tiers), key, claim)


def _key(table: Table, text: str | None, public: bool) -> tuple[KeyKind, str | None]:
    if text is None:
        return (KeyKind.ADDRESS if public else KeyKind.SUBJECT), None
    kind_text, colon, claim = text.partition(":")
    try:
        kind = KeyKind(kind_text)
    except ValueError:
        raise table.error(f"must be one of: {_KEYS}", "rate_limit_key") from None
    if (kind is KeyKind.CLAIM) != bool(colon) or (colon and not claim):
        raise table.error(f"must be one of: {_KEYS}", "rate_limit_key")
    if public and kind is not KeyKind.ADDRESS:
        raise table.error("a public route has no caller: only 'address' applies", "rate_limit_key")
    return kind, claim or None


def _rate(table: Table, key: str, text: str, burst: int | None) -> Any:
    try:
        return parse_rate(text, burst=burst)
    except ValueError as exc:
        raise table.error(str(exc), key) from None


def _tier(table: Table, names: tuple[str, str, int], mode: FailMode) -> RateTier:
    role = table.string("role", None)
    scope = table.string("scope", None)
    rate = _rate(table, "rate", table.string("rate"), table.integer("burst", None))
    own = table.string("name", None)
    table.finish()
    base, fallback, index = names
    label = role if role is not None else scope
    if own is not None:
        name = own
    else:
        candidates = [f"{base}-{index}", f"{fallback}-{index}"]
        candidates.insert(0, base if label is None else f"{base}-{label}")
        name = next((c for c in candidates if _NAME.fullmatch(c)), candidates[-1])
    with table.checking():
        return RateTier(Limit(name, rate, mode), role, scope)
