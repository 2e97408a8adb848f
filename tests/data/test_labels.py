"""Every label on hand-built episodes: rewards, flags, actions, classes, HG-DAgger samples."""
from dataclasses import replace

import numpy as np
import pytest

from iil_robot.data.episodes import Episode, split_episodes
from iil_robot.data.labels import (
    NO_CLASS,
    LabelConfig,
    LabelError,
    Labelled,
    LiveLabeller,
    label_episode,
    label_episodes,
    step_classes,
)
from iil_robot.data.transitions import StepClass, Transitions
from tests.records_factory import event, step, steps

R, P, I, D = StepClass.ROBOT, StepClass.PRE_INTERVENTION, StepClass.INTERVENTION, StepClass.DEMO


def episode(records, outcome="success", index=0):
    return Episode(index, tuple(records), records[0].stamp, records[-1].stamp + 0.05, outcome, "sim")


def obs_ticks(array):
    return array[:, 0].astype(int).tolist()


def test_rlif_reward_is_minus_one_on_the_transition_into_the_onset_only():
    out = label_episode(episode(steps("pppHhhpp")))
    t = out.rlif
    assert obs_ticks(t.observations) == [0, 1, 2, 3, 4, 5, 6, 7]
    assert obs_ticks(t.next_observations) == [1, 2, 3, 4, 5, 6, 7, 7]
    assert t.rewards.tolist() == [0, 0, -1, 0, 0, 0, 0, 0]
    assert t.interventions.tolist() == [False, False, False, True, True, True, False, False]
    assert out.stats.onsets == 1 and out.stats.penalised_onsets == 1


def test_terminal_outcome_makes_the_last_step_terminal_with_its_own_observation_as_placeholder():
    for outcome in ("success", "failure"):
        t = label_episode(episode(steps("ppp"), outcome)).rlif
        assert t.terminals.tolist() == [False, False, True]
        assert t.truncations.tolist() == [False, False, False]
        assert obs_ticks(t.next_observations) == [1, 2, 2]


@pytest.mark.parametrize("outcome", ["timeout", "reset", "unfinished"])
def test_non_terminal_outcome_drops_the_last_step_and_truncates_the_one_before(outcome):
    t = label_episode(episode(steps("ppp"), outcome)).rlif
    assert obs_ticks(t.observations) == [0, 1]
    assert t.terminals.tolist() == [False, False]
    assert t.truncations.tolist() == [False, True]


def test_actions_are_the_executed_action_in_the_learner_space():
    records = steps("pHh")
    t = label_episode(episode(records)).rlif
    np.testing.assert_allclose(t.actions, [[r.executed_action[i] for i in (0, 1, 2, 6)] for r in records])
    assert t.actions.dtype == np.float32 and t.observations.dtype == np.float32


@pytest.mark.parametrize("space, indices", [("translation", (0, 1, 2, 6)), ("translation_yaw", (0, 1, 2, 5, 6)),
                                            ("6dof", (0, 1, 2, 3, 4, 5, 6))])
def test_actions_are_picked_in_each_action_space(space, indices):
    records = [replace(r, executed_action=tuple(float(10 * r.tick + i) for i in range(7))) for r in steps("pHh")]
    t = label_episode(episode(records), LabelConfig(action_space=space)).rlif
    assert t.actions.shape == (3, len(indices))
    np.testing.assert_allclose(t.actions, [[r.executed_action[i] for i in indices] for r in records])


def test_an_unknown_action_space_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="6dof"):
        LabelConfig(action_space="7dof")


def test_steps_without_observation_or_holding_form_no_transition_and_cut_the_chain():
    out = label_episode(episode(steps("ppnppxpp")))
    t = out.rlif
    assert obs_ticks(t.observations) == [0, 3, 4, 6, 7]
    assert obs_ticks(t.next_observations) == [1, 4, 5, 7, 7]
    assert t.truncations.tolist() == [True, False, True, False, False]  # 1 -> 2 lost; 4 -> 5 hold
    assert (out.stats.no_observation, out.stats.hold, out.stats.cut) == (1, 1, 1)  # step 1: next has no obs
    held = label_episode(episode(steps("ppnppxpp")), LabelConfig(include_hold=True)).rlif
    assert obs_ticks(held.observations) == [0, 3, 4, 5, 6, 7]
    assert held.actions[3].tolist() == [0, 0, 0, 0]


def test_a_tick_gap_cuts_the_chain():
    records = steps("pppp")
    records[2] = step(7)
    records[3] = step(8)
    t = label_episode(episode(records)).rlif
    assert obs_ticks(t.observations) == [0, 7, 8]
    assert t.truncations.tolist() == [True, False, False]


def test_onset_after_a_step_that_forms_no_transition_penalises_nothing():
    out = label_episode(episode(steps("pnHh")))
    assert out.rlif.rewards.tolist() == [0, 0]  # step 0 is cut (1 has no obs); 2, 3 are human
    assert out.stats.onsets == 1 and out.stats.penalised_onsets == 0
    first = label_episode(episode(steps("Hhp")))
    assert first.rlif.rewards.tolist() == [0, 0, 0]


