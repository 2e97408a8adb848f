"""Arbitration and safety rules of the mux, without ROS."""
import math

import pytest

from iil_robot.command.mux import (
    STALE_AFTER,
    LockConfig,
    Mux,
    MuxConfig,
    MuxConfigError,
    Output,
    SourceConfig,
    diagnostic_fault,
)
from iil_robot.command.safety import ZERO, Limits, WorkspaceBox, brake_speed
from iil_robot.data.records import Proposal

HUMAN = SourceConfig("spacemouse", "human", "human/cmd", timeout=0.1, priority=100,
                     engaged_topic="human/engaged", gripper_topic="human/gripper")
POLICY = SourceConfig("policy", "policy", "policy/proposal", timeout=0.2, priority=10)
ESTOP = LockConfig("estop", "estop", timeout=0.5, priority=255)
FREE_LIMITS = Limits(max_linear_speed=10.0, max_angular_speed=10.0, max_linear_accel=0.0, max_angular_accel=0.0)

POLICY_ACTION = (0.05, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
HUMAN_TWIST = (0.0, 0.1, 0.0, 0.0, 0.0, 0.0)
UPRIGHT = (0.0, 0.0, 0.0, 1.0)  # identity orientation (x, y, z, w)


def make_mux(locks=(), limits=FREE_LIMITS, rate=20.0, sources=(HUMAN, POLICY)):
    return Mux(MuxConfig(sources=tuple(sources), locks=tuple(locks), limits=limits, rate=rate))


def proposal(action=POLICY_ACTION, version=1, t=0.0):
    return Proposal(tuple(action), (1.0, 2.0), version, obs_stamp=t, stamp=t)


def propose(mux, now, action=POLICY_ACTION, version=1):
    assert mux.proposal("policy", proposal(action, version, now), now) is None
    return mux.update(now, stamp=now, proposal_arrived=True)


def engage(mux, now, twist=HUMAN_TWIST):
    mux.human_engaged("spacemouse", True, now, "deflection")
    assert mux.human_command("spacemouse", twist, now) is None
    return mux.update(now, stamp=now)


# -- who is in control ------------------------------------------------------------------------

def test_policy_drives_when_no_one_intervenes():
    out = propose(make_mux(), 0.0)
    assert out.command.source == "policy" and out.command.twist == POLICY_ACTION[:6]
    assert out.step.source == "policy" and out.step.policy_action == POLICY_ACTION
    assert out.step.observation == (1.0, 2.0) and out.step.policy_version == 1


def test_engaged_human_wins_over_the_policy_at_once():
    mux = make_mux()
    propose(mux, 0.0)
    out = engage(mux, 0.01)
    assert out.command.source == "human" and out.command.twist == HUMAN_TWIST
    assert out.intervention.intervening and out.intervention.source_name == "spacemouse"
    assert out.step is None  # between ticks: forwarded, no step record


def test_twist_arriving_before_the_engagement_flag_is_forwarded_when_the_flag_comes():
    mux = make_mux()
    propose(mux, 0.0)
    mux.human_command("spacemouse", HUMAN_TWIST, 0.01)
    assert mux.update(0.01, 0.01).command is None  # not engaged yet
    mux.human_engaged("spacemouse", True, 0.011)
    assert mux.update(0.011, 0.011).command.twist == HUMAN_TWIST


def test_disengaged_human_input_is_ignored():
    mux = make_mux()
    propose(mux, 0.0)
    mux.human_command("spacemouse", HUMAN_TWIST, 0.01)
    assert propose(mux, 0.05).command.source == "policy"


def test_each_new_human_message_is_forwarded_while_engaged():
    mux = make_mux()
    engage(mux, 0.0)
    for i in range(1, 5):
        mux.human_command("spacemouse", (0.0, 0.01 * i, 0, 0, 0, 0), 0.001 * i)
        assert mux.update(0.001 * i, 0.001 * i).command.twist[1] == pytest.approx(0.01 * i)


def test_handing_back_is_explicit_and_reported():
    mux = make_mux()
    propose(mux, 0.0)
    engage(mux, 0.01)
    propose(mux, 0.55)
    mux.human_engaged("spacemouse", False, 0.6, "released")
    out = mux.update(0.6, 0.6)
    assert out.command.source == "policy"
    assert not out.intervention.intervening and out.intervention.duration == pytest.approx(0.59)


# -- ticks and step records -------------------------------------------------------------------

def test_one_step_record_per_proposal_with_onset_and_offset_flags():
    mux = make_mux()
    steps = [propose(mux, 0.00).step]
    engage(mux, 0.02)
    steps.append(propose(mux, 0.05).step)
    mux.human_command("spacemouse", HUMAN_TWIST, 0.09)
    steps.append(propose(mux, 0.10).step)
    mux.human_engaged("spacemouse", False, 0.12)
    mux.update(0.12, 0.12)
    steps.append(propose(mux, 0.15).step)
    assert [s.tick for s in steps] == [0, 1, 2, 3]
    assert [s.source for s in steps] == ["policy", "human", "human", "policy"]
    assert [s.onset for s in steps] == [False, True, False, False]
    assert [s.offset for s in steps] == [False, False, False, True]
    assert steps[1].policy_action == POLICY_ACTION and steps[1].human_action == HUMAN_TWIST + (0.0,)
    assert steps[1].executed_action == HUMAN_TWIST + (0.0,)


def test_mux_ticks_by_itself_at_its_rate_while_the_policy_is_absent():
    mux = make_mux(rate=20.0)
    ticks = [t for t in (i * 0.01 for i in range(31)) if mux.update(t, t).step is not None]
    assert ticks == pytest.approx([0.0, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30])


def test_no_self_ticks_while_the_policy_is_fresh():
    mux = make_mux(rate=20.0)
    propose(mux, 0.0)
    assert all(mux.update(t, t).step is None for t in (0.05, 0.1, 0.15))


def test_human_drives_and_records_steps_when_the_policy_is_dead():
    mux = make_mux(rate=20.0)
    engage(mux, 0.0)
    out = mux.update(0.05, 0.05)
    assert out.step.source == "human" and out.step.policy_action is None and out.step.observation is None


def test_a_slow_policy_still_gets_a_command_to_the_arm_every_control_period():
    """MoveIt Servo halts the arm when no command came for incoming_command_timeout (0.1 s): a policy proposing
    every 0.15 s (fresh for 0.2 s) must not leave the arm without one; refreshes carry no step record."""
    mux = make_mux(rate=20.0)
    sent, steps = [], 0
    for k in range(1, 61):
        t = k * 0.005
        out = propose(mux, t) if k % 30 == 0 else mux.update(t, t)
        if out.command is not None:
            sent.append(t)
            assert out.command.source == "policy" or t < 0.15
        steps += out.step is not None
    gaps = [b - a for a, b in zip(sent, sent[1:])]
    assert max(gaps) <= 0.05 + 1e-9
    assert steps == 2 + 3  # the two proposals, and the self-ticks before the first one


def test_a_held_arm_gets_an_explicit_zero_every_control_period():
    mux = make_mux(locks=(ESTOP,), rate=20.0)
    mux.lock("estop", True, 0.0)
    propose(mux, 0.0)
    commands = [mux.update(t, t).command for t in (0.03, 0.051, 0.08, 0.102)]
    assert [c is not None for c in commands] == [False, True, False, True]
    assert all(c.twist == ZERO and c.source == "hold" for c in commands if c is not None)


def test_a_proposal_just_after_a_refresh_is_ramped_over_the_period_not_the_moment_since_the_refresh():
    limits = Limits(max_linear_speed=1.0, max_angular_speed=1.0, max_linear_accel=2.0, max_angular_accel=8.0)
    mux = make_mux(rate=20.0, limits=limits)
    propose(mux, 0.0, action=(0.0,) * 7)
    assert mux.update(0.05, 0.05).command is not None  # the refresh
    out = propose(mux, 0.051, action=(0.1, 0, 0, 0, 0, 0, 0))  # 2 m/s^2 over one period (0.05 s): 0.1 m/s
    assert out.command.twist[0] == pytest.approx(0.1) and not out.command.limited


def test_a_refresh_checks_the_workspace_box_with_the_newest_pose():
    box = WorkspaceBox(enabled=True, min_xyz=(0.0, 0.0, 0.0), max_xyz=(1.0, 1.0, 1.0), pose_timeout=1.0)
    mux = make_mux(rate=20.0, limits=Limits(max_linear_speed=1.0, max_linear_accel=0.0, max_angular_accel=0.0,
                                            workspace=box))
    frame = mux.config.frame_id
    mux.ee_pose((0.5, 0.5, 0.5), (0.0, 0.0, 0.0, 1.0), frame, 0.0)
    assert propose(mux, 0.0).command.twist[0] == pytest.approx(0.05)
    mux.ee_pose((1.0, 0.5, 0.5), (0.0, 0.0, 0.0, 1.0), frame, 0.04)  # reached the wall in x
    out = mux.update(0.05, 0.05)
    assert out.command.twist == ZERO and out.step is None


# -- explicit zero on stale or dead sources ---------------------------------------------------

def test_stale_policy_gives_an_explicit_zero_once_its_timeout_passes():
    mux = make_mux()
    propose(mux, 0.0)
    assert mux.update(0.01, 0.01).command is None  # still fresh, nothing new, no refresh due
    assert mux.update(0.19, 0.19).command.source == "policy"  # still fresh: a refresh of the policy's command
    out = mux.update(0.21, 0.21)
    assert out.command.twist == ZERO and out.command.source == "hold"
    assert out.command.hold_reason == "stale:policy"


def test_human_silent_mid_intervention_holds_zero_and_never_falls_back_to_the_policy():
    mux = make_mux()
    propose(mux, 0.0)
    engage(mux, 0.1)
    assert propose(mux, 0.15).command.source == "human"
    out = mux.update(0.21, 0.21)  # human twist is 0.11 s old > 0.1 s timeout; the policy is fresh
    assert out.command.twist == ZERO and out.command.hold_reason == "stale:spacemouse"
    assert out.intervention is None  # the operator still claims control
    step = propose(mux, 0.25).step
    assert step.source == "hold" and step.intervention


def test_human_returning_after_going_stale_drives_again():
    mux = make_mux()
    engage(mux, 0.0)
    mux.update(0.2, 0.2)
    mux.human_command("spacemouse", HUMAN_TWIST, 0.25)
    assert mux.update(0.25, 0.25).command.source == "human"


# -- invalid input ----------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [(math.nan, 0, 0, 0, 0, 0), (0, 0, math.inf, 0, 0, 0), (0.0,) * 5])
def test_invalid_human_twist_is_rejected_and_holds_the_arm_at_once(bad):
    mux = make_mux()
    engage(mux, 0.0)
    error = mux.human_command("spacemouse", bad, 0.01)
    assert error and "6 finite values" in error
    out = mux.update(0.01, 0.01)
    assert out.command.twist == ZERO and out.command.hold_reason == "invalid:spacemouse"


def test_invalid_proposal_is_rejected_and_holds_the_arm_at_once():
    mux = make_mux()
    propose(mux, 0.0)
    bad = proposal(action=(math.nan,) + POLICY_ACTION[1:])
    error = mux.proposal("policy", bad, 0.01)
    assert "proposal action vx must be finite" in error
    out = mux.update(0.01, 0.01)
    assert out.command.twist == ZERO and out.command.hold_reason == "invalid:policy"
    assert propose(mux, 0.05).command.source == "policy"  # a good proposal recovers


def test_undecodable_proposal_marks_the_policy_invalid():
    mux = make_mux()
    propose(mux, 0.0)
    mux.reject("policy", "not valid JSON")
    assert mux.update(0.01, 0.01).command.hold_reason == "invalid:policy"


def test_bad_gripper_value_is_refused_and_the_old_one_kept():
    mux = make_mux()
    mux.human_gripper("spacemouse", 1.0, 0.0)
    assert "must be in [0, 1]" in mux.human_gripper("spacemouse", math.nan, 0.1)
    assert engage(mux, 0.2).command.gripper == 1.0


# -- locks ------------------------------------------------------------------------------------

def test_heartbeat_lock_is_locked_until_its_first_message():
    mux = make_mux(locks=[ESTOP])
    out = propose(mux, 0.0)
    assert out.command.twist == ZERO and out.command.hold_reason.startswith("locked:estop (no heartbeat yet")
    mux.lock("estop", False, 0.01)
    assert propose(mux, 0.02).command.source == "policy"


def test_lock_engaged_blocks_the_human_too_and_releases_when_cleared():
    mux = make_mux(locks=[ESTOP])
    mux.lock("estop", False, 0.0)
    engage(mux, 0.0)
    mux.lock("estop", True, 0.01)
    out = mux.update(0.01, 0.01)
    assert out.command.twist == ZERO and out.command.hold_reason == "locked:estop (engaged)"
    mux.lock("estop", False, 0.02)
    mux.human_command("spacemouse", HUMAN_TWIST, 0.02)
    assert mux.update(0.02, 0.02).command.source == "human"


def test_dead_lock_publisher_locks_again_after_its_timeout():
    mux = make_mux(locks=[ESTOP])
    mux.lock("estop", False, 0.0)
    propose(mux, 0.0)
    assert propose(mux, 0.5).command.source == "policy"
    out = propose(mux, 0.51)
    assert out.command.twist == ZERO and "heartbeat lost" in out.command.hold_reason


def test_lock_without_heartbeat_is_free_until_it_says_locked():
    mux = make_mux(locks=[LockConfig("pause_pedal", "pedal", timeout=0.0, priority=50)])
    assert propose(mux, 0.0).command.source == "policy"
    mux.lock("pause_pedal", True, 0.01)
    assert propose(mux, 0.02).command.hold_reason == "locked:pause_pedal (engaged)"


def test_lock_blocks_only_sources_of_lower_priority():
    mux = make_mux(locks=[LockConfig("policy_lock", "policy_lock", timeout=0.0, priority=50)])
    mux.lock("policy_lock", True, 0.0)
    assert propose(mux, 0.0).command.twist == ZERO
    assert engage(mux, 0.01).command.source == "human"  # priority 100 > 50


ARM_FAULT = LockConfig("arm_fault", "/diagnostics", 0.0, 255, type="diagnostics", status="arm: mode", latching=True)


def test_a_latched_arm_fault_holds_after_it_clears_until_an_operator_recovers():
    mux = make_mux(locks=(ARM_FAULT,))
    mux.lock("arm_fault", True, 0.0)  # not ready at start-up: holds, does not latch
    assert propose(mux, 0.0).step.source == "hold"
    mux.lock("arm_fault", False, 0.001)
    assert propose(mux, 0.002).step.source == "policy"
    mux.lock("arm_fault", True, 0.01)  # a reflex / protective stop
    out = propose(mux, 0.05)
    assert out.command.twist == ZERO and out.step.source == "hold"
    assert out.step.hold_reason == "locked:arm_fault (engaged)" and out.step.policy_action == POLICY_ACTION
    assert mux.recover(0.06) == (False, "nothing recovered; still faulted: arm_fault (clear the fault on the arm first)")
    mux.lock("arm_fault", False, 0.07)  # the driver reports the arm fine again: still held
    out = propose(mux, 0.1)
    assert out.step.source == "hold" and out.step.hold_reason == "locked:arm_fault (fault cleared, waiting for recovery)"
    engage(mux, 0.11)  # the operator cannot drive through it either
    assert mux.status(0.12).selection.kind == "hold"
    mux.human_engaged("spacemouse", False, 0.13)
    assert mux.recover(0.14) == (True, "recovered arm_fault")
    assert propose(mux, 0.15).step.source == "policy"
    assert mux.recover(0.16) == (True, "no latched fault")


def test_a_non_latching_lock_frees_the_arm_as_soon_as_it_clears():
    mux = make_mux(locks=(LockConfig("estop", "estop", 0.0, 255),))
    mux.lock("estop", True, 0.0)
    assert propose(mux, 0.0).step.source == "hold"
    mux.lock("estop", False, 0.01)
    assert propose(mux, 0.05).step.source == "policy"


@pytest.mark.parametrize("statuses, fault", [
    ([("arm: mode", 0)], False),
    ([("arm: mode", 1)], False),  # WARN: not a fault
    ([("arm: mode", 2)], True),  # ERROR
    ([("arm: mode", 3)], True),  # STALE
    ([("camera", 2)], None),  # about something else: no news for this lock
    ([], None),
    ([("camera", 2), ("arm: mode", 0)], False),
])
def test_diagnostic_fault_reads_only_the_named_status(statuses, fault):
    assert diagnostic_fault(statuses, "arm: mode") is fault


def test_pause_holds_everything_until_resumed():
    mux = make_mux()
    mux.set_paused(True)
    assert propose(mux, 0.0).command.hold_reason == "paused"
    mux.set_paused(False)
    assert propose(mux, 0.05).command.source == "policy"


# -- limits -----------------------------------------------------------------------------------

def test_velocity_limit_applies_to_every_source_and_is_flagged():
    mux = make_mux(limits=Limits(max_linear_speed=0.02, max_linear_accel=0.0, max_angular_accel=0.0))
    out = propose(mux, 0.0)
    assert out.command.twist[0] == pytest.approx(0.02) and out.command.limited and out.step.limited
    assert out.step.executed_action[0] == pytest.approx(0.02)
    assert out.step.policy_action[0] == pytest.approx(0.05)


def test_acceleration_limit_ramps_up_over_ticks():
    limits = Limits(max_linear_speed=1.0, max_linear_accel=0.5, max_angular_accel=0.0)
    mux = make_mux(limits=limits, rate=20.0)
    speeds = [propose(mux, 0.05 * i).command.twist[0] for i in range(4)]
    # the first tick has no previous command: dt is capped at one control period (50 ms)
    assert speeds == pytest.approx([0.025, 0.05, 0.05, 0.05])


def test_workspace_box_stops_outward_motion_and_holds_without_a_pose():
    box = WorkspaceBox(enabled=True, min_xyz=(-1, -1, -1), max_xyz=(0.5, 1, 1), pose_timeout=0.1)
    mux = make_mux(limits=Limits(max_linear_accel=0.0, max_angular_accel=0.0, workspace=box))
    out = propose(mux, 0.0)
    assert out.command.twist == ZERO and out.command.hold_reason.startswith("workspace")
    mux.ee_pose((0.5, 0.0, 0.0), UPRIGHT, "base_link", 0.01)
    out = propose(mux, 0.02)
    assert out.command.twist[0] == 0.0 and out.command.limited and out.command.source == "policy"


def test_workspace_refuses_a_pose_in_another_frame_by_name():
    box = WorkspaceBox(enabled=True)
    mux = make_mux(limits=Limits(workspace=box))
    error = mux.ee_pose((0.0, 0.0, 0.0), UPRIGHT, "world", 0.0)
    assert "'world'" in error and "'base_link'" in error
    out = propose(mux, 0.01)
    assert out.command.twist == ZERO and "'world'" in out.command.hold_reason
    assert mux.ee_pose((0.0, 0.0, 0.0), UPRIGHT, "base_link", 0.02) is None
    assert propose(mux, 0.03).command.twist != ZERO


@pytest.mark.parametrize("quaternion", [(0.0, 0.0, 0.0, 0.0), (math.nan, 0.0, 0.0, 1.0), (0.0, 0.0, 1.0)])
def test_workspace_refuses_a_malformed_orientation_and_holds(quaternion):
    mux = make_mux(limits=Limits(workspace=WorkspaceBox(enabled=True)))
    mux.ee_pose((0.0, 0.0, 0.0), UPRIGHT, "base_link", 0.0)
    assert "orientation" in mux.ee_pose((0.0, 0.0, 0.0), quaternion, "base_link", 0.005)
    assert propose(mux, 0.01).command.twist == ZERO


def test_a_stale_pose_holds_the_arm():
    box = WorkspaceBox(enabled=True, pose_timeout=0.1)
    mux = make_mux(limits=Limits(workspace=box))
    mux.ee_pose((0.0, 0.0, 0.0), UPRIGHT, "base_link", 0.0)
    assert propose(mux, 0.05).command.twist != ZERO
    out = propose(mux, 0.15)
    assert out.command.twist == ZERO and "no fresh end-effector pose" in out.command.hold_reason


def test_braking_for_a_wall_is_not_held_back_by_the_acceleration_limit():
    box = WorkspaceBox(enabled=True, min_xyz=(-1, -1, -1), max_xyz=(0.5, 1, 1), linear_decel=1.0, latency=0.0)
    mux = make_mux(limits=Limits(max_linear_speed=0.25, max_linear_accel=0.5, workspace=box))
    action = (0.25, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    t = 0.0
    for _ in range(20):  # far from the wall: up to full speed
        mux.ee_pose((0.0, 0.0, 0.0), UPRIGHT, "base_link", t)
        fast = propose(mux, t, action=action).command.twist[0]
        t += 0.05
    assert fast == pytest.approx(0.25)
    mux.ee_pose((0.499, 0.0, 0.0), UPRIGHT, "base_link", t)  # 1 mm before it: a 0.5 m/s^2 limit would allow 0.225
    assert propose(mux, t, action=action).command.twist[0] <= brake_speed(0.001, 1.0, 0.05) + 1e-12


def test_hold_keeps_the_last_gripper_command():
    mux = make_mux()
    propose(mux, 0.0, action=POLICY_ACTION[:6] + (1.0,))
    out = mux.update(0.3, 0.3)
    assert out.command.twist == ZERO and out.command.gripper == 1.0


# -- status and configuration -----------------------------------------------------------------

def test_status_reports_sources_and_locks():
    mux = make_mux(locks=[ESTOP])
    mux.lock("estop", False, 0.0)
    engage(mux, 0.0)
    status = mux.status(0.01)
    human = next(s for s in status.sources if s.name == "spacemouse")
    assert human.selected and human.engaged and human.fresh and not human.masked
    assert status.locks[0].name == "estop" and not status.locks[0].locked
    assert status.interventions == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sources=()), "no sources configured"),
        (dict(sources=(HUMAN, POLICY, SourceConfig("p2", "policy", "p2", 0.2, 5))), "at most one policy"),
        (dict(sources=(SourceConfig("x", "joystick", "x", 0.2, 5),)), "topics.x.type='joystick'"),
        (dict(sources=(SourceConfig("x", "policy", "x", 0.0, 5),)), r"topics.x.timeout=0.0"),
        (dict(sources=(SourceConfig("x", "policy", "x", 0.2, 300),)), "topics.x.priority=300"),
        (dict(sources=(SourceConfig("h", "human", "h", 0.2, 5),)), "needs engaged_topic"),
        (dict(sources=(POLICY,), locks=(LockConfig("policy", "l", 0.0, 1),)), "unique"),
        (dict(sources=(POLICY,), locks=(LockConfig("e", "e", -1.0, 1),)), r"locks.e.timeout"),
        (dict(sources=(POLICY,), locks=(LockConfig("e", "e", 0.0, 1, type="can"),)), r"locks.e.type='can'"),
        (dict(sources=(POLICY,), locks=(LockConfig("e", "e", 0.0, 1, type="diagnostics"),)), r"locks.e.status is empty"),
        (dict(sources=(POLICY,), rate=0.0), "rate=0.0"),
        (dict(sources=(POLICY,), limits=Limits(max_linear_speed=-1)), "limits: max_linear_speed"),
    ],
)
def test_bad_configuration_names_the_parameter(kwargs, match):
    with pytest.raises(MuxConfigError, match=match):
        MuxConfig(**kwargs)


