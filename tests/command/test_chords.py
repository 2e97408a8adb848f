"""Both buttons together on a two-button SpaceMouse Compact: the chords and what the gate sees meanwhile."""
from __future__ import annotations

import pytest

from iil_robot.command.chords import ChordConfig, Chords
from iil_robot.command.gate import Gate, GateConfig, GateConfigError

CONFIG = ChordConfig(tap="failure", long="success", window=0.2, long_press_time=1.0)


def play(timeline: list[tuple[float, tuple[int, int]]], config: ChordConfig = CONFIG):
    """Feed (time, buttons) samples; return what the gate saw and the requests, per sample."""
    chords = Chords(config)
    return [chords.update(buttons, now) for now, buttons in timeline]


def test_a_tap_of_both_buttons_makes_the_tap_request_and_neither_button_acts():
    out = play([(0.0, (1, 0)), (0.05, (1, 1)), (0.3, (1, 1)), (0.4, (0, 1)), (0.45, (0, 0)), (0.5, (0, 0))])
    assert [seen for seen, _ in out] == [(0, 0)] * 6
    assert [req for _, req in out] == [(), (), (), (), ("failure",), ()]


def test_holding_both_makes_the_long_request_once_when_the_time_is_up_and_no_tap_on_release():
    out = play([(0.0, (1, 1)), (0.5, (1, 1)), (1.0, (1, 1)), (1.5, (1, 1)), (2.0, (0, 0))])
    assert [req for _, req in out] == [(), (), ("success",), (), ()]
    assert all(seen == (0, 0) for seen, _ in out)


@pytest.mark.parametrize("timeline, seen", [
    # one button held: held back for the window, then the gate sees it (the takeover button, held)
    ([(0.0, (0, 1)), (0.1, (0, 1)), (0.25, (0, 1)), (0.3, (0, 0))], [(0, 0), (0, 0), (0, 1), (0, 0)]),
    # a click shorter than the window is still delivered, for one update (the gripper toggle)
    ([(0.0, (1, 0)), (0.05, (0, 0)), (0.1, (0, 0))], [(0, 0), (1, 0), (0, 0)]),
    # the second button well after the first: no chord, each acts (gripper click while holding takeover)
    ([(0.0, (0, 1)), (0.3, (0, 1)), (0.5, (1, 1)), (0.55, (0, 1)), (0.6, (0, 1))],
     [(0, 0), (0, 1), (0, 1), (1, 1), (0, 1)]),
])
def test_single_buttons_still_do_their_own_actions(timeline, seen):
    out = play(timeline)
    assert [s for s, _ in out] == seen and all(req == () for _, req in out)


def test_without_chord_requests_the_buttons_pass_straight_through():
    out = play([(0.0, (1, 1)), (2.0, (1, 1)), (2.1, (0, 0))], ChordConfig())
    assert out == [((1, 1), ()), ((1, 1), ()), ((0, 0), ())]


def test_the_gate_turns_a_long_chord_into_an_episode_request_without_toggling_the_gripper():
    gate = Gate(GateConfig(chords=ChordConfig(long="success")))
    outputs = [gate.update([0.0] * 6, buttons, now) for now, buttons in
               [(0.0, (1, 0)), (0.1, (1, 1)), (1.2, (1, 1)), (1.3, (0, 0))]]
    assert [o.events for o in outputs] == [(), (), ("success",), ()]
    assert not any(o.gripper_changed or o.engaged for o in outputs)


@pytest.mark.parametrize("chords, match", [
    (ChordConfig(tap="succes"), "chords.tap='succes' must be one of"),
    (ChordConfig(tap="success", long="success"), "both request 'success'"),
    (ChordConfig(long="reset", buttons=(1, 1)), "two different buttons"),
    (ChordConfig(long="reset", window=0.5, long_press_time=0.4), "long_press_time=0.4 must be in"),
])
def test_bad_chord_parameters_are_refused_by_name(chords, match):
    with pytest.raises(GateConfigError, match=match):
        GateConfig(chords=chords)
