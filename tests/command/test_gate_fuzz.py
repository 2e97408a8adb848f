"""Property-based: no device sample makes the gate raise anything but its documented ValueError (wrong axis count),
and its command is always finite and within the configured speed per axis."""
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iil_robot.command.gate import AXES, CORRUPT_AXIS, ButtonMap, Gate, GateConfig

ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)
CONFIGS = st.builds(
    GateConfig, deadband=st.floats(0.0, 0.5), engage_threshold=st.floats(0.5, 1.0), engage_time=st.floats(0.0, 1.0),
    release_time=st.floats(0.0, 2.0), takeover_mode=st.sampled_from(["hold", "toggle"]),
    active_axes=st.sampled_from(["translation", "6dof"]),
    axis_scale=st.tuples(*[st.floats(0.0, 2.0)] * 6), buttons=st.just(ButtonMap(success=2, failure=3, reset=4)))
AXES_VALUES = st.lists(ANY_FLOAT, min_size=6, max_size=6) | st.lists(ANY_FLOAT, max_size=8)
SAMPLES = st.tuples(AXES_VALUES, st.lists(st.integers(-(2**70), 2**70), max_size=40),
                    st.floats(0.0, 1.0), st.booleans())


@given(config=CONFIGS, samples=st.lists(SAMPLES, max_size=40))
def test_no_device_sample_makes_the_gate_raise_or_exceed_its_scale(config, samples):
    gate, now = Gate(config), 0.0
    for axes, buttons, dt, lost in samples:
        now += dt
        if lost:
            out = gate.device_lost()
        elif len(axes) != len(AXES):
            with pytest.raises(ValueError, match="expected 6 axes"):
                gate.update(axes, buttons, now)
            continue
        else:
            out = gate.update(axes, buttons, now)
        assert all(math.isfinite(v) and abs(v) <= scale for v, scale in zip(out.twist, config.axis_scale))
        if not lost:  # a corrupt axis value (not finite, or beyond CORRUPT_AXIS) counts as no deflection
            assert all(v == 0.0 for a, v in zip(axes, out.twist) if not (math.isfinite(a) and abs(a) <= CORRUPT_AXIS))
        assert out.gripper in (0.0, 1.0, config.initial_gripper) and out.engaged == gate.engaged
        assert set(out.events) <= {"success", "failure", "reset"}