# -- help requests (robot-gated: the policy asks for the operator) ------------------------------

# (pause_on_help_request, help requested, operator engaged) -> (source, hold reason)
HELP_TABLE = [
    (False, False, False, "policy", ""),
    (False, True, False, "policy", ""),                 # the parameter is off: the request is only shown
    (True, False, False, "policy", ""),
    (True, True, False, "hold", "help requested"),       # waits for the operator instead of acting unsure
    (True, True, True, "human", ""),                     # the operator answers: they drive
]


@pytest.mark.parametrize("pause, requested, engaged, source, reason", HELP_TABLE)
def test_mux_holds_while_help_is_requested_only_when_asked_to(pause, requested, engaged, source, reason):
    mux = Mux(MuxConfig(sources=(HUMAN, POLICY), limits=FREE_LIMITS, pause_on_help_request=pause))
    mux.help_request(requested)
    if engaged:
        engage(mux, 0.0)
    out = propose(mux, 0.01)
    assert out.command.source == source and out.command.hold_reason == reason
    if source == "hold":
        assert out.command.twist == ZERO and out.step.source == "hold" and out.step.policy_action == POLICY_ACTION


def test_a_withdrawn_help_request_gives_the_arm_back_to_the_policy():
    mux = Mux(MuxConfig(sources=(HUMAN, POLICY), limits=FREE_LIMITS, pause_on_help_request=True))
    mux.help_request(True)
    assert propose(mux, 0.0).command.hold_reason == "help requested"
    mux.help_request(False)
    assert propose(mux, 0.05).command.source == "policy"


