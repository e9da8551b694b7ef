"""The watermark never passes an unsettled record, whatever order acknowledgements arrive in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailer.state.watermark import Watermark


def test_unmatched_lines_settle_at_once():
    w = Watermark(100)
    w.skip(120)
    w.skip(150)
    assert w.offset == 150
    assert w.in_flight == 0


def test_out_of_order_ack_does_not_move_past_unsettled_record():
    w = Watermark(0)
    w.track(10)
    w.track(20)
    w.skip(30)
    w.track(40)
    w.settle(40)
    w.settle(20)
    assert w.offset == 0  # the record ending at 10 is still in flight
    assert w.in_flight == 1
    w.settle(10)
    assert w.offset == 40
    assert w.in_flight == 0


def test_offset_stops_at_the_start_of_the_first_unsettled_line():
    w = Watermark(5)
    w.skip(12)
    w.track(30)
    w.skip(44)
    assert w.offset == 12  # the line ending at 30 starts at 12
    assert w.read_offset == 44


def test_offsets_must_increase():
    w = Watermark(0)
    w.track(10)
    with pytest.raises(ValueError):
        w.track(10)
    with pytest.raises(ValueError):
        w.skip(5)


@given(
    kinds=st.lists(st.booleans(), min_size=1, max_size=60),
    order=st.randoms(use_true_random=False),
    settle_count=st.integers(min_value=0, max_value=60),
)
def test_watermark_equals_model_for_any_ack_order(kinds, order, settle_count):
    """Model: the offset is the end of the longest prefix of lines that are all settled."""
    w = Watermark(0)
    ends, tracked = [], []
    for i, is_record in enumerate(kinds):
        end = (i + 1) * 10
        ends.append(end)
        if is_record:
            w.track(end)
            tracked.append(end)
        else:
            w.skip(end)
    to_settle = list(tracked)
    order.shuffle(to_settle)
    settled = set(to_settle[:settle_count])
    for end in to_settle[:settle_count]:
        w.settle(end)
    unsettled = set(tracked) - settled
    expected = 0
    for end in ends:
        if end in unsettled:
            break
        expected = end
    assert w.offset == expected
    assert w.in_flight == len(unsettled)
