"""Tests of `iil-robot doctor` on a fake sysfs/dev tree, and a smoke run of the real command."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest

from iil_robot.cli.doctor import DoctorConfig, add_arguments, check_ros_network, run
from iil_robot.command.hidraw import RULES_NAME
from tests.fakes import FakeHidrawTree

LOCALHOST = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "ROS_DOMAIN_ID": "42"}


class FakeDevice:
    name = "SpaceMouseCompact"

    def __init__(self) -> None:
        self.closed = False

    def read(self):
        return None

    def close(self) -> None:
        self.closed = True


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def config_for(tree: FakeHidrawTree, *, hidapi: str | None = "libhidapi-hidraw.so.0",
               open_device=FakeDevice, rules: bool = True, env=LOCALHOST) -> DoctorConfig:
    rule_dir = tree.sys_root.parent / "rules.d"
    rule_dir.mkdir(exist_ok=True)
    if rules:
        (rule_dir / RULES_NAME).write_text("# test\n")
    return DoctorConfig(sys_root=tree.sys_root, dev_root=tree.dev_root, udev_rule_dirs=(rule_dir,),
                        env=env, find_hidapi=lambda: hidapi, open_device=open_device, access=tree.access)


def run_json(config: DoctorConfig, capsys) -> tuple[int, dict]:
    code = run(parse(["--json"]), config)
    out = capsys.readouterr().out
    return code, json.loads(out)


def statuses(report: dict) -> dict[str, str]:
    return {check["name"]: check["status"] for check in report["checks"]}


def test_readable_spacemouse_exits_0_and_lists_it(hidraw_tree, capsys):
    hidraw_tree.add(3, 0x256F, 0xC635, "3Dconnexion SpaceMouse Compact")
    code, report = run_json(config_for(hidraw_tree), capsys)
    assert code == 0
    assert report["spacemouse_readable"] is True
    assert set(statuses(report).values()) == {"ok"}
    assert report["devices"] == [{"path": str(hidraw_tree.dev_root / "hidraw3"), "vendor_id": 0x256F,
                                  "product_id": 0xC635, "name": "3Dconnexion SpaceMouse Compact",
                                  "readable": True}]


def test_no_device_exits_1_and_skips_opening(hidraw_tree, capsys):
    hidraw_tree.add(0, 0x046D, 0xC52B, "Logitech USB Receiver")
    opened = []
    code, report = run_json(config_for(hidraw_tree, open_device=lambda: opened.append(1)), capsys)
    assert code == 1
    assert statuses(report)["hidraw nodes"] == "fail"
    assert statuses(report)["open device"] == "skip"
    assert opened == []
    nodes = next(c for c in report["checks"] if c["name"] == "hidraw nodes")
    assert nodes["detail"].startswith("no SpaceMouse found (hidraw devices visible: ")
    assert "Logitech USB Receiver, 046d:c52b" in nodes["detail"]


def test_unreadable_node_fails_with_udev_fix(hidraw_tree, capsys):
    hidraw_tree.add(3, 0x256F, 0xC635, "3Dconnexion SpaceMouse Compact", readable=False)
    code = run(parse([]), config_for(hidraw_tree, rules=False))
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[1].startswith("WARN udev rule: no *iil-robot-spacemouse.rules in ")
    assert lines[2] == (
        f"FAIL hidraw nodes: permission denied on {hidraw_tree.dev_root}/hidraw3 "
        "(3Dconnexion SpaceMouse Compact) -> install udev/70-iil-robot-spacemouse.rules with "
        "`sudo udev/install.sh`, then unplug and replug the device"
    )
    assert lines[3] == "SKIP open device: not tried -> fix the failures above first"
    assert lines[-1] == "SpaceMouse readable: no"


def test_missing_libhidapi_fails_with_install_fix(hidraw_tree, capsys):
    hidraw_tree.add(3, 0x256F, 0xC635, "3Dconnexion SpaceMouse Compact")
    code = run(parse([]), config_for(hidraw_tree, hidapi=None))
    first = capsys.readouterr().out.splitlines()[0]
    assert code == 1
    assert first == ("FAIL libhidapi: libhidapi-hidraw0 is not installed -> "
                     "run `sudo apt-get install libhidapi-hidraw0` (or `sudo udev/install.sh`)")


def test_open_failure_is_diagnosed(hidraw_tree, capsys):
    hidraw_tree.add(3, 0x046D, 0xC626, "3Dconnexion SpaceNavigator")

    def fail_open():
        raise RuntimeError("Failed to open device")

    code, report = run_json(config_for(hidraw_tree, open_device=fail_open), capsys)
    check = next(c for c in report["checks"] if c["name"] == "open device")
    assert code == 1
    assert check["status"] == "fail"
    assert check["detail"].endswith("[RuntimeError: Failed to open device]")
    assert "unplug and replug it" in check["fix"]


def test_open_check_closes_the_device(hidraw_tree, capsys):
    hidraw_tree.add(3, 0x256F, 0xC635, "3Dconnexion SpaceMouse Compact")
    device = FakeDevice()
    assert run(parse([]), config_for(hidraw_tree, open_device=lambda: device)) == 0
    assert device.closed
    assert "OK   open device: pyspacemouse opened and read SpaceMouseCompact" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("env", "status", "detail"),
    [
        (LOCALHOST, "ok", "ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, ROS_DOMAIN_ID=42"),
        ({}, "warn", "ROS_AUTOMATIC_DISCOVERY_RANGE unset (SUBNET): DDS discovery leaves this machine, "
                     "ROS_DOMAIN_ID unset (0)"),
        ({"ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}, "warn",
         "ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET: DDS discovery leaves this machine, ROS_DOMAIN_ID unset (0)"),
        ({"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "ROS_DOMAIN_ID": "robot"}, "warn",
         "ROS_DOMAIN_ID='robot' is not a number in 0-232"),
    ],
)
def test_ros_network_check(env, status, detail):
    result = check_ros_network(env)
    assert (result.status, result.detail) == (status, detail)
    assert (result.fix is None) == (status == "ok")


def test_real_doctor_command_prints_json(tmp_path):
    env = os.environ | {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    done = subprocess.run([sys.executable, "-m", "iil_robot.cli", "doctor", "--json"],
                          capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    report = json.loads(done.stdout)
    assert done.returncode == (0 if report["spacemouse_readable"] else 1), done.stderr
    assert [c["name"] for c in report["checks"]] == [
        "libhidapi", "udev rule", "hidraw nodes", "open device", "ros network"]


# -- --calibrate: a fake SpaceMouse pushed away from the operator, and an arm publishing its pose -------------------

class PushedDevice:
    """A SpaceMouse held pushed along +x of its own axes; each report also moves the (fake) arm, as the graph would."""

    name = "SpaceMouseCompact"

    def __init__(self, move_arm) -> None:
        self.move_arm = move_arm
        self.t = 0.0

    def read(self):
        import time
        from types import SimpleNamespace

        if time.monotonic() - self.t >= 0.02:  # a report every 20 ms, as a held cap sends
            self.t = time.monotonic()
            self.move_arm()
        return SimpleNamespace(t=self.t, x=0.8, y=0.0, z=0.0, roll=0.0, pitch=0.0, yaw=0.0, buttons=[0, 0])

    def close(self) -> None:
        pass


def test_calibrate_writes_the_yaw_from_the_push_the_arm_and_the_answer(hidraw_tree, tmp_path, domain_id):
    import io

    import yaml
    from geometry_msgs.msg import PoseStamped

    from iil_robot.nodes.common import SENSOR_QOS
    from tests.nodes.ros_probe import Probe

    probe = Probe(domain_id)
    publisher = probe.publisher(PoseStamped, "/franka_robot_state_broadcaster/current_pose", SENSOR_QOS)
    arm = {"y": 0.0}

    def move_arm() -> None:  # the push moves the arm along +y of panda_link0: the operator stands on the robot's right
        arm["y"] += 0.005
        msg = PoseStamped()
        msg.header.frame_id = "panda_link0"
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = 0.5, arm["y"], 0.3
        publisher.publish(msg)

    out, output = io.StringIO(), tmp_path / "operator_frame.yaml"
    args = parse(["--calibrate", "--robot", "panda", "--domain-id", str(domain_id), "--seconds", "4", "--output", str(output)])
    try:
        code = run(args, config_for(hidraw_tree, open_device=lambda: PushedDevice(move_arm)), keys=io.StringIO("\ny\n"),
                   out=out)
    finally:
        probe.close()
    assert code == 0, out.getvalue()
    assert "Did the arm move away from you?" in out.getvalue()
    overlay = yaml.safe_load(output.read_text())["parameters"]["spacemouse_gate"]
    assert overlay == {"operator_frame": "base", "operator_yaw": 90.0}


def test_calibrate_without_an_arm_says_what_to_check(hidraw_tree, tmp_path, domain_id):
    import io

    out = io.StringIO()
    args = parse(["--calibrate", "--robot", "ur5e", "--domain-id", str(domain_id), "--seconds", "0.5",
                  "--output", str(tmp_path / "o.yaml")])
    code = run(args, config_for(hidraw_tree, open_device=lambda: PushedDevice(lambda: None)), keys=io.StringIO("\n"), out=out)
    assert code == 1 and "no end-effector pose" in out.getvalue() and not (tmp_path / "o.yaml").exists()