def test_the_step_record_carries_the_frame_stamp_of_the_policys_proposal():
    mux = make_mux()
    with_frame = Proposal(POLICY_ACTION, (1.0, 2.0), 1, obs_stamp=0.0, stamp=0.0, image_stamps={"front": -0.03, "wrist": -0.02})
    assert mux.proposal("policy", with_frame, 0.0) is None
    assert mux.update(0.0, stamp=0.0, proposal_arrived=True).step.image_stamps == {"front": -0.03, "wrist": -0.02}
    assert propose(mux, 0.05).step.image_stamps is None  # a proposal without a camera frame
    assert mux.update(1.0, stamp=1.0).step.image_stamps is None  # the policy went stale: no proposal, no frame


def test_step_records_reach_the_named_nodes_only_once_the_publisher_matched_every_listed_one():
    from iil_robot.command.mux import step_records_reach

    assert not step_records_reach({}, {"recorder"})
    assert not step_records_reach({"step_subscriber_nodes": "learner", "step_subscribers": "1"}, {"recorder", "learner"})
    # both discovered by name, one not matched yet by the publisher
    assert not step_records_reach({"step_subscriber_nodes": "learner,recorder", "step_subscribers": "1"}, {"recorder", "learner"})
    assert step_records_reach({"step_subscriber_nodes": "dashboard,learner,recorder", "step_subscribers": "3"},
                              {"recorder", "learner"})
    assert step_records_reach({"step_subscriber_nodes": "", "step_subscribers": "0"}, set())


