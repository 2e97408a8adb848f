"""Node process specs: the command line each node is started with."""
from iil_robot.graph import NodeSpec, loopback_env

import pytest


def test_parameters_become_yaml_values_rcl_can_parse():
    cmd = NodeSpec("n", "m", parameters={"empty": "", "text": "sim operator: level 0.7", "number_text": "0.7",
                                         "flag": True, "rate": 20.0, "axes": [1.0, -1.0]}).command("python")
    overrides = [cmd[i + 1] for i, a in enumerate(cmd) if a == "-p"]
    assert overrides == ['empty:=""', 'text:="sim operator: level 0.7"', 'number_text:="0.7"', "flag:=true",
                         "rate:=20.0", "axes:=[1.0,-1.0]"]


def test_loopback_env_keeps_dds_on_this_machine():
    env = loopback_env(7, base={"ROS_STATIC_PEERS": "10.0.0.2", "PATH": "/bin"})
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST" and env["ROS_DOMAIN_ID"] == "7"
    assert "ROS_STATIC_PEERS" not in env
    with pytest.raises(ValueError, match="ROS_DOMAIN_ID=200"):
        loopback_env(200)
