"""The verified-token cache: a token that passed every check recently passes again without a
signature check, until its `exp` (RFC 7519 §4.1.4) or the configured ceiling, whichever is first.

Entries are keyed by the token itself: a dict lookup compares the whole string, so a hit is an
exact match (no digest collisions to reason about) and costs one string hash and one comparison,
no cryptography, which is what makes cached verification cheap. The cache holds a token
no longer than the token is valid; a reader of this process's memory could take the in-flight
tokens and the gateway's own signing key just as well, so hashing the key would buy nothing. It is
bounded: when full, the oldest entry is dropped (only tokens that verified are ever added, so an
attacker cannot fill it with junk). Expiry is checked on every read with the injected clock.
Only `put` mutates the table; `get` may run concurrently from other threads (WSGI shells).
"""

from __future__ import annotations

from collections.abc import Callable

from authgate.verifier.principal import Principal

__all__ = ["VerifiedTokenCache"]


class VerifiedTokenCache:
    """Token -> (principal, expires at), at most `max_entries` entries."""

    __slots__ = ("_clock", "_entries", "max_entries", "max_ttl")

    def __init__(self, max_entries: int, max_ttl: float, clock: Callable[[], float]) -> None:
        self.max_entries = max_entries
        self.max_ttl = max_ttl
        self._clock = clock
        self._entries: dict[str, tuple[Principal, float]] = {}

    def get(self, token: str) -> Principal | None:
        if not self._entries:
            return None
        entry = self._entries.get(token)
        if entry is None:
            return None
        # An expired entry is left for `put` to evict: reads never mutate, so synchronous shells
        # may read from their own threads while the event loop thread writes.
        return entry[0] if self._clock() < entry[1] else None

    def put(self, token: str, principal: Principal) -> None:
        """Cache `principal` for `token` until min(exp, now + max_ttl). No `exp`: not cached."""
        if self.max_ttl <= 0 or principal.expires_at is None:
            return
        now = self._clock()
        until = min(principal.expires_at, now + self.max_ttl)
        if until <= now:
            return
        entries = self._entries
        while len(entries) >= self.max_entries:
            del entries[next(iter(entries))]  # the oldest insertion: likely the nearest expiry
        entries[token] = (principal, until)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
