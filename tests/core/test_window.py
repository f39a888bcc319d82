"""DoneCounters: a per-origin low mark with the finished counters above a gap."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from btob.core.window import DoneCounters


def test_nothing_is_done_at_first() -> None:
    done = DoneCounters()
    assert done.low(0) == 0 and done.low(7) == 0
    assert not done.is_done(0, 0)
    assert done.held() == 0


def test_counters_finished_in_order_slide_the_low_mark_and_hold_nothing() -> None:
    done = DoneCounters()
    for counter in range(5):
        done.finish(3, counter)
    assert done.low(3) == 5
    assert all(done.is_done(3, c) for c in range(5)) and not done.is_done(3, 5)
    assert done.held() == 0


def test_a_gap_holds_the_counters_above_it_until_it_closes() -> None:
    done = DoneCounters()
    done.finish(1, 3)
    done.finish(1, 1)
    assert done.low(1) == 0  # counter 0 is still open
    assert done.is_done(1, 1) and done.is_done(1, 3)
    assert not done.is_done(1, 0) and not done.is_done(1, 2)
    assert done.held() == 2
    done.finish(1, 0)  # closes the first gap: low slides over 1, stops at 2
    assert done.low(1) == 2 and done.held() == 1
    done.finish(1, 2)
    assert done.low(1) == 4 and done.held() == 0


def test_origins_are_independent() -> None:
    done = DoneCounters()
    done.finish(0, 0)
    done.finish(2, 1)
    assert done.low(0) == 1 and done.low(1) == 0 and done.low(2) == 0
    assert done.is_done(2, 1) and not done.is_done(0, 1) and not done.is_done(1, 0)
    assert done.held() == 1


def test_finishing_again_or_below_the_low_mark_changes_nothing() -> None:
    done = DoneCounters()
    for counter in (0, 1, 5):
        done.finish(0, counter)
    before = (done.low(0), done.held())
    for counter in (0, 1, 5):  # a repeat: below the low mark, or already held above the gap
        done.finish(0, counter)
    assert (done.low(0), done.held()) == before == (2, 1)


def test_what_is_held_is_bounded_by_the_counters_finished_above_the_gap() -> None:
    done = DoneCounters()
    for counter in range(1, 101):  # counter 0 never finishes: everything stays above a gap
        done.finish(4, counter)
    assert done.held() == 100
    done.finish(4, 0)
    assert done.low(4) == 101 and done.held() == 0  # closing the gap releases all of it


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 30)), max_size=120))
def test_it_behaves_like_the_set_of_finished_counters(finishes: list[tuple[int, int]]) -> None:
    done = DoneCounters()
    finished: set[tuple[int, int]] = set()
    for origin, counter in finishes:
        done.finish(origin, counter)
        finished.add((origin, counter))
    for origin in range(3):
        low = 0
        while (origin, low) in finished:
            low += 1
        assert done.low(origin) == low
        for counter in range(32):
            assert done.is_done(origin, counter) == ((origin, counter) in finished)
    expected_held = sum(1 for o, c in finished if c > done.low(o))
    assert done.held() == expected_held