def test_classes_window_intervention_and_hold():
    records = steps("pppppHhhxp")
    assert step_classes(records, window=3).tolist() == [R, R, P, P, P, I, I, I, NO_CLASS, R]
    assert step_classes(records, window=0).tolist() == [R, R, R, R, R, I, I, I, NO_CLASS, R]
    t = label_episode(episode(records), LabelConfig(pre_intervention_window=3)).rlif
    assert t.classes.tolist() == [R, R, P, P, P, I, I, I, R]  # hold 8 forms none; 7 -> 8 still does
    assert t.classes.dtype == np.int8


def test_episode_driven_by_the_operator_end_to_end_is_a_demo():
    records = steps("Hhhxhh")
    assert step_classes(records).tolist() == [D, D, D, NO_CLASS, D, D]
    assert label_episode(episode(records)).dagger.classes.tolist() == [D] * 5


def test_hg_dagger_samples_are_operator_steps_with_the_operators_command():
    records = steps("ppHhhpp")
    records[3] = step(3, "human", human=(0.9, 0, 0, 0, 0, 0, 0.5))
    d = label_episode(episode(records, "timeout")).dagger
    assert obs_ticks(d.observations) == [2, 3, 4]
    assert d.actions[:, 0].tolist() == pytest.approx([-0.2, 0.9, -0.4])  # human_action, not executed (-0.0x)
    assert d.actions[1, 3] == 0.5
    assert d.rewards.tolist() == [0, 0, 0] and d.interventions.all()
    assert d.classes.tolist() == [I, I, I]
    assert obs_ticks(d.next_observations) == [3, 4, 5]


def test_hg_dagger_last_operator_step_of_a_truncated_episode_keeps_its_own_observation_truncated():
    d = label_episode(episode(steps("pHh"), "reset")).dagger
    assert obs_ticks(d.next_observations) == [2, 2]
    assert d.truncations.tolist() == [True, True] and not d.terminals.any()  # 2 forms no transition


def test_label_episodes_concatenates_and_refuses_mixed_observation_sizes():
    a, b = episode(steps("pppH")), episode(steps("ppp", 10), index=1)
    out = label_episodes([a, b])
    assert len(out.rlif) == 4 + 3 and out.stats.episodes == 2 and out.stats.steps == 7
    odd = step(20)
    odd = odd.__class__(**{**odd.__dict__, "observation": (1.0, 2.0, 3.0)})
    with pytest.raises(LabelError, match="different sizes"):
        label_episodes([a, episode([odd], index=2)])


def test_empty_inputs_give_empty_transitions_in_the_learner_action_space():
    out = label_episodes([])
    assert len(out.rlif) == 0 and out.rlif.actions.shape == (0, 4)
    assert len(label_episode(episode(steps("nn"))).rlif) == 0


# -- live labelling ---------------------------------------------------------------------------


def live_session():
    """Explicit episode with interventions (success), a demo (failure), an implicit one (reset), then steps no
    episode holds (after starts, an implicit episode open at the end is the reset after the last one: dropped)."""
    records = (steps("p" * 30 + "Hhhhh" + "p" * 25) + steps("Hhhhhhhhhhhhhhhhhhhh", 60) + steps("pppppHhpppppppp", 80)
               + steps("pppppppppp", 95))
    events = [event("start", 0.0), event("success", 2.99), event("start", 3.0), event("failure", 3.99, "operator"),
              event("reset", 4.74, "operator")]
    return records, events


def play(live, records, events, chunk=1):
    """Feed events when a step at or after their stamp is due (on time), steps in chunks."""
    out, pending = [], sorted(events, key=lambda e: e.stamp)
    for i in range(0, len(records), chunk):
        batch = records[i:i + chunk]
        while pending and pending[0].stamp <= batch[-1].stamp:
            out += live.add_event(pending.pop(0))
        out += live.add_steps(batch)
    for e in pending:
        out += live.add_event(e)
    return out


def joined(parts: list[Labelled], name: str) -> Transitions:
    return Transitions.concatenate([getattr(p, name) for p in parts if len(getattr(p, name))] or [Transitions.empty(2, 4)])


@pytest.mark.parametrize("chunk", [1, 7])
def test_live_labelling_gives_exactly_the_offline_rows(chunk):
    records, events = live_session()
    live = LiveLabeller(LabelConfig(pre_intervention_window=5), event_delay=0.2)
    out = play(live, records, events, chunk) + live.flush()
    expected = label_episodes(split_episodes(records, events), LabelConfig(pre_intervention_window=5))
    for name in ("rlif", "dagger"):
        got, want = joined(out, name), getattr(expected, name)
        for field in Transitions.__dataclass_fields__:
            np.testing.assert_array_equal(getattr(got, field), getattr(want, field), err_msg=f"{name}.{field}")
    assert live.early_rows > 0 and live.late_events == 0 and live.episodes == 3


