"""The episode manager: states, time limit, success detector and reset drive, as a table of ticks."""
import numpy as np
import pytest

from iil_robot.acting.episode_manager import EpisodeConfig, EpisodeError, EpisodeManager
from iil_robot.data.records import Observation

FIELDS = ("ee.x", "ee.y", "ee.z", "object.x", "object.y", "object.z", "goal.x", "goal.y", "goal.z")
CONFIG = EpisodeConfig(time_limit=1.0, success_fields=("object", "goal"), success_distance=0.05,
                       reset_pose=(0.0, 0.0, 0.5), reset_tolerance=0.01, reset_timeout=2.0)


def obs(ee=(0.0, 0.0, 0.5), obj=(1.0, 0.0, 0.0), goal=(0.0, 0.0, 0.0)) -> Observation:
    return Observation((*ee, *obj, *goal), "toy/v1", 0.0, FIELDS)


def kinds(events) -> list[str]:
    return [e.event for e in events]


def test_the_first_tick_resets_then_starts_and_a_success_ends_the_episode():
    m = EpisodeManager(CONFIG)
    assert kinds(m.update(obs(ee=(0.2, 0.0, 0.5)), 0.0)) == [] and m.state == "resetting"
    velocity = m.reset_velocity(obs(ee=(0.2, 0.0, 0.5)))
    np.testing.assert_allclose(velocity, [-0.1, 0.0, 0.0])  # toward the pose at reset_speed
    assert kinds(m.update(obs(), 0.5)) == ["start"] and m.state == "running"
    assert kinds(m.update(obs(obj=(0.0, 0.03, 0.0)), 0.6)) == ["success"] and m.state == "ended"
    assert m.reset_velocity(obs()) is None  # the policy's lock is held, the reset not yet driving
    assert kinds(m.update(obs(), 0.7)) == [] and m.state == "resetting"  # steps from here belong to no episode


def test_the_time_limit_ends_an_episode_as_a_timeout():
    m = EpisodeManager(CONFIG)
    m.update(obs(), 0.0)
    m.update(obs(), 0.0)
    assert m.state == "running"
    assert kinds(m.update(obs(), 0.99)) == []
    assert kinds(m.update(obs(), 1.0)) == ["timeout"]


@pytest.mark.parametrize("request_, state, message", [
    ("success", "resetting", "no episode is running"),
    ("start", "resetting", "cannot start an episode while resetting: wait until the reset is done"),
    ("start", "running", "cannot start an episode while running: end it first"),
])
def test_a_request_in_the_wrong_state_is_refused_saying_why(request_, state, message):
    m = EpisodeManager(CONFIG)
    m.update(obs(ee=(0.2, 0.0, 0.5)), 0.0)
    if state == "running":
        m.update(obs(), 0.1)
    assert m.state == state
    with pytest.raises(EpisodeError, match=message):
        m.start(0.2) if request_ == "start" else m.end(request_, 0.2)
    assert m.state == state


def test_an_operator_reset_aborts_the_running_episode_as_a_reset_event():
    m = EpisodeManager(CONFIG)
    m.update(obs(), 0.0)
    m.update(obs(), 0.1)
    assert kinds(m.reset(0.2)) == ["reset"] and m.state == "resetting" and m.outcome == "abort"


def test_a_reset_that_cannot_finish_in_time_holds_and_waits_for_the_operator():
    m = EpisodeManager(CONFIG)
    m.update(obs(ee=(0.5, 0.0, 0.5)), 0.0)
    with pytest.raises(EpisodeError, match="did not reach its pose within 2 s"):
        m.update(obs(ee=(0.5, 0.0, 0.5)), 2.5)
    assert m.held and m.reset_velocity(obs()) is None
    assert m.update(obs(), 3.0) == []  # no retry on its own
    assert kinds(m.start(3.1)) == ["start"] and not m.held


def test_without_auto_start_the_operator_starts_each_episode():
    m = EpisodeManager(EpisodeConfig(auto_start=False))
    m.update(obs(), 0.0)  # no reset pose: the reset is done at the next tick
    assert m.update(obs(), 0.1) == [] and m.state == "ready"
    assert kinds(m.start(0.1)) == ["start"]


def test_a_reset_pose_outside_the_workspace_is_refused():
    with pytest.raises(EpisodeError, match="leaves the workspace"):
        EpisodeConfig(reset_pose=(0.0, 0.0, 0.5), reset_ranges=(0.1, 0.0, 0.0), workspace_min=(-0.05, -1, -1),
                      workspace_max=(1, 1, 1))


def test_success_fields_missing_from_the_observation_are_named():
    m = EpisodeManager(EpisodeConfig(success_fields=("block", "goal")))
    m.update(obs(), 0.0)
    m.update(obs(), 0.1)
    assert m.state == "running"
    with pytest.raises(EpisodeError, match="no block.x, block.y, block.z"):
        m.update(obs(), 0.1)
