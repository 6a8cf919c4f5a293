"""Identity field values: no field injection, the headers made from a principal."""

from __future__ import annotations

from authgate.gateway.identity import field_value, identity_headers
from authgate.verifier import Principal


def test_identity_values_cannot_inject_fields() -> None:
    assert field_value("alice") == b"alice"
    assert field_value("eve\r\nX-Auth-Roles: admin") == b"eve%0D%0AX-Auth-Roles: admin"
    assert field_value("zoë") == b"zo%C3%AB"
    assert field_value("100%") == b"100%25"
    assert field_value("a,b", in_list=True) == b"a%2Cb"


def test_identity_headers_from_a_principal() -> None:
    principal = Principal(
        subject="u1",
        client_id=None,
        scopes=frozenset({"b", "a"}),
        roles=frozenset({"x,y", "z"}),
        issuer="https://idp",
    )
    assert identity_headers(principal) == [
        (b"X-Auth-Subject", b"u1"),
        (b"X-Auth-Scopes", b"a b"),
        (b"X-Auth-Roles", b"x%2Cy,z"),
        (b"X-Auth-Issuer", b"https://idp"),
    ]
