"""The recordings library: what a run's summary says about the time between episodes."""
from __future__ import annotations

import pytest

from iil_robot.data.recordings import between_episodes
from tests.records_factory import event


@pytest.mark.parametrize("events, expected", [
    ([], []),
    ([event("start", 0.0), event("success", 5.0), event("start", 7.5), event("timeout", 12.0)], [2.5]),
    # an operator's failure after a timeout ends nothing new: the wait counts from the first end
    ([event("start", 0.0), event("timeout", 5.0), event("failure", 5.2), event("start", 9.0)], [4.0]),
    # out of order on arrival: sorted by stamp
    ([event("start", 10.0), event("start", 0.0), event("reset", 8.0)], [2.0]),
])
def test_between_episodes_is_the_time_from_each_end_to_the_next_start(events, expected):
    assert between_episodes(events) == pytest.approx(expected)
