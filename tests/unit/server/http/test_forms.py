"""Strict form parsing (`server.http.forms.parse_form`): decoding with and without escapes, and
every refusal."""

from __future__ import annotations

import random
from urllib.parse import quote_plus, unquote_plus

import pytest

from authgate.oauth.errors import InvalidRequest
from authgate.server.http.forms import parse_form


def test_plain_and_escaped_values() -> None:
    form = parse_form(
        b"grant_type=client_credentials&scope=read+write&resource=https%3A%2F%2Fapi.test%2F"
        b"&name=%C3%A9t%C3%A9&empty=&nothing"
    )
    assert form.get("grant_type") == "client_credentials"
    assert form.get("scope") == "read write"
    assert form.get("resource") == "https://api.test/"
    assert form.get("name") == "été"
    assert form.get("empty") is None
    assert "empty" in form
    assert form.get("nothing") is None


def test_escaped_names() -> None:
    assert parse_form(b"grant%5Ftype=x&a+b=y").pairs() == [("grant_type", "x"), ("a b", "y")]


def test_repeatable_only_where_listed() -> None:
    body = b"resource=https%3A%2F%2Fa.test&resource=https://b.test"
    assert parse_form(body, ("resource",)).get_all("resource") == [
        "https://a.test",
        "https://b.test",
    ]
    with pytest.raises(InvalidRequest, match="repeated"):
        parse_form(body)
    with pytest.raises(InvalidRequest, match="repeated"):
        parse_form(b"scope=a&scope%3D=b&sc%6Fpe=c")  # the same name, escaped


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"a=%zz", "malformed percent-encoding"),
        (b"a=%4", "malformed percent-encoding"),
        (b"a=%FF", "not UTF-8"),
        (b"a=%C3", "not UTF-8"),
        (b"a=%00", "NUL"),
        (b"a=x\x00", "NUL"),
        (b"a\x00=x", "NUL"),
        (b"%00=x", "NUL"),
        ("a=é".encode(), "percent-encoded ASCII"),
        (b"&".join(b"p%d=1" % i for i in range(65)), "too many parameters"),
    ],
)
def test_refusals(body: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_form(body)


def test_same_as_unquote_plus_on_random_text() -> None:
    rng = random.Random(7)
    alphabet = "abcXYZ019-._~+%2B /:?é€\U0001f600"
    for _ in range(2000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        for raw in (quote_plus(value, safe=rng.choice(["", "+", ":/"])), quote_plus(value)):
            if "=" in raw or "&" in raw:
                continue
            assert parse_form(f"k={raw}".encode()).get("k") == unquote_plus(raw, errors="strict")