# -- the watchdog: update is needed only after an input or at next_deadline ----------------------

def _random_inputs(seed: int, duration: float = 6.0, grid: float = 0.007):
    """(time, apply) pairs of a random session: a policy that dies and comes back, an operator who engages,
    drives, falls silent and lets go, an e-stop heartbeat with gaps, pause and help requests. Inputs come on a
    7 ms grid, which no timeout (0.1, 0.2, 0.5 s) is a multiple of, so no input lands on a staleness moment."""
    import random

    rng = random.Random(seed)
    inputs = []
    policy_alive = human_talking = estop_alive = True
    paused = help_requested = False

    def flip(alive: bool, dies: float, revives: float) -> bool:
        return alive != (rng.random() < (dies if alive else revives))

    for k in range(1, round(duration / grid)):
        t = k * grid
        policy_alive = flip(policy_alive, 0.01, 0.01)
        human_talking = flip(human_talking, 0.02, 0.05)
        estop_alive = flip(estop_alive, 0.002, 0.01)
        if policy_alive and k % 7 == 0:
            inputs.append((t, lambda m, t=t: propose_only(m, t)))
        if human_talking and rng.random() < 0.5:
            inputs.append((t, lambda m, t=t: m.human_command("spacemouse", HUMAN_TWIST, t)))
        if rng.random() < 0.02:
            engaged = rng.random() < 0.5
            inputs.append((t, lambda m, t=t, e=engaged: m.human_engaged("spacemouse", e, t)))
        if estop_alive and k % 10 == 0:
            locked = rng.random() < 0.05
            inputs.append((t, lambda m, t=t, locked=locked: m.lock("estop", locked, t)))
        if paused != (paused := flip(paused, 0.05, 0.002)):
            inputs.append((t, lambda m, paused=paused: m.set_paused(paused)))
        if help_requested != (help_requested := flip(help_requested, 0.05, 0.002)):
            inputs.append((t, lambda m, requested=help_requested: m.help_request(requested)))
    return inputs


