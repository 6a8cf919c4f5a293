"""What a route demands of a caller, and the check that says yes or names what is missing
(RFC 6750 §3.1 `insufficient_scope`, RFC 6749 §3.3 scope syntax, RFC 9068 §2.2.3.1 roles).

A `Requirement` is shared by every shell: routes in the gate configuration carry one, and the
FastAPI dependencies and Flask decorators build one from their arguments, so scopes, roles and
claim conditions are judged by this code only. `Requirement.check` returns None when satisfied or
an `InsufficientScope` error (403); for scope failures its `scope` lists the route's scopes, so
that a client knows what to ask for.

Claim conditions: `equals` compares JSON values exactly (`true` is not `1`, `"1"` is not `1`);
`contains` holds when the claim is an array with that element, or a space-separated string (like
`scope`) with that word; the string is split as RFC 6749 §3.3 splits a scope
(`authgate.oauth.scope.split_scope`: on U+0020 only, so "pwd\tmfa" holds neither word). A missing
claim satisfies neither.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from authgate.oauth.errors import InsufficientScope
from authgate.oauth.scope import is_scope_token, split_scope
from authgate.policy.paths import PathPattern
from authgate.verifier.principal import MISSING, ClaimPath, Principal, claim_at

__all__ = ["ClaimCondition", "Match", "Requirement", "Route"]

_METHOD = re.compile(r"^[A-Z]+$")


class Match(StrEnum):
    ALL = "all"
    ANY = "any"


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return bool(a == b)


@dataclass(frozen=True, slots=True)
class ClaimCondition:
    """`claim` (a path of member names) must equal, or contain, a value."""

    claim: ClaimPath
    equals: Any = MISSING
    contains: Any = MISSING

    def __post_init__(self) -> None:
        if not self.claim or not all(isinstance(p, str) and p for p in self.claim):
            raise ValueError("a claim condition needs a claim name (or a path of names)")
        if (self.equals is MISSING) == (self.contains is MISSING):
            raise ValueError(f"claim {'.'.join(self.claim)!r}: give exactly one of equals/contains")

    def holds(self, claims: Mapping[str, Any]) -> bool:
        value = claim_at(claims, self.claim)
        if value is MISSING:
            return False
        if self.equals is not MISSING:
            return _json_equal(value, self.equals)
        if isinstance(value, list):
            return any(_json_equal(item, self.contains) for item in value)
        if isinstance(value, str) and isinstance(self.contains, str):
            return self.contains in split_scope(value)
        return False


def _names(values: Iterable[str], what: str) -> tuple[str, ...]:
    if isinstance(values, str):
        raise TypeError(f"{what} must be a list of strings, not a string")
    out = tuple(values)
    for value in out:
        if not isinstance(value, str) or not value:
            raise ValueError(f"{what} must be non-empty strings")
    return out


@dataclass(frozen=True, slots=True)
class Requirement:
    """Scopes (all or any), roles (all or any) and claim conditions, all of which must hold."""

    scopes: tuple[str, ...] = ()
    scopes_match: Match = Match.ALL
    roles: tuple[str, ...] = ()
    roles_match: Match = Match.ALL
    claims: tuple[ClaimCondition, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "scopes", _names(self.scopes, "scopes"))
        object.__setattr__(self, "roles", _names(self.roles, "roles"))
        object.__setattr__(self, "scopes_match", Match(self.scopes_match))
        object.__setattr__(self, "roles_match", Match(self.roles_match))
        for scope in self.scopes:
            if not is_scope_token(scope):
                raise ValueError(f"scope {scope!r} is not a valid scope token (RFC 6749 §3.3)")

    @property
    def empty(self) -> bool:
        return not (self.scopes or self.roles or self.claims)

    def check(self, principal: Principal) -> InsufficientScope | None:
        """None when `principal` satisfies every part, else the 403 to answer."""
        if self.scopes and not principal.has_scopes(
            self.scopes, any_of=self.scopes_match is Match.ANY
        ):
            wording = "one of the scopes" if self.scopes_match is Match.ANY else "the scopes"
            return InsufficientScope(
                f"the access token does not grant {wording} this request needs",
                scope=" ".join(self.scopes),
            )
        if self.roles and not principal.has_roles(self.roles, any_of=self.roles_match is Match.ANY):
            return InsufficientScope("the caller does not hold a role this request needs")
        for condition in self.claims:
            if not condition.holds(principal.claims):
                return InsufficientScope("the access token's claims do not allow this request")
        return None


@dataclass(frozen=True, slots=True)
class Route:
    """One rule: where it applies (path and methods) and what it demands.

    `public` routes let every request through without looking at credentials; other routes
    require an authenticated caller who meets `requirement`. `methods` None means every method;
    a route listing GET also matches HEAD (RFC 9110 §9.3.2).
    """

    path: PathPattern
    methods: frozenset[str] | None = None
    public: bool = False
    requirement: Requirement = field(default_factory=Requirement)
    name: str | None = None

    def __post_init__(self) -> None:
        if self.methods is not None:
            methods = frozenset(m.upper() for m in self.methods)
            if not methods or not all(_METHOD.match(m) for m in methods):
                raise ValueError("methods must be a non-empty list of HTTP method names")
            if "GET" in methods:
                methods |= {"HEAD"}
            object.__setattr__(self, "methods", methods)
        if self.public and not self.requirement.empty:
            raise ValueError("a public route cannot also require scopes, roles or claims")

    @classmethod
    def build(
        cls,
        *,
        path: str | None = None,
        pattern: str | None = None,
        methods: Iterable[str] | None = None,
        public: bool = False,
        scopes: Iterable[str] = (),
        scopes_match: str = "all",
        roles: Iterable[str] = (),
        roles_match: str = "all",
        claims: Iterable[ClaimCondition] = (),
        name: str | None = None,
    ) -> Route:
        """A route from plain values: exactly one of `path` (prefix) and `pattern`."""
        if (path is None) == (pattern is None):
            raise ValueError("a route needs exactly one of path (prefix) and pattern")
        compiled = (
            PathPattern.prefix(path) if path is not None else PathPattern.pattern(pattern or "")
        )
        requirement = Requirement(
            scopes=_names(scopes, "scopes"),
            scopes_match=Match(scopes_match),
            roles=_names(roles, "roles"),
            roles_match=Match(roles_match),
            claims=tuple(claims),
        )
        return cls(
            compiled,
            frozenset(_names(methods, "methods")) if methods is not None else None,
            public,
            requirement,
            name,
        )

    def allows_method(self, method: str) -> bool:
        return self.methods is None or method in self.methods

    @property
    def label(self) -> str:
        """A short name for logs and metrics: `name`, or the path or pattern."""
        return self.name or self.path.source