def test_open_episode_rows_wait_until_settled_after_a_start_and_a_policy_step():
    config = LabelConfig(pre_intervention_window=5)
    implicit = LiveLabeller(config, event_delay=0.2)
    assert play(implicit, steps("p" * 60), []) == []
    demo = LiveLabeller(config, event_delay=0.2)
    assert play(demo, steps("H" + "h" * 59), [event("start", 0.0)]) == []
    live = LiveLabeller(config, event_delay=0.2)
    out = play(live, steps("p" * 60), [event("start", 0.0)])
    rows = joined(out, "rlif")
    # Steps up to stamp 2.95 - 0.2 are settled (56), minus the 5-step lookahead: at most 51 rows, and
    # emitted in chunks of at least 5 steps.
    assert 45 <= len(rows) <= 51 and obs_ticks(rows.observations) == list(range(len(rows)))
    assert not rows.truncations.any() and not rows.terminals.any()
    waiting = LiveLabeller(config, event_delay=float("inf"))
    assert play(waiting, steps("p" * 60), [event("start", 0.0)]) == []


def test_an_event_later_than_event_delay_that_cuts_emitted_rows_is_counted():
    live = LiveLabeller(LabelConfig(pre_intervention_window=5), event_delay=0.2)
    out = play(live, steps("p" * 60), [event("start", 0.0)])
    assert len(joined(out, "rlif")) > 20
    closed = live.add_event(event("success", 1.0))  # stamp of step 20, arriving at step 59
    assert live.late_events == 1 and len(closed) == 1


YAW_90 = (0.0, 0.0, 2 ** -0.5, 2 ** -0.5)
"""The tool turned 90 degrees about z: the command frame's +y is the tool's +x."""
TOOL = LabelConfig(action_space="6dof", action_frame="tool", orientation=(2, 3, 4, 5))


def oriented(record, quaternion):
    """``record`` whose observation also holds the end effector's orientation (positions 2..5)."""
    return replace(record, observation=(*record.observation, *quaternion))


def test_tool_frame_labels_rotate_each_executed_and_proposed_action_by_its_own_steps_orientation():
    records = [oriented(s, q) for s, q in zip(steps("pph"), [(0, 0, 0, 1), YAW_90, YAW_90])]
    records[1] = replace(records[1], executed_action=(0.0, 0.1, 0.0, 0.2, 0.0, 0.0, 0.4),
                         policy_action=(0.0, 0.1, 0.0, 0.0, 0.0, 0.0, 0.4))
    out = label_episode(episode(records), TOOL)
    np.testing.assert_allclose(out.rlif.actions[0], records[0].executed_action, atol=1e-7)  # identity: unchanged
    np.testing.assert_allclose(out.rlif.actions[1], [0.1, 0.0, 0.0, 0.0, -0.2, 0.0, 0.4], atol=1e-7)
    np.testing.assert_allclose(out.rlif.novice_actions[1], [0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.4], atol=1e-7)
    assert np.isnan(out.rlif.novice_actions[2]).all()  # the operator's step had no proposal: still none
    np.testing.assert_allclose(out.dagger.actions[0], [0.0, 0.2, 0.0, 0.0, 0.0, 0.0, 1.0], atol=1e-7)  # its command (-0.2, 0, 0)
    base = label_episode(episode(records), replace(TOOL, action_frame="base"))
    np.testing.assert_allclose(base.rlif.actions[1], records[1].executed_action, atol=1e-7)


def test_translation_in_the_tool_frame_keeps_the_rotated_linear_velocity():
    records = [oriented(s, YAW_90) for s in steps("pp")]
    out = label_episode(episode(records), replace(TOOL, action_space="translation"))
    vx = records[1].executed_action[0]
    np.testing.assert_allclose(out.rlif.actions[1], [0.1, -vx, 0.2, 0.0], atol=1e-7)  # (vx, 0.1, 0.2) in the command frame


def test_a_step_whose_orientation_is_no_rotation_forms_no_transition_and_is_counted():
    records = [oriented(s, q) for s, q in zip(steps("pphh"), [YAW_90, (0, 0, 0, 0), YAW_90, (0, 0, 0, 0)])]
    out = label_episode(episode(records), TOOL)
    assert obs_ticks(out.rlif.observations) == [0, 2] and obs_ticks(out.dagger.observations) == [2]
    assert out.stats.no_orientation == 2


def test_tool_frame_labels_without_the_orientations_position_are_refused():
    with pytest.raises(LabelError, match="needs the orientation's positions"):
        label_episode(episode(steps("pp")), replace(TOOL, orientation=()))
    with pytest.raises(ValueError, match="must be the 4 positions"):
        LabelConfig(action_frame="tool", orientation=(1, 2))
