"""The route table: which rule judges a request (default deny).

`Policy.match(method, canonical_path)` finds the most specific paths that match the request (more
literal segments first, then more segments, then an exact pattern before an open-ended one) and,
among the routes with that path, the first in configuration order whose methods include the
request's. The most specific matching path owns the request: when none of its routes lists the
method, the request is refused; it never falls through to a broader route. So neither the order
of routes in a file nor a public catch-all (`/`) can open a narrower path (`/admin`) or a method
that its routes do not list. A request that no route matches gets None, which every shell turns
into a refusal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Generic, TypeVar

from authgate.policy.paths import request_segments
from authgate.policy.rules import Route

__all__ = ["Policy"]

R = TypeVar("R")


class Policy(Generic[R]):
    """Routes, each paired with a payload the shell needs (the gate's route config, an upstream…).

    `Policy.of(routes)` builds one whose payload is the `Route` itself.
    """

    __slots__ = ("_by_first", "_entries", "_rest")

    def __init__(self, entries: Iterable[tuple[Route, R]]) -> None:
        indexed = list(enumerate(entries))
        # Most specific first; `sorted` is stable, so ties keep configuration order.
        indexed.sort(key=lambda item: item[1][0].path.specificity, reverse=True)
        self._entries: tuple[tuple[Route, R], ...] = tuple(entry for _, entry in indexed)
        # A route whose first segment is a literal can only match requests whose first segment
        # is that literal: index the candidates by it, in matching order, so that a request is
        # compared with its candidates only. `_rest` serves every other first segment.
        literals = {first for first in map(_first_literal, self._entries) if first is not None}
        self._by_first: dict[str, tuple[tuple[Route, R], ...]] = {
            literal: tuple(e for e in self._entries if _first_literal(e) in (literal, None))
            for literal in literals
        }
        self._rest = tuple(e for e in self._entries if _first_literal(e) is None)

    @classmethod
    def of(cls, routes: Iterable[Route]) -> Policy[Route]:
        return Policy((route, route) for route in routes)

    @property
    def routes(self) -> Sequence[tuple[Route, R]]:
        """Routes in matching order (most specific first)."""
        return self._entries

    def match(self, method: str, canonical_path: str) -> tuple[Route, R] | None:
        """The route that judges this request, with its payload, or None (refuse)."""
        segments = request_segments(canonical_path)
        candidates = self._by_first.get(segments[0], self._rest) if segments else self._rest
        owner: tuple[int, int, int] | None = None
        for route, payload in candidates:
            path = route.path
            if owner is not None and path.specificity != owner:
                break  # never fall through to a broader path
            if path.matches_segments(segments):
                owner = path.specificity
                if route.allows_method(method):
                    return route, payload
        return None


def _first_literal(entry: tuple[Route, object]) -> str | None:
    """The route's first segment when it is a literal, else None (a wildcard, or no segment)."""
    segments = entry[0].path.segments
    return segments[0] if segments else None
