"""`check_binding` (RFC 9449 §7.1-§7.2, RFC 8705 §3): a DPoP presentation needs `cnf` to be
exactly `{jkt}` with the proof's thumbprint; a bearer presentation needs no `cnf` at all."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from authgate.verifier.confirmation import check_binding
from authgate.verifier.errors import Reason, TokenRejected

JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"


class _Cnf(Mapping[str, Any]):
    """A mapping that is not a dict (as an introspection answer's parser might give)."""

    def __init__(self, **members: Any) -> None:
        self._members = members

    def __getitem__(self, name: str) -> Any:
        return self._members[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)


@pytest.mark.parametrize("cnf", [{"jkt": JKT}, _Cnf(jkt=JKT)])
def test_a_dpop_presentation_with_the_bound_key_passes(cnf: Mapping[str, Any]) -> None:
    check_binding({"cnf": cnf}, JKT)


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({}, Reason.NOT_DPOP_BOUND),
        ({"cnf": None}, Reason.NOT_DPOP_BOUND),
        ({"cnf": JKT}, Reason.NOT_DPOP_BOUND),  # a string, not an object
        ({"cnf": [("jkt", JKT)]}, Reason.NOT_DPOP_BOUND),
        ({"cnf": {}}, Reason.NOT_DPOP_BOUND),
        ({"cnf": {"x5t#S256": JKT}}, Reason.NOT_DPOP_BOUND),
        ({"cnf": {"jkt": JKT, "x5t#S256": "x"}}, Reason.NOT_DPOP_BOUND),
        ({"cnf": _Cnf(jkt=JKT, other=1)}, Reason.NOT_DPOP_BOUND),
        ({"cnf": {"jkt": JKT[:-1] + "A"}}, Reason.KEY_MISMATCH),
        ({"cnf": {"jkt": 7}}, Reason.KEY_MISMATCH),
        ({"cnf": {"jkt": "é" + JKT[1:]}}, Reason.KEY_MISMATCH),
        ({"cnf": _Cnf(jkt="other")}, Reason.KEY_MISMATCH),
    ],
)
def test_a_dpop_presentation_needs_cnf_to_be_exactly_the_proof_key(
    claims: dict[str, Any], reason: Reason
) -> None:
    with pytest.raises(TokenRejected) as caught:
        check_binding(claims, JKT)
    assert caught.value.reason is reason


def test_a_bearer_presentation_refuses_any_cnf() -> None:
    check_binding({"sub": "u"}, None)
    for cnf in ({"jkt": JKT}, {}, None):
        with pytest.raises(TokenRejected) as caught:
            check_binding({"cnf": cnf}, None)
        assert caught.value.reason is Reason.BOUND
