"""``iil-robot doctor [--json]``: can this machine read a SpaceMouse, and if not, what to do.

Runs a few checks in order, each a :class:`CheckResult` with a fix when it is not OK:

1. ``libhidapi``: the HID library pyspacemouse loads (libhidapi-hidraw0) is installed;
2. ``udev rule``: 70-iil-robot-spacemouse.rules is installed (a warning: the device may be
   readable anyway, e.g. as root);
3. ``hidraw nodes``: a 3Dconnexion hidraw node is visible and readable;
4. ``open device``: pyspacemouse opens it and reads (only tried when 1-3 did not fail);
5. ``ros network``: DDS discovery stays on this machine (``ROS_AUTOMATIC_DISCOVERY_RANGE=
   LOCALHOST``, as the sim and the tests need; a warning otherwise), and ``ROS_DOMAIN_ID``.

Exits 0 when a SpaceMouse was opened and read, 1 otherwise. Needs neither rclpy nor torch.

``iil-robot doctor --calibrate --robot NAME`` instead walks the operator through one push of the
cap "away from you" while the graph runs, watches the arm move (the profile's ``ee_pose``), asks
whether it moved away from them, and writes the gate's ``operator_frame``/``operator_yaw`` as a
profile overlay (`iil_robot.command.calibration`; rclpy only then).
``--servo NODE`` checks a running MoveIt Servo against the mux instead (``servo_check``; needs rclpy).
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import io
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence, TextIO

import yaml

from iil_robot.cli.checks import CheckResult
from iil_robot.cli.graph import add_domain_argument
from iil_robot.command.calibration import CalibrationConfig, CalibrationError, calibrate
from iil_robot.command.hidraw import (
    LIBHIDAPI_MISSING,
    NOTHING_FOUND,
    RULES_NAME,
    HidrawDevice,
    can_read_write,
    diagnose_nodes,
    diagnose_open_failure,
    find_hidraw_devices,
    is_spacemouse,
)
from iil_robot.command.spacemouse import DeviceLike, ReaderConfig, SpaceMouseReader, open_pyspacemouse
from iil_robot.config.profiles import ProfileError, load_profile

__all__ = ["CheckResult", "DoctorConfig", "DoctorReport", "add_arguments", "find_libhidapi", "run", "run_checks"]

@dataclass(frozen=True)
class DoctorReport:
    """All checks, the SpaceMouse hidraw nodes seen, and the verdict."""

    checks: tuple[CheckResult, ...]
    devices: tuple[HidrawDevice, ...]
    spacemouse_readable: bool

    def to_json(self) -> str:
        return json.dumps(
            {
                "spacemouse_readable": self.spacemouse_readable,
                "checks": [asdict(c) | {"ok": c.ok} for c in self.checks],
                "devices": [asdict(d) | {"path": str(d.path)} for d in self.devices],
            },
            indent=2,
        )


def find_libhidapi() -> str | None:
    """The name of the loadable hidapi hidraw library, or None when it is not installed."""
    name = ctypes.util.find_library("hidapi-hidraw")
    if name:
        return name
    try:  # find_library misses libraries outside the ld cache (LD_LIBRARY_PATH, AppImage)
        ctypes.CDLL("libhidapi-hidraw.so.0")
    except OSError:
        return None
    return "libhidapi-hidraw.so.0"


@dataclass
class DoctorConfig:
    """Where the doctor looks; the defaults are the real system (tests pass fakes)."""

    sys_root: Path = Path("/sys")
    """Where sysfs is mounted (hidraw nodes are listed in sys_root/class/hidraw)."""
    dev_root: Path = Path("/dev")
    """Where the device nodes are (dev_root/hidrawN)."""
    udev_rule_dirs: tuple[Path, ...] = (
        Path("/etc/udev/rules.d"), Path("/lib/udev/rules.d"), Path("/usr/lib/udev/rules.d"),
    )
    """Directories searched for *iil-robot-spacemouse.rules."""
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    """Environment holding the ROS network settings."""
    find_hidapi: Callable[[], str | None] = find_libhidapi
    """Returns the hidapi library name, or None when missing."""
    open_device: Callable[[], DeviceLike] = open_pyspacemouse
    """Opens the SpaceMouse (as the reader does)."""
    access: Callable[[Path], bool] = can_read_write
    """Whether this process may read and write a device node."""


# --------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------
def check_libhidapi(find_hidapi: Callable[[], str | None]) -> CheckResult:
    name = find_hidapi()
    if name:
        return CheckResult("libhidapi", "ok", f"found {name}")
    return CheckResult("libhidapi", "fail", LIBHIDAPI_MISSING.problem, LIBHIDAPI_MISSING.fix)


def check_udev_rule(rule_dirs: Sequence[Path]) -> CheckResult:
    pattern = "*" + RULES_NAME.split("-", 1)[1]  # *iil-robot-spacemouse.rules, any prefix
    found = [path for d in rule_dirs if d.is_dir() for path in sorted(d.glob(pattern))]
    if found:
        return CheckResult("udev rule", "ok", ", ".join(map(str, found)))
    return CheckResult(
        "udev rule", "warn",
        f"no {pattern} in {', '.join(map(str, rule_dirs))}",
        "run `sudo udev/install.sh`, then unplug and replug the SpaceMouse",
    )


def check_hidraw(all_nodes: Sequence[HidrawDevice]) -> CheckResult:
    nodes = [n for n in all_nodes if is_spacemouse(n.vendor_id, n.product_id)]
    diagnosis = diagnose_nodes(nodes)
    if diagnosis is None:
        readable = [n.describe() for n in nodes if n.readable]
        return CheckResult("hidraw nodes", "ok", f"readable: {', '.join(readable)}")
    if diagnosis == NOTHING_FOUND:
        others = ", ".join(n.describe() for n in all_nodes) or "none"
        return CheckResult(
            "hidraw nodes", "fail", f"{NOTHING_FOUND.problem} (hidraw devices visible: {others})",
            "plug it in (3Dconnexion vendors 046d/256f); if it is, check `lsusb` and `sudo dmesg | tail`",
        )
    return CheckResult("hidraw nodes", "fail", diagnosis.problem, diagnosis.fix)


def check_open(config: DoctorConfig) -> CheckResult:
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pyspacemouse prints "<name> found"
            device = config.open_device()
        try:
            device.read()
        finally:
            device.close()
    except Exception as err:  # reported with its diagnosis, as the reader would
        diagnosis = diagnose_open_failure(err, config.sys_root, config.dev_root, access=config.access)
        return CheckResult("open device", "fail", f"{diagnosis.problem} [{type(err).__name__}: {err}]", diagnosis.fix)
    return CheckResult("open device", "ok", f"pyspacemouse opened and read {device.name}")


def check_ros_network(env: Mapping[str, str]) -> CheckResult:
    discovery = env.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "")
    domain = env.get("ROS_DOMAIN_ID", "")
    domain_text = f"ROS_DOMAIN_ID={domain}" if domain else "ROS_DOMAIN_ID unset (0)"
    if domain and not (domain.isdigit() and int(domain) <= 232):
        return CheckResult(
            "ros network", "warn", f"ROS_DOMAIN_ID={domain!r} is not a number in 0-232",
            "export ROS_DOMAIN_ID=<0-101> (one per robot or test run)",
        )
    if discovery == "LOCALHOST":
        return CheckResult("ros network", "ok", f"ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, {domain_text}")
    shown = f"={discovery}" if discovery else " unset (SUBNET)"
    return CheckResult(
        "ros network", "warn",
        f"ROS_AUTOMATIC_DISCOVERY_RANGE{shown}: DDS discovery leaves this machine, {domain_text}",
        "export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST for the sim and tests (./iil sets it); "
        "a robot driven from another machine needs SUBNET and a ROS_DOMAIN_ID of its own",
    )


def run_checks(config: DoctorConfig) -> DoctorReport:
    """Run every check in order; the device is opened only when no earlier check failed."""
    all_nodes = find_hidraw_devices(config.sys_root, config.dev_root, access=config.access)
    checks = [
        check_libhidapi(config.find_hidapi),
        check_udev_rule(config.udev_rule_dirs),
        check_hidraw(all_nodes),
    ]
    if any(c.status == "fail" for c in checks):
        opened = CheckResult("open device", "skip", "not tried", "fix the failures above first")
    else:
        opened = check_open(config)
    checks += [opened, check_ros_network(config.env)]
    return DoctorReport(
        checks=tuple(checks),
        devices=tuple(n for n in all_nodes if is_spacemouse(n.vendor_id, n.product_id)),
        spacemouse_readable=opened.ok,
    )


# --------------------------------------------------------------------------------------
# Command
# --------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of one line per check")
    parser.add_argument("--calibrate", action="store_true",
                        help="with the graph running: push the cap away from you, and write the gate's operator_yaw")
    parser.add_argument("--servo", metavar="NODE", default=None,
                        help="instead, check a running MoveIt Servo node (e.g. /servo_node) against the mux: command "
                             "type, units, timeout and topic")
    parser.add_argument("--robot", default=None, help="--calibrate: robot profile of its ee_pose topic and frame (default "
                        "fetch); --servo: the profile whose remappings and mux parameters apply (default panda)")
    add_domain_argument(parser, "--calibrate: ROS_DOMAIN_ID of the graph (default: $ROS_DOMAIN_ID or 0)",
                        starts_graph=False)
    parser.add_argument("--seconds", type=float, default=CalibrationConfig().seconds,
                        help="--calibrate: how long the push is watched (s)")
    parser.add_argument("--output", type=Path, default=Path("operator_frame.yaml"), help="--calibrate: overlay file to write")


def run(args: argparse.Namespace, config: DoctorConfig | None = None, keys: TextIO | None = None,
        out: TextIO | None = None) -> int:
    """Print the checks; 0 when a SpaceMouse was opened and read (or, with --servo, nothing failed), 1 otherwise. With
    ``--calibrate``: the calibration, asking on ``out`` and reading answers from ``keys`` (stdout and stdin by default)."""
    if getattr(args, "calibrate", False):
        return run_calibration(args, config or DoctorConfig(), keys or sys.stdin, out or sys.stdout)
    if getattr(args, "servo", None):
        return run_servo(args)
    report = run_checks(config or DoctorConfig())
    if args.json:
        print(report.to_json())
    else:
        for check in report.checks:
            print(check.line())
        print("SpaceMouse readable: " + ("yes" if report.spacemouse_readable else "no"))
    return 0 if report.spacemouse_readable else 1


def run_calibration(args: argparse.Namespace, config: DoctorConfig, keys: TextIO, out: TextIO) -> int:
    """Read the SpaceMouse and the profile's ee_pose, ask the operator, write the overlay; 0 on success."""
    try:
        profile = load_profile(args.robot or "fetch")
    except ProfileError as err:
        print(f"error: {err}", file=out)
        return 2
    topic = profile.remappings.get("ee_pose", "ee_pose")
    frame = profile.node_parameters("mux").get("frame_id", "base_link")
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    from iil_robot.nodes.clients.pose_listener import PoseListener  # rclpy only for the calibration

    latest: list[tuple[float, float, float]] = []

    def on_pose(msg) -> None:
        if msg.header.frame_id == frame:  # another frame's numbers would give another yaw
            p = msg.pose.position
            latest[:] = [(p.x, p.y, p.z)]

    def ask(question: str) -> str:
        out.write(question)
        out.flush()
        return keys.readline()

    reader = SpaceMouseReader(ReaderConfig(), open_device=config.open_device, log=lambda text: print(text, file=out))
    reader.start()
    listener = PoseListener(args.domain_id, topic, on_pose, "doctor_calibrate")
    try:
        yaw = calibrate(lambda: reader.latest().axes, lambda: latest[0] if latest else None, ask,
                        lambda text: print(text, file=out), CalibrationConfig(seconds=args.seconds), sleep=listener.spin)
    except CalibrationError as err:
        print(f"calibration failed: {err}", file=out)
        return 1
    finally:
        reader.stop()
        listener.close()
    overlay = {"parameters": {"spacemouse_gate": {"operator_frame": "base", "operator_yaw": yaw}}}
    args.output.write_text(f"# iil-robot doctor --calibrate --robot {args.robot or 'fetch'}: pushing the cap away from the "
                           f"operator moves the arm away from them.\n# Add this under `parameters:` in your robot profile.\n"
                           + yaml.safe_dump(overlay, sort_keys=False))
    print(f"operator_yaw: {yaw:g} degrees; wrote {args.output}", file=out)
    return 0


def run_servo(args: argparse.Namespace) -> int:
    """``--servo NODE``: the Servo checks of ``iil_robot.cli.servo_check``; 0 when none failed."""
    from iil_robot.cli.servo_check import MUX_PARAMETERS, SERVO_PARAMETERS, check_servo, mux_side
    from iil_robot.nodes.clients.parameter_reader import read_parameters

    try:
        profile = load_profile(args.robot or "panda")
    except ProfileError as err:
        raise SystemExit(f"--robot: {err}") from err
    checks = [check_ros_network(os.environ)]
    checks += check_servo(args.servo, read_parameters(args.servo, SERVO_PARAMETERS),
                          mux_side(profile, read_parameters("/mux", MUX_PARAMETERS, timeout=2.0)))
    if args.json:
        print(json.dumps({"servo_ok": not any(c.status == "fail" for c in checks),
                          "checks": [asdict(c) | {"ok": c.ok} for c in checks]}, indent=2))
    else:
        for check in checks:
            print(check.line())
    return 1 if any(c.status == "fail" for c in checks) else 0
