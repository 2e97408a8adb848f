"""The dashboard's bookkeeping and text, without ROS."""
from iil_robot.dashboard import GraphState, render
from iil_robot.records import EpisodeEvent, StepRecord

ACTION = (0.0,) * 7


def step(tick, source="policy", onset=False, version=3):
    return StepRecord(tick, float(tick), source, source, ACTION, ACTION, None, source == "human", source == "human",
                      onset, False, None, None, version, "", False)


def test_counts_episodes_interventions_and_lost_ticks():
    state = GraphState()
    for tick, source, onset in [(0, "policy", False), (1, "human", True), (2, "human", False), (5, "policy", False)]:
        state.on_step(step(tick, source, onset))
    assert state.on_episode_event(EpisodeEvent("success", "sim", 6.0))
    assert not state.on_episode_event(EpisodeEvent("start", "sim", 6.1))
    done = state.finished[0]
    assert (done.steps, done.human_steps, done.onsets, done.outcome) == (4, 2, 1, "success")
    assert state.lost_ticks == 2 and state.policy_version == 3


def test_render_says_when_all_episodes_are_done():
    state = GraphState()
    state.on_step(step(0))
    state.on_episode_event(EpisodeEvent("timeout", "sim", 1.0))
    lines = render(state, "title", target_episodes=1, elapsed=65.0)
    assert lines[0].endswith("elapsed 01:05")
    assert lines[1].startswith("all 1 episodes done") and "successes 0/1" in lines[1]
    assert render(state, "title", target_episodes=5, elapsed=1.0)[1].startswith("episode 2/5")


def test_a_raised_help_request_rings_once_and_shows_until_withdrawn():
    state = GraphState()
    assert [state.on_help_request(r) for r in (False, True, True, False, True)] == [False, True, False, False, True]
    assert state.help_requests == 2
    assert "ASKS FOR HELP" in render(state, "t", None, 0.0)[-1]
    state.on_help_request(False)
    assert not any("ASKS FOR HELP" in line for line in render(state, "t", None, 0.0))


def test_the_learner_line_shows_the_warm_start_until_it_ends():
    state = GraphState()
    state.learner = {"updates": "0", "warm_start_done": "120", "warm_start_total": "500"}
    assert any("warm start on the operator's data, 120/500 updates" in line for line in render(state, "t", None, 0.0))
    state.learner = {"updates": "7", "updates_per_s": "3.0", "warm_start_done": "500", "warm_start_total": "500"}
    assert "learner: updates 7, updates_per_s 3.0" in render(state, "t", None, 0.0)
