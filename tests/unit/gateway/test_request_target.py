"""Request targets (RFC 9112 §3.2): canonical paths, and ambiguous targets refused."""

from __future__ import annotations

import pytest

from authgate.gateway.request_target import BadRequestTargetError, parse_request_target


@pytest.mark.parametrize(
    ("raw", "path", "query"),
    [
        (b"/a/b?x=1&y", "/a/b", b"x=1&y"),
        (b"/public/../admin", "/admin", b""),
        (b"/%61dmin?q=%2F", "/admin", b"q=%2F"),
        (b"//admin//x/", "/admin/x/", b""),
        (b"http://example.com:8080/x/./y?z", "/x/y", b"z"),
        (b"/filter?a[b]=c|d", "/filter", b"a[b]=c|d"),
    ],
)
def test_request_targets_become_canonical(raw: bytes, path: str, query: bytes) -> None:
    target = parse_request_target(raw)
    assert (target.path, target.query) == (path, query)


def test_absolute_form_keeps_its_authority() -> None:
    assert parse_request_target(b"http://example.com:8080/x").authority == b"example.com:8080"


@pytest.mark.parametrize(
    "raw", [b"*", b"example.com:443", b"/a%2Fb", b"/a%5cb", b"/a\\b", b"/a%00", b"/a%g1", b"/a#f"]
)
def test_ambiguous_targets_are_refused(raw: bytes) -> None:
    with pytest.raises(BadRequestTargetError):
        parse_request_target(raw)
