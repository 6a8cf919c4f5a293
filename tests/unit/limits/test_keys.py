"""Store keys: bounded length, no collisions by concatenation, any Unicode, no raw client values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authgate.limits.keys import address_part, check_namespace, store_key

parts = st.lists(st.one_of(st.text(), st.binary()), max_size=4)
# namespace (32) + ":rl:" + limit name (32) + ":" + 22 characters of digest
MAX_KEY_LENGTH = 32 + 4 + 32 + 1 + 22


def test_concatenation_cannot_collide() -> None:
    pairs = [
        (("a:b", "c"), ("a", "b:c")),
        (("ab",), ("a", "b")),
        (("a", ""), ("a",)),
        (("", "a"), ("a",)),
        (("",), ()),
        (("a\x00", "b"), ("a", "\x00b")),
    ]
    for left, right in pairs:
        assert store_key("ns", "token", left) != store_key("ns", "token", right), (left, right)


def test_limits_and_namespaces_separate_keys() -> None:
    assert store_key("ns", "token", ["x"]) != store_key("ns", "login", ["x"])
    assert store_key("ns", "token", ["x"]) != store_key("other", "token", ["x"])


def test_long_and_hostile_values_give_short_keys_without_the_value() -> None:
    huge = "c" * 10_000
    key = store_key("authgate", "token", ["client", huge])
    assert len(key) == len("authgate:rl:token:") + 22
    assert "ccc" not in key
    address = store_key("authgate", "login", ["address", "203.0.113.7"])
    assert "203.0.113.7" not in address
    for hostile in ["\u202e", "🔑" * 500, "\ud800", "line\r\nbreak", "*", "{a}"]:
        key = store_key("authgate", "token", ["client", hostile])
        assert key.isascii()
        assert len(key) == len("authgate:rl:token:") + 22


def test_text_and_its_utf8_bytes_are_one_value() -> None:
    assert store_key("ns", "t", ["é"]) == store_key("ns", "t", ["é".encode()])
    # Lone surrogates (text decoded with surrogateescape) still have a key.
    assert store_key("ns", "t", ["\udcff"]) != store_key("ns", "t", ["\udcfe"])


@given(parts, parts)
def test_different_parts_never_share_a_key(
    left: list[str | bytes], right: list[str | bytes]
) -> None:
    def canonical(values: list[str | bytes]) -> list[bytes]:
        return [v.encode("utf-8", "surrogatepass") if isinstance(v, str) else v for v in values]

    same = canonical(left) == canonical(right)
    assert (store_key("ns", "t", left) == store_key("ns", "t", right)) is same


@given(parts)
def test_every_key_is_bounded(values: list[str | bytes]) -> None:
    key = store_key("n" * 32, "l" * 32, values)
    assert len(key) <= MAX_KEY_LENGTH
    assert key.isascii()


@pytest.mark.parametrize("bad", ["", "Upper", "a b", "a:b", "a" * 33, "ü", "-start"])
def test_bad_namespaces(bad: str) -> None:
    with pytest.raises(ValueError, match="namespace"):
        check_namespace(bad)


def test_addresses_count_per_host_and_per_ipv6_64() -> None:
    assert address_part("203.0.113.7") == "203.0.113.7"
    assert address_part("::ffff:203.0.113.7") == "203.0.113.7"
    assert address_part("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert address_part("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert address_part("2001:db8:1:3::1") != address_part("2001:db8:1:2::1")
    assert address_part("unix:/run/sock") == "unix:/run/sock"
