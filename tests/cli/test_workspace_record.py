"""`iil-robot workspace record` against a publisher of end-effector poses."""
import subprocess
import sys
import time

import yaml
from geometry_msgs.msg import PoseStamped

from iil_robot.cli.graph import loopback_env
from iil_robot.nodes.common import SENSOR_QOS
from tests.nodes.ros_probe import Probe

TOPIC = "/franka_robot_state_broadcaster/current_pose"  # the panda profile's ee_pose


def pose(x: float, y: float, z: float, frame: str = "panda_link0") -> PoseStamped:
    msg = PoseStamped()
    msg.header.frame_id = frame
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = x, y, z
    msg.pose.orientation.x, msg.pose.orientation.w = 1.0, 0.0  # tool pointing down
    return msg


def test_record_writes_the_jogged_box_with_a_margin_as_a_profile_overlay(tmp_path, domain_id):
    out = tmp_path / "workspace.yaml"
    command = [sys.executable, "-m", "iil_robot.cli", "workspace", "record", "--robot", "panda", "--domain-id", str(domain_id),
               "--seconds", "6", "--margin", "0.01", "--output", str(out)]
    proc = subprocess.Popen(command, env=loopback_env(domain_id), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    probe = Probe(domain_id)
    try:
        publisher = probe.publisher(PoseStamped, TOPIC, SENSOR_QOS)
        probe.wait_for(lambda: publisher.get_subscription_count() > 0, 20.0, "the recorder subscribed")
        path = [(0.4, -0.2, 0.1), (0.6, 0.0, 0.3), (0.5, 0.2, 0.2)]
        while proc.poll() is None:  # the jog: the same three corners over and over, and one pose in the wrong frame
            for x, y, z in path:
                publisher.publish(pose(x, y, z))
            publisher.publish(pose(9.0, 9.0, 9.0, frame="world"))
            probe.spin_for(0.05)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        probe.close()
    assert proc.returncode == 0, stderr
    assert "refused" in stderr and "'world'" in stderr
    overlay = yaml.safe_load(out.read_text())["parameters"]
    assert overlay["mux"]["workspace.min_xyz"] == [0.39, -0.21, 0.09]
    assert overlay["mux"]["workspace.max_xyz"] == [0.61, 0.21, 0.31]
    assert overlay["mux"]["workspace.enabled"] is True
    assert overlay["episode_manager"]["workspace_min"] == [0.39, -0.21, 0.09]
    assert "poses" in stdout and f"wrote {out}" in stdout


def test_record_without_any_pose_says_what_to_check(tmp_path, domain_id):
    command = [sys.executable, "-m", "iil_robot.cli", "workspace", "record", "--robot", "ur5e", "--domain-id", str(domain_id),
               "--seconds", "1", "--output", str(tmp_path / "w.yaml")]
    start = time.monotonic()
    done = subprocess.run(command, env=loopback_env(domain_id), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1 and "/tcp_pose_broadcaster/pose" in done.stderr and "no end-effector pose in base" in done.stderr
    assert not (tmp_path / "w.yaml").exists() and time.monotonic() - start < 60
