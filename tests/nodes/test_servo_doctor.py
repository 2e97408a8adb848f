"""`iil-robot doctor --servo` against a running Servo stand-in (tests/nodes/servo_standin.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from iil_robot.cli.graph import NodeSpec, loopback_env


def doctor(domain_id: int) -> tuple[int, dict]:
    env = {**os.environ, **loopback_env(domain_id)}
    done = subprocess.run([sys.executable, "-m", "iil_robot.cli", "doctor", "--servo", "/servo_node", "--robot", "panda",
                           "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.startswith("{"), done.stdout + done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.mark.parametrize("parameters, code, failed", [
    ({"moveit_servo.command_in_type": "speed_units"}, 0, []),
    ({}, 1, ["servo command type"]),  # Servo's default, unitless
    ({"moveit_servo.command_in_type": "speed_units", "moveit_servo.incoming_command_timeout": 0.04,
      "moveit_servo.cartesian_command_in_topic": "/elsewhere"}, 1, ["servo timeout", "servo command topic"]),
])
def test_doctor_reads_a_running_servo_and_names_what_is_wrong(graph, domain_id, parameters, code, failed):
    graph.start(NodeSpec("servo_node", "tests.nodes.servo_standin", parameters=parameters))
    returned, report = doctor(domain_id)
    assert [c["name"] for c in report["checks"] if c["status"] == "fail"] == failed
    assert returned == code


def test_doctor_says_when_no_servo_answers(domain_id):
    returned, report = doctor(domain_id)
    assert returned == 1 and report["checks"][-1]["name"] == "servo node" and "did not answer" in report["checks"][-1]["detail"]
