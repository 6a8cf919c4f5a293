"""`authgate.policy`: per-route access rules and the decision they give (RFC 6750 §3.1, RFC 3986
§5.2.4 for path canonicalisation).

Sans-I/O: `Policy.match` picks the route for a method and a canonical path (default deny),
`Requirement.check` judges a `Principal` against a route's scopes, roles and claim conditions.
"""

from authgate.policy.engine import Policy
from authgate.policy.paths import (
    InvalidPathError,
    PathPattern,
    canonical_decoded_path,
    canonical_path,
)
from authgate.policy.rules import ClaimCondition, Match, Requirement, Route

__all__ = [
    "ClaimCondition",
    "InvalidPathError",
    "Match",
    "PathPattern",
    "Policy",
    "Requirement",
    "Route",
    "canonical_decoded_path",
    "canonical_path",
]