def propose_only(mux, now) -> bool:
    assert mux.proposal("policy", proposal(t=now), now) is None
    return True  # a proposal arrived: the mux ticks on it


@pytest.mark.parametrize("seed", range(8))
def test_between_inputs_update_has_nothing_to_do_before_next_deadline(seed):
    """The mux node calls update after every input and at next_deadline, instead of polling. That is safe only if
    polling in between would never have published anything: probe copies of the mux every 1 ms up to the deadline
    (less the margin it adds after a timeout) and check they all stay silent."""
    import copy

    config = MuxConfig(sources=(HUMAN, POLICY), locks=(ESTOP,), limits=FREE_LIMITS, rate=20.0, pause_on_help_request=True)
    mux = Mux(config)
    inputs = _random_inputs(seed)
    now, found_by_deadline = 0.0, set()
    mux.update(now, now)
    i = 0
    while i < len(inputs):
        deadline = mux.next_deadline(now)
        assert deadline > now, "the next deadline must lie ahead once update has run"
        next_input = inputs[i][0]
        probe_until = min(deadline - STALE_AFTER, next_input)
        t = now + 0.001
        while t < probe_until:
            out = copy.deepcopy(mux).update(t, t)
            assert out == Output(), f"seed {seed}: polling at {t:.4f} s would publish {out}; next deadline {deadline:.4f} s"
            t += 0.001
        arrived = at_deadline = False
        if deadline <= next_input:
            now, at_deadline = deadline, True
        else:
            now = next_input
            while i < len(inputs) and inputs[i][0] == now:
                arrived = inputs[i][1](mux) is True or arrived
                i += 1
        out = mux.update(now, now, proposal_arrived=arrived)
        if at_deadline and out.command is not None:
            found_by_deadline |= {"self-tick"} if out.step else set()
            found_by_deadline |= {"stale"} if out.command.hold_reason.startswith("stale:") else set()
            found_by_deadline |= {"heartbeat lost"} if "heartbeat lost" in out.command.hold_reason else set()
    # the deadlines did find what only time reveals: a stale source, the mux's own ticks
    assert {"self-tick", "stale"} <= found_by_deadline, found_by_deadline


def test_an_output_fault_holds_the_arm_and_no_pause_or_recovery_lifts_it():
    mux = make_mux()
    mux.set_output_fault("gripper output unavailable")
    assert propose(mux, 0.0).step.hold_reason == "gripper output unavailable"
    mux.set_paused(False)
    assert mux.recover(0.01)[0] and propose(mux, 0.05).step.source == "hold"
