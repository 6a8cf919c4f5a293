"""Rates: the `"10/minute"` syntax, bursts, limit names, and the errors that name the text."""

from __future__ import annotations

import pytest

from authgate.limits import FailMode, Limit, Rate, parse_rate


@pytest.mark.parametrize(
    ("text", "count", "period"),
    [
        ("10/minute", 10, 60),
        ("100/second", 100, 1),
        ("6000/hour", 6000, 3600),
        ("500/day", 500, 86400),
        ("20/5 minutes", 20, 300),
        ("20/5minutes", 20, 300),
        (" 3 / Second ", 3, 1),
        ("1/days", 1, 86400),
    ],
)
def test_rates_parse(text: str, count: int, period: int) -> None:
    rate = parse_rate(text)
    assert (rate.count, rate.period, rate.burst) == (count, period, max(1, count // 10))


def test_the_default_burst_keeps_a_period_near_its_count() -> None:
    # A tenth of the count, at least 1: a period holds at most count + burst - 1.
    assert parse_rate("60/minute").burst == 6
    assert parse_rate("5/minute").burst == 1
    assert parse_rate("1000/hour").burst == 100


def test_burst_is_kept_and_the_interval_never_exceeds_the_rate() -> None:
    rate = parse_rate("10/minute", burst=3)
    assert (rate.count, rate.period, rate.burst) == (10, 60, 3)
    assert rate.interval_us == 6_000_000
    # 3/second does not divide: the interval is rounded up, so the long-run rate stays <= 3/s.
    assert parse_rate("3/second").interval_us == 333_334
    assert str(rate) == "10/60s burst 3"
    assert str(parse_rate("10/minute")) == "10/60s"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected COUNT/PERIOD"),
        ("10", "expected COUNT/PERIOD"),
        ("10/fortnight", "expected COUNT/PERIOD"),
        ("ten/minute", "expected COUNT/PERIOD"),
        ("-1/minute", "expected COUNT/PERIOD"),
        ("1e3/minute", "expected COUNT/PERIOD"),
        ("10/minute/hour", "expected COUNT/PERIOD"),
        ("10 per minute", "expected COUNT/PERIOD"),
        ("\u0661\u0660/minute", "expected COUNT/PERIOD"),  # Arabic-Indic digits are not ASCII
        ("0/minute", "count must be 1.."),
        ("10/0 minutes", "period must not be zero"),
        ("10000000000/second", "count must be 1.."),
        ("1/400 days", "period must be 1.."),
    ],
)
def test_bad_rates_name_the_text(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_rate(text)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize("burst", [0, -1, True, 1.5, "5"])
def test_bad_bursts(burst: object) -> None:
    with pytest.raises(ValueError, match="burst") as caught:
        parse_rate("10/minute", burst=burst)  # type: ignore[arg-type]
    assert "'10/minute'" in str(caught.value)


def test_a_bucket_longer_than_a_year_is_refused() -> None:
    with pytest.raises(ValueError, match="more than a year"):
        parse_rate("1/day", burst=400)
    assert parse_rate("1/day", burst=366).burst == 366


def test_non_text_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="expected text"):
        parse_rate(10)  # type: ignore[arg-type]


def test_limit_names_are_checked_and_fail_mode_normalised() -> None:
    rate = parse_rate("1/second")
    assert Limit("token", rate).on_store_failure is FailMode.OPEN
    assert Limit("token", rate, "closed").on_store_failure is FailMode.CLOSED  # type: ignore[arg-type]
    for bad in ("", "Token", "1st", "a" * 33, 'to"ken', "tok en", "tök"):
        with pytest.raises(ValueError, match="limit name"):
            Limit(bad, rate)
    with pytest.raises(ValueError):
        Limit("token", rate, "sometimes")  # type: ignore[arg-type]


def test_rates_compare_by_value() -> None:
    assert parse_rate("60/minute") == Rate(60, 60, 6)
    assert parse_rate("60/minute") != parse_rate("60/minute", burst=5)
