"""The algorithm (`gcra.decide`) on a controlled clock: no window edge lets two windows' worth
through, bursts are what is configured, and every figure it reports is exact."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from authgate.limits import gcra
from authgate.limits.rates import Rate

Decide = Callable[[int], bool]


def gcra_limiter(rate: Rate) -> Decide:
    tat: list[int | None] = [None]

    def hit(now: int) -> bool:
        outcome, new = gcra.decide(tat[0], now, rate.interval_us, rate.burst, count=True)
        if new is not None:
            tat[0] = new
        return outcome.allowed

    return hit


def fixed_window_limiter(rate: Rate) -> Decide:
    """The algorithm the limiter must not be: a counter per calendar window."""
    counts: dict[int, int] = {}
    window = rate.period * 1_000_000

    def hit(now: int) -> bool:
        slot = now // window
        if counts.get(slot, 0) >= rate.count:
            return False
        counts[slot] = counts.get(slot, 0) + 1
        return True

    return hit


def admitted(decide: Decide, times: Sequence[int]) -> list[int]:
    return [t for t in times if decide(t)]


def worst_window(times: Sequence[int], length: int) -> int:
    """The most admitted requests in any half-open interval [s, s + length)."""
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - length:
            start += 1
        best = max(best, end - start + 1)
    return best


def bound(rate: Rate, length: int) -> int:
    """GCRA's promise: at most burst + ceil(length / T) - 1 in any interval of that length."""
    return rate.burst + math.ceil(length / rate.interval_us) - 1


def edge_burst(rate: Rate) -> list[int]:
    """A full window's worth just before a window edge and another just after it."""
    edge = 10 * rate.period * 1_000_000
    return [edge - 1] * rate.count + [edge] * rate.count


def test_the_window_check_catches_a_fixed_window() -> None:
    # The same check as below, on the algorithm it must rule out: 2N pass within 1 us.
    rate = Rate(10, 60, 10)
    passed = admitted(fixed_window_limiter(rate), edge_burst(rate))
    assert len(passed) == 2 * rate.count
    assert worst_window(passed, 60_000_000) > rate.count + rate.burst - 1


def test_no_edge_doubling() -> None:
    rate = Rate(10, 60, 10)
    passed = admitted(gcra_limiter(rate), edge_burst(rate))
    assert len(passed) == rate.burst  # never more than the burst at once
    strict = Rate(10, 60, 1)
    passed = admitted(gcra_limiter(strict), edge_burst(strict))
    assert len(passed) == 1


arrivals = st.lists(
    st.one_of(st.integers(0, 0), st.integers(1, 50_000), st.integers(50_000, 5_000_000)),
    min_size=1,
    max_size=300,
).map(lambda gaps: [sum(gaps[: i + 1]) for i in range(len(gaps))])
rates = st.builds(
    lambda count, period, burst_share: Rate(count, period, max(1, round(count * burst_share))),
    st.integers(1, 50),
    st.sampled_from([1, 2, 60]),
    st.floats(0, 1),
)


@given(rates, arrivals, st.integers(1, 120_000_000))
@settings(max_examples=300)
def test_any_interval_admits_at_most_burst_plus_its_share(
    rate: Rate, times: list[int], length: int
) -> None:
    passed = admitted(gcra_limiter(rate), times)
    assert worst_window(passed, length) <= bound(rate, length)
    assert worst_window(passed, 1) <= rate.burst
    assert worst_window(passed, rate.period * 1_000_000) <= rate.count + rate.burst - 1


@given(st.integers(1, 50), st.sampled_from([1, 60, 3600]), arrivals)
@settings(max_examples=200)
def test_with_burst_one_no_window_of_the_period_exceeds_the_count(
    count: int, period: int, times: list[int]
) -> None:
    rate = Rate(count, period, 1)
    passed = admitted(gcra_limiter(rate), times)
    assert worst_window(passed, period * 1_000_000) <= count


@given(rates)
def test_traffic_at_the_rate_is_never_refused(rate: Rate) -> None:
    hit = gcra_limiter(rate)
    start = 5_000_000_000
    assert all(hit(start) for _ in range(rate.burst))
    assert not hit(start)
    # Then one every interval, forever.
    assert all(hit(start + i * rate.interval_us) for i in range(1, 200))


@given(rates, arrivals)
@settings(max_examples=200)
def test_reported_figures_are_exact(rate: Rate, times: list[int]) -> None:
    interval, burst = rate.interval_us, rate.burst
    tat: int | None = None
    for now in times:
        outcome, new = gcra.decide(tat, now, interval, burst, count=True)
        tat = new if new is not None else tat
        # `remaining` more are admitted right now, and not one more.
        probe = tat
        for _ in range(outcome.remaining):
            extra, probe = gcra.decide(probe, now, interval, burst, count=True)
            assert extra.allowed
        assert not gcra.decide(probe, now, interval, burst, count=True)[0].allowed
        # `retry_after`: refused a microsecond before, admitted at it.
        if outcome.remaining == 0:
            wait = outcome.retry_after_us
            assert wait > 0
            assert not gcra.decide(tat, now + wait - 1, interval, burst, count=False)[0].allowed
            assert gcra.decide(tat, now + wait, interval, burst, count=False)[0].allowed
        else:
            assert outcome.retry_after_us == 0
        # `window`: no more than `remaining` within it; one more once it has passed.
        before = gcra.decide(tat, now + outcome.window_us - 1, interval, burst, count=False)[0]
        after = gcra.decide(tat, now + outcome.window_us, interval, burst, count=False)[0]
        assert before.remaining == outcome.remaining
        assert after.remaining == min(outcome.remaining + 1, burst)
        # `reset_after`: untouched (a full bucket) then, not before.
        reset = outcome.reset_after_us
        assert gcra.decide(tat, now + reset, interval, burst, count=False)[0].remaining == burst
        if reset > 0:
            late = gcra.decide(tat, now + reset - 1, interval, burst, count=False)[0]
            assert late.remaining < burst


def test_peek_counts_nothing() -> None:
    rate = Rate(2, 1, 2)
    outcome, new = gcra.decide(None, 0, rate.interval_us, rate.burst, count=False)
    assert new is None
    assert (outcome.allowed, outcome.remaining) == (True, 2)
    first, tat = gcra.decide(None, 0, rate.interval_us, rate.burst, count=True)
    assert (first.allowed, first.remaining) == (True, 1)
    peek, unchanged = gcra.decide(tat, 0, rate.interval_us, rate.burst, count=False)
    assert unchanged is None
    assert (peek.allowed, peek.remaining) == (True, 1)


def test_a_refusal_changes_nothing() -> None:
    rate = Rate(1, 60, 1)
    _, tat = gcra.decide(None, 0, rate.interval_us, rate.burst, count=True)
    refused, new = gcra.decide(tat, 1, rate.interval_us, rate.burst, count=True)
    assert not refused.allowed
    assert new is None
    assert refused.retry_after_us == 60_000_000 - 1
