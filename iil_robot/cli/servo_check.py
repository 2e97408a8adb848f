"""``iil-robot doctor --servo NODE``: does a running MoveIt Servo take the mux's commands as the mux means them?

Reads three of the Servo node's parameters through its parameter service (Jazzy's servo_node
declares them under ``moveit_servo.``) and compares them with the mux's settings (those of a
running ``/mux`` if one answers, else ``config/mux.yaml`` with the robot profile):

- ``command_in_type`` must be ``speed_units``: the mux sends m/s and rad/s, and ``unitless``
  would scale them by Servo's ``scale.linear``/``scale.rotational``;
- ``incoming_command_timeout`` must exceed the mux's control period (the mux sends a command at
  least every ``1/rate`` s), with one period to spare, or a late tick halts the arm; a long one
  leaves the arm on its last command that long if the mux dies without its exit zero;
- ``cartesian_command_in_topic`` (``~/`` is the Servo node's namespace) must be the topic the
  mux's ``arm/cmd`` is remapped to.

The comparison (:func:`check_servo`) needs no ROS; ``iil_robot.nodes.clients.parameter_reader`` reads the parameters.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import yaml

from iil_robot.cli.checks import CheckResult
from iil_robot.config import config_path
from iil_robot.config.profiles import RobotProfile

SERVO_PARAMETERS = ("moveit_servo.incoming_command_timeout", "moveit_servo.command_in_type",
                    "moveit_servo.cartesian_command_in_topic")
MUX_PARAMETERS = ("rate", "topics.policy.timeout")
LONG_TIMEOUT = 0.5
"""s: a Servo timeout above this keeps a dead mux's last command going too long."""


@dataclass(frozen=True)
class MuxSide:
    """What the mux sends, as Servo should see it."""

    topic: str
    """The absolute topic the mux's ``arm/cmd`` is published on."""
    rate: float
    """The mux's control rate (Hz): it sends a command at least every 1/rate s."""
    policy_timeout: float
    """Seconds after the last proposal that the mux holds the arm."""
    source: str
    """Where these came from (the running mux, or the parameter files)."""


def resolve_topic(topic: str, node: str) -> str:
    """A topic name as ROS resolves it for ``node`` (``/ns/name``): ``~/x`` is under the node, ``x`` under its
    namespace."""
    node = "/" + node.strip("/")
    namespace = node.rsplit("/", 1)[0] or "/"
    if topic.startswith("~/"):
        return f"{node}/{topic[2:]}"
    if topic.startswith("/"):
        return topic
    return f"{namespace.rstrip('/')}/{topic}"


def mux_side(profile: RobotProfile, running: Mapping[str, Any] | None) -> MuxSide:
    """The mux's side: the running mux's rate and policy timeout when it answered, else the parameter files'."""
    topic = resolve_topic(profile.remappings.get("arm/cmd", "arm/cmd"), "/mux")
    if running and all(name in running for name in MUX_PARAMETERS):
        return MuxSide(topic, float(running["rate"]), float(running["topics.policy.timeout"]), "the running /mux")
    files = yaml.safe_load(config_path("mux.yaml").read_text())["mux"]["ros__parameters"]
    overrides = profile.node_parameters("mux")
    rate = float(overrides.get("rate", files["rate"]))
    timeout = float(overrides.get("topics.policy.timeout", files["topics"]["policy"]["timeout"]))
    return MuxSide(topic, rate, timeout, f"config/mux.yaml and the {profile.name} profile (no /mux answered)")


def check_servo(node: str, servo: Mapping[str, Any] | None, mux: MuxSide) -> list[CheckResult]:
    """One check per Servo parameter (or one failure when the node did not answer)."""
    if servo is None:
        return [CheckResult("servo node", "fail", f"{node} did not answer a parameter request",
                            "start MoveIt Servo (servo_node) on this ROS_DOMAIN_ID, or give its name: --servo /ns/servo_node")]
    missing = [name for name in SERVO_PARAMETERS if name not in servo]
    if missing:
        return [CheckResult("servo node", "fail", f"{node} has no parameters {missing}: not a Jazzy MoveIt Servo node?",
                            "point --servo at the servo_node (its parameters are declared under moveit_servo.)")]
    return [_command_type(servo["moveit_servo.command_in_type"]),
            _timeout(float(servo["moveit_servo.incoming_command_timeout"]), mux),
            _topic(resolve_topic(str(servo["moveit_servo.cartesian_command_in_topic"]), node), mux)]


def _command_type(value: str) -> CheckResult:
    if value == "speed_units":
        return CheckResult("servo command type", "ok", "speed_units: m/s and rad/s, as the mux sends")
    return CheckResult("servo command type", "fail",
                       f"command_in_type={value!r}: Servo would read the mux's m/s and rad/s as fractions of its scale",
                       "set moveit_servo.command_in_type: speed_units in the Servo parameter file")


def _timeout(timeout: float, mux: MuxSide) -> CheckResult:
    period = 1.0 / mux.rate
    together = (f"Servo halts after {timeout:g} s without a command; the mux ({mux.source}) sends one at least every "
                f"{period:g} s and holds the arm {mux.policy_timeout:g} s after the policy's last proposal")
    if timeout <= period:
        return CheckResult("servo timeout", "fail", together + ": Servo halts between two commands",
                           f"raise moveit_servo.incoming_command_timeout above {2 * period:g} s or the mux's rate")
    if timeout < 2 * period:
        return CheckResult("servo timeout", "warn", together + ": one late tick halts the arm",
                           f"set moveit_servo.incoming_command_timeout to at least {2 * period:g} s")
    if timeout > LONG_TIMEOUT:
        return CheckResult("servo timeout", "warn", together + f": a mux that dies keeps the arm going {timeout:g} s",
                           "keep moveit_servo.incoming_command_timeout near 0.1 s")
    return CheckResult("servo timeout", "ok", together)


def _topic(servo_topic: str, mux: MuxSide) -> CheckResult:
    if servo_topic == mux.topic:
        return CheckResult("servo command topic", "ok", f"Servo listens on {servo_topic}, where the mux publishes")
    return CheckResult("servo command topic", "fail", f"Servo listens on {servo_topic}, the mux publishes on {mux.topic}",
                       "remap the mux's arm/cmd to Servo's topic in the robot profile (remappings: arm/cmd: ...), or set "
                       "moveit_servo.cartesian_command_in_topic")
