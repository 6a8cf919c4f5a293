"""How long a fetched document stays fresh, from its response headers (RFC 9111 §4.2.1, §4.2.3,
§5.2.2, §5.3), clamped to a configured floor and ceiling.

`max-age` wins over `Expires`; `Age` is subtracted; `no-store`, `no-cache` and an invalid
`Expires` mean "stale now", which the floor turns into the shortest lifetime allowed, so a
misconfigured issuer cannot make the gate fetch on every request. A malformed or repeated `max-age`
is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parsedate_to_datetime

__all__ = ["freshness_lifetime"]


def freshness_lifetime(
    headers: Mapping[str, str],
    now: float,
    *,
    floor: float,
    ceiling: float,
    default: float,
) -> float:
    """Seconds the response stays fresh, within [floor, ceiling]. `headers` has lower-case names."""
    lifetime = _lifetime(headers, now)
    if lifetime is None:
        lifetime = default
    return min(max(lifetime, floor), ceiling)


def _lifetime(headers: Mapping[str, str], now: float) -> float | None:
    directives = _cache_control(headers.get("cache-control", ""))
    if "no-store" in directives or "no-cache" in directives:
        return 0.0
    max_age = directives.get("max-age")
    if max_age is not None:
        return max(0.0, max_age - _age(headers))
    expires = headers.get("expires")
    if expires is None:
        return None
    try:
        expires_at = parsedate_to_datetime(expires).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return 0.0  # RFC 9111 §5.3: an invalid Expires means "already expired"
    date = headers.get("date")
    base = now
    if date is not None:
        try:
            base = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            base = now
    return max(0.0, expires_at - base - _age(headers))


def _cache_control(value: str) -> dict[str, int | None]:
    """Directive names (lower case) to their delta-seconds value, if any (RFC 9111 §5.2)."""
    directives: dict[str, int | None] = {}
    seen_max_age = 0
    for part in value.split(","):
        name, _, arg = part.strip().partition("=")
        name = name.strip().lower()
        if not name:
            continue
        arg = arg.strip().strip('"')
        if name == "max-age":
            seen_max_age += 1
            if not (arg.isascii() and arg.isdigit()) or seen_max_age > 1:
                directives.pop("max-age", None)
                continue
            directives[name] = min(int(arg[:12]), 2**31)  # §1.2.2: cap absurd values
        else:
            directives[name] = None
    if seen_max_age > 1:
        directives.pop("max-age", None)  # conflicting duplicates: ignore both
    return directives


def _age(headers: Mapping[str, str]) -> float:
    age = headers.get("age", "").strip()
    return float(min(int(age[:12]), 2**31)) if age.isascii() and age.isdigit() else 0.0
