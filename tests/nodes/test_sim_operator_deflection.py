"""The simulated operator deflects the cap so that the gate, whatever its operator frame, commands what it wants."""
import numpy as np
import pytest

from iil_robot.command.gate import Gate, GateConfig
from iil_robot.nodes.sim_operator import deflection_for


@pytest.mark.parametrize("yaw", [0.0, 90.0, 135.0, 180.0, -60.0])
def test_the_gate_commands_the_velocity_the_simulated_operator_deflects_for(yaw):
    gate = GateConfig(operator_yaw=yaw, axis_sign=(1, -1, 1, 1, 1, 1))
    wanted = np.array([0.1, -0.05, 0.02])
    out = Gate(gate).update(deflection_for(wanted, gate), (0, 0), now=0.0)
    assert out.twist[:3] == pytest.approx(wanted, abs=1e-9)
