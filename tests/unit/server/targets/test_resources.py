"""RFC 8707 §2 resource indicators: absolute URIs of printable ASCII without spaces or fragments."""

from __future__ import annotations

import pytest

from authgate.server.targets.resources import check_resource_uri

_CHARACTERS = "resource must be an absolute URI without spaces or control characters"


@pytest.mark.parametrize(
    "value", ["https://api.example.com", "urn:example:api", "https://a.test/p?q=1&r=~!$'()*+,;="]
)
def test_resource_uris_accepted(value: str) -> None:
    assert check_resource_uri(value) is None


@pytest.mark.parametrize("character", [" ", "\t", "\x00", "\x1f", "\x7f", "\x80", "é", "\u2028"])
def test_spaces_controls_and_non_ascii_refused(character: str) -> None:
    assert check_resource_uri(f"https://api.example.com/a{character}b") == _CHARACTERS


def test_a_fragment_or_a_relative_reference_refused() -> None:
    assert check_resource_uri("https://api.example.com/#x") is not None
    assert check_resource_uri("/relative") is not None
