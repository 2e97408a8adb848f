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


def summary(index: int, outcome: str, steps: int, human: int, onsets: int):
    from iil_robot.data.episodes import EpisodeSummary

    return EpisodeSummary(index, 0.0, 1.0, outcome, "x", steps, onsets, human, (1,), 0)


def test_thirds_compare_the_operators_share_and_the_policys_own_success_over_the_run():
    from iil_robot.data.recordings import thirds

    episodes = [summary(0, "success", 100, 80, 2), summary(1, "timeout", 100, 60, 1), summary(2, "success", 100, 20, 1),
                summary(3, "success", 100, 0, 0), summary(4, "success", 100, 0, 0), summary(5, "unfinished", 10, 0, 0)]
    parts = thirds(episodes)
    assert [p["episodes"] for p in parts] == [[0, 1], [2, 2], [3, 4]]
    assert parts[0]["operator_share"] == pytest.approx(0.7) and parts[-1]["operator_share"] == 0.0
    assert parts[0]["policy_success_rate"] == 0.0 and parts[-1]["policy_success_rate"] == 1.0
    assert parts[0]["success_rate"] == 0.5
    assert thirds(episodes[:2]) == []


def test_the_first_learned_action_is_the_first_policy_tick_with_weights_from_the_learner():
    from iil_robot.data.recordings import first_learned_action
    from tests.records_factory import step

    steps = [step(0, "hold"), step(1, "policy", version=0), step(2, "human", version=3), step(3, "policy", version=2)]
    assert first_learned_action(steps) == pytest.approx(0.15)
    assert first_learned_action(steps[:3]) is None and first_learned_action([]) is None
