"""The route table: which rule judges a request (default deny).

`Policy.match(method, canonical_path)` finds the most specific paths that match the request (more
literal segments first, then more segments, then an exact pattern before an open-ended one) and,
among the routes with that path, the first in configuration order whose methods include the
request's. The most specific matching path owns the request: when none of its routes lists the
method, the request is refused; it never falls through to a broader route. So neither the order
of routes in a file nor a public catch-all (`/`) can open a narrower path (`/admin`) or a method
that its routes do not list. A request that no route matches gets None, which every shell turns
into a refusal.

`case_insensitive` compares paths in ASCII lower case (`/ADMIN` is `/admin`), for applications that
route that way (Express's default, ASP.NET); otherwise paths are case-sensitive.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Generic, TypeVar

from authgate.policy.paths import PathPattern, fold_case, request_segments
from authgate.policy.rules import Route

__all__ = ["Policy"]

R = TypeVar("R")


class Policy(Generic[R]):
    """Routes, each paired with a payload the shell needs (the gate's route config, an upstream…).

    `Policy.of(routes)` builds one whose payload is the `Route` itself.
    """

    __slots__ = ("_by_first", "_entries", "_fold", "_rest")

    def __init__(
        self, entries: Iterable[tuple[Route, R]], *, case_insensitive: bool = False
    ) -> None:
        indexed = list(enumerate(entries))
        # Most specific first; `sorted` is stable, so ties keep configuration order.
        indexed.sort(key=lambda item: item[1][0].path.specificity, reverse=True)
        self._entries: tuple[tuple[Route, R], ...] = tuple(entry for _, entry in indexed)
        self._fold = case_insensitive
        # What is compared: each route's pattern, folded when case is ignored.
        matchers = tuple(
            (route.path.folded() if case_insensitive else route.path, route, payload)
            for route, payload in self._entries
        )
        # A route whose first segment is a literal can only match requests whose first segment
        # is that literal: index the candidates by it, in matching order, so that a request is
        # compared with its candidates only. `_rest` serves every other first segment.
        literals = {f for f in (_first_literal(m[0]) for m in matchers) if f is not None}
        self._by_first: dict[str, tuple[tuple[PathPattern, Route, R], ...]] = {
            literal: tuple(m for m in matchers if _first_literal(m[0]) in (literal, None))
            for literal in literals
        }
        self._rest = tuple(m for m in matchers if _first_literal(m[0]) is None)

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
        if self._fold:
            segments = [fold_case(segment) for segment in segments]
        candidates = self._by_first.get(segments[0], self._rest) if segments else self._rest
        owner: tuple[int, int, int] | None = None
        for path, route, payload in candidates:
            if owner is not None and path.specificity != owner:
                break  # never fall through to a broader path
            if path.matches_segments(segments):
                owner = path.specificity
                if route.allows_method(method):
                    return route, payload
        return None


def _first_literal(pattern: PathPattern) -> str | None:
    """The pattern's first segment when it is a literal, else None (a wildcard, or no segment)."""
    segments = pattern.segments
    return segments[0] if segments else None
