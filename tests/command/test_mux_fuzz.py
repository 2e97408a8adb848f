"""Property-based: whatever arrives in whatever order, the mux raises nothing and the arm gets only finite commands
within the limits, and every step record can be published."""
import math

from hypothesis import given
from hypothesis import strategies as st

from iil_robot.command.mux import Mux, MuxConfig
from iil_robot.command.safety import Limits, WorkspaceBox
from iil_robot.data.records import Proposal, StepRecord
from tests.command.test_mux import ESTOP, HUMAN, POLICY

ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)
HUGE_INT = st.integers(min_value=-(10**400), max_value=10**400)
LIMITS = st.builds(Limits, max_linear_speed=st.floats(0.001, 10.0), max_angular_speed=st.floats(0.001, 20.0),
                   max_linear_accel=st.floats(0.0, 100.0), max_angular_accel=st.floats(0.0, 200.0),
                   workspace=st.builds(WorkspaceBox, enabled=st.booleans()))
VALID_ACTION = st.tuples(*[st.floats(-5.0, 5.0)] * 6, st.floats(0.0, 1.0))
PROPOSALS = st.builds(
    Proposal, action=VALID_ACTION | st.lists(ANY_FLOAT, min_size=0, max_size=9).map(tuple),
    observation=st.lists(ANY_FLOAT, max_size=4).map(tuple),
    policy_version=HUGE_INT, obs_stamp=ANY_FLOAT, stamp=ANY_FLOAT, uncertainty=st.none() | ANY_FLOAT,
    risk=st.none() | ANY_FLOAT, image_stamps=st.none() | st.dictionaries(st.sampled_from(['front', 'wrist']), ANY_FLOAT))
INPUTS = st.one_of(
    st.tuples(st.just("human"), st.lists(ANY_FLOAT, min_size=6, max_size=6)),
    st.tuples(st.just("human_short"), st.lists(ANY_FLOAT, max_size=8)),
    st.tuples(st.just("engaged"), st.booleans()),
    st.tuples(st.just("gripper"), ANY_FLOAT),
    st.tuples(st.just("proposal"), PROPOSALS),
    st.tuples(st.just("lock"), st.booleans()),
    st.tuples(st.just("ee"), st.lists(ANY_FLOAT, min_size=3, max_size=3)),
    st.tuples(st.just("pause"), st.booleans()),
    st.tuples(st.just("help"), st.booleans()),
)


def feed(mux: Mux, kind: str, value, now: float) -> bool:
    """Hand one input to the mux; returns whether it was a proposal that was accepted."""
    if kind in ("human", "human_short"):
        mux.human_command("spacemouse", value, now)
    elif kind == "engaged":
        mux.human_engaged("spacemouse", value, now)
    elif kind == "gripper":
        mux.human_gripper("spacemouse", value, now)
    elif kind == "proposal":
        return mux.proposal("policy", value, now) is None
    elif kind == "lock":
        mux.lock("estop", value, now)
    elif kind == "ee":
        mux.ee_pose(value, (0.0, 0.0, 0.0, 1.0), "base_link", now)
    elif kind == "pause":
        mux.set_paused(value)
    else:
        mux.help_request(value)
    return False


def assert_safe(command, limits: Limits) -> None:
    assert all(math.isfinite(v) for v in command.twist) and math.isfinite(command.gripper)
    assert math.hypot(*command.twist[:3]) <= limits.max_linear_speed * (1 + 1e-9)
    assert math.hypot(*command.twist[3:]) <= limits.max_angular_speed * (1 + 1e-9)
    assert 0.0 <= command.gripper <= 1.0


@given(limits=LIMITS, steps=st.lists(st.tuples(INPUTS, st.floats(0.0, 0.3)), max_size=40))
def test_no_input_sequence_makes_the_mux_raise_or_exceed_a_limit(limits, steps):
    mux = Mux(MuxConfig(sources=(HUMAN, POLICY), locks=(ESTOP,), limits=limits))
    now = 0.0
    for (kind, value), dt in steps:
        now += dt
        arrived = feed(mux, kind, value, now)
        out = mux.update(now, stamp=now, proposal_arrived=arrived)
        if out.command is not None:
            assert_safe(out.command, limits)
        if out.step is not None:
            assert StepRecord.decode(out.step.encode()) == out.step
        mux.next_deadline(now)
    assert_safe(mux.stop_command("test"), limits)
