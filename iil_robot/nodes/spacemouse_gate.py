"""``spacemouse_gate`` node: the operator's SpaceMouse as a human command with an engagement state.

Input (``input`` parameter):
- ``device``: reads the SpaceMouse itself (pyspacemouse, own thread, latest state only) and, with
  ``publish_spacenav``, republishes it as the ``spacenav`` driver would (``spacenav/joy``,
  ``spacenav/twist``) for tools that expect those topics;
- ``joy``: consumes ``spacenav/joy`` (sensor_msgs/Joy) from the ``spacenav`` driver or a
  simulated operator; buttons work;
- ``twist``: consumes ``spacenav/twist`` (geometry_msgs/Twist, normalised deflection); no buttons.

With ``operator_frame: tool`` it also subscribes ``ee_pose`` (PoseStamped in ``frame_id``) for the
tool's orientation.

Output: ``human/cmd`` (TwistStamped, at ``rate`` while the operator holds control, at ``idle_rate``
otherwise, and at once on a takeover, a gripper change or an episode mark), ``human/engaged`` (Bool,
latched), ``human/gripper`` (Float64 closure, latched), ``episode/request`` (the success, failure and reset buttons,
for the episode manager) and ``/diagnostics``.
"""
from __future__ import annotations

import math
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, Twist, TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import Joy
from std_msgs.msg import Bool, Float64, String

from iil_robot.command.chords import ChordConfig
from iil_robot.command.gate import AXES, CORRUPT_AXIS, ButtonMap, Gate, GateConfig, GateOutput, corrupt_axes
from iil_robot.nodes.common import (
    COMMAND_QOS,
    EVENTS_QOS,
    LATCHED_QOS,
    SENSOR_QOS,
    IilNode,
    ParameterError,
    declare,
    declare_floats,
    run,
    twist_stamped,
    twist_values,
)

INPUTS = ("device", "joy", "twist")


def gate_config_from_parameters(node: Node) -> GateConfig:
    """Declare the gate's parameters (one per GateConfig field) and build the config."""
    d = GateConfig()
    b = ButtonMap()
    buttons = ButtonMap(**{
        name: declare(node, f"buttons.{name}", getattr(b, name), f"Button index for {name} (-1 = none)", -1, 31)
        for name in vars(b)
    })
    c = ChordConfig()
    chords = ChordConfig(
        buttons=(declare(node, "chords.first_button", c.buttons[0], "One button of the chord", 0, 31),
                 declare(node, "chords.second_button", c.buttons[1], "The other button of the chord", 0, 31)),
        tap=declare(node, "chords.tap", c.tap, "Request of a short chord of both buttons: success, failure, reset, "
                    "or empty (none)"),
        long=declare(node, "chords.long", c.long, "Request of both buttons held for chords.long_press_time (or empty)"),
        window=declare(node, "chords.window", c.window, "Seconds between the two presses that still make a chord "
                       "(each press of those buttons waits this long)", 0.01, 1.0),
        long_press_time=declare(node, "chords.long_press_time", c.long_press_time, "Seconds both buttons are held for "
                                "the long chord", 0.1, 10.0),
    )
    return GateConfig(
        deadband=declare(node, "deadband", d.deadband, "Deflection ignored around centre (fraction)", 0.0, 0.95),
        axis_scale=declare_floats(node, "axis_scale", d.axis_scale,
                                  "Full-deflection speed per axis x,y,z (m/s), roll,pitch,yaw (rad/s)"),
        axis_sign=declare_floats(node, "axis_sign", d.axis_sign, "+1/-1 per device axis, REP-103 order: mirrors an axis "
                                 "(before the operator frame's rotation)"),
        operator_frame=declare(node, "operator_frame", d.operator_frame, "base: device axes are the command frame's turned "
                               "by operator_yaw; tool: the end effector's (orientation from ee_pose)"),
        operator_yaw=declare(node, "operator_yaw", d.operator_yaw, "Degrees about z from the command frame (or the tool) to "
                             "the device axes: 0 behind the robot, 180 facing it (iil-robot doctor --calibrate)",
                             -360.0, 360.0),
        tool_pose_timeout=declare(node, "tool_pose_timeout", d.tool_pose_timeout, "tool frame: an ee_pose older than "
                                  "this (s) zeroes the command", 0.001, 10.0),
        active_axes=declare(node, "active_axes", d.active_axes, "translation or 6dof"),
        engage_threshold=declare(node, "engage_threshold", d.engage_threshold, "Deflection that starts an intervention",
                                 0.0, 1.0),
        engage_time=declare(node, "engage_time", d.engage_time, "Seconds above threshold before engaging", 0.0, 5.0),
        release_time=declare(node, "release_time", d.release_time, "Seconds at rest before handing back", 0.0, 30.0),
        takeover_mode=declare(node, "takeover_mode", d.takeover_mode, "hold or toggle"),
        buttons=buttons,
        chords=chords,
        initial_gripper=declare(node, "initial_gripper", d.initial_gripper, "Gripper closure at start (0 open, 1 closed)",
                                0.0, 1.0),
    )


class SpaceMouseGate(IilNode):
    def __init__(self) -> None:
        super().__init__("spacemouse_gate")
        self.gate = Gate(gate_config_from_parameters(self))
        self.input = declare(self, "input", "device", "device (pyspacemouse), joy (spacenav/joy) or twist (spacenav/twist)")
        if self.input not in INPUTS:
            raise ParameterError(f"parameter 'input'={self.input!r} must be one of {INPUTS}")
        self.frame_id = declare(self, "frame_id", "base_link", "Frame of the human command (as the mux's)")
        rate = declare(self, "rate", 100.0, "Publishing rate (Hz) of the human command while the operator holds control; "
                       "also the device polling rate", 1.0, 1000.0)
        idle_rate = declare(self, "idle_rate", 20.0, "Publishing rate (Hz) of the human command while the operator does not "
                            "hold control: the mux only needs it fresh (within its human timeout)", 1.0, 1000.0)
        if idle_rate > rate:
            raise ParameterError(f"parameter 'idle_rate'={idle_rate} must be <= 'rate'={rate}")
        self.idle_period = 1.0 / idle_rate - 0.5 / rate  # less half a tick: one a hair early does not wait for the next
        self.last_cmd = -math.inf
        self.input_timeout = declare(self, "input_timeout", 0.5,
                                     "joy/twist input: a deflected stick silent this long (s) counts as a lost device; 0 = off",
                                     0.0, 10.0)
        self.publish_spacenav = declare(self, "publish_spacenav", True,
                                        "device input: also publish spacenav/joy and spacenav/twist")
        self.clock = time.monotonic

        self.cmd_pub = self.create_publisher(TwistStamped, "human/cmd", COMMAND_QOS)
        self.engaged_pub = self.create_publisher(Bool, "human/engaged", LATCHED_QOS)
        self.gripper_pub = self.create_publisher(Float64, "human/gripper", LATCHED_QOS)
        self.request_pub = self.create_publisher(String, "episode/request", EVENTS_QOS)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

        self.axes: tuple[float, ...] = (0.0,) * 6
        self.buttons: tuple[int, ...] = ()
        self.last_input = -1.0
        self.connected = self.input != "device"
        self.error = ""
        device_name = declare(self, "device_name", "", "device input: pyspacemouse device name; empty = first found")
        reconnect_period = declare(self, "reconnect_period", 1.0, "device input: seconds between reconnect attempts", 0.1, 60.0)
        self.reader = None
        if self.input == "device":
            self._start_reader(device_name, reconnect_period)
            if self.publish_spacenav:
                self.joy_pub = self.create_publisher(Joy, "spacenav/joy", SENSOR_QOS)
                self.twist_pub = self.create_publisher(Twist, "spacenav/twist", SENSOR_QOS)
        elif self.input == "joy":
            self.create_subscription(Joy, "spacenav/joy", self._on_joy, SENSOR_QOS)
        else:
            self.create_subscription(Twist, "spacenav/twist", self._on_twist, SENSOR_QOS)

        if self.gate.config.operator_frame == "tool":
            self.create_subscription(PoseStamped, "ee_pose", self._on_ee_pose, SENSOR_QOS)

        self._publish_state(self.gate.device_lost(), force=True)
        self.create_timer(1.0 / rate, self._on_timer)
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(f"input: {self.input}; axes: {self.gate.config.active_axes}; "
                               f"takeover: {self.gate.config.takeover_mode}")

    # -- inputs ----------------------------------------------------------------------------

    def _start_reader(self, device_name: str, reconnect_period: float) -> None:
        from iil_robot.command.spacemouse import ReaderConfig, SpaceMouseReader  # pyspacemouse only when reading the device

        config = ReaderConfig(device_name=device_name, reconnect_period=reconnect_period)
        self.reader = SpaceMouseReader(config, log=lambda text: self.get_logger().warn(text))
        self.reader.start()

    def _on_joy(self, msg: Joy) -> None:
        if len(msg.axes) < len(AXES):
            self.get_logger().error(
                f"spacenav/joy has {len(msg.axes)} axes, need 6 ({', '.join(AXES)}); ignoring it. "
                "Check the input topic remapping.", throttle_duration_sec=2.0)
            return
        self._new_input(tuple(msg.axes[:6]), tuple(msg.buttons))

    def _on_ee_pose(self, msg: PoseStamped) -> None:
        if msg.header.frame_id != self.frame_id:
            self.get_logger().error(f"ee_pose in frame {msg.header.frame_id!r}, not {self.frame_id!r}: refused, the tool "
                                    "frame needs the orientation in the command frame (remap ee_pose or set frame_id)",
                                    throttle_duration_sec=2.0)
            return
        q = msg.pose.orientation
        error = self.gate.tool_orientation((q.x, q.y, q.z, q.w), self.clock())
        if error:
            self.get_logger().error(f"ee_pose: {error}", throttle_duration_sec=2.0)

    def _on_twist(self, msg: Twist) -> None:
        self._new_input(twist_values(msg), ())

    def _new_input(self, axes: tuple[float, ...], buttons: tuple[int, ...]) -> None:
        corrupt = corrupt_axes(axes)
        if corrupt:
            values = ", ".join(f"{AXES[i]}={axes[i]:.3g}" for i in corrupt)
            self.get_logger().error(f"{self.input} input has corrupt axis values ({values}; normalised deflection is "
                                    f"within +-{CORRUPT_AXIS:g}): counted as no deflection. Check the driver.",
                                    throttle_duration_sec=2.0)
        if not self.buttons and buttons:
            for name, index in self.gate.missing_buttons(len(buttons)).items():
                self.get_logger().warn(f"buttons.{name}={index} but the device has {len(buttons)} buttons: {name} is unavailable")
        self.axes, self.buttons, self.last_input, self.error = axes, buttons, self.clock(), ""
        out = self.gate.update(axes, buttons, self.last_input)
        # A takeover, the gripper or an episode mark goes out at once; the command itself at `rate` (on every input
        # too, a 60 Hz joy stream made human/cmd 160 Hz, and every node downstream paid for each message).
        if out.engaged_changed or out.gripper_changed or out.events:
            self._publish_state(out)

    def _on_timer(self) -> None:
        now = self.clock()
        if self.reader is not None:
            sample = self.reader.latest()
            self.error = sample.error or ""
            if not sample.connected:
                if self.connected:
                    self.get_logger().error(f"SpaceMouse lost: {self.error}")
                self.connected = False
                self._publish_state(self.gate.device_lost())
                return
            if not self.connected:
                self.get_logger().info("SpaceMouse connected")
            self.connected = True
            self.axes, self.buttons = sample.axes, sample.buttons
            if self.publish_spacenav:
                self._publish_spacenav()
        elif self._input_lost(now):
            self._publish_state(self.gate.device_lost())
            return
        out = self.gate.update(self.axes, self.buttons, now)
        if out.frame_error:
            self.get_logger().error(out.frame_error, throttle_duration_sec=2.0)
        # idle, every human/cmd costs the mux and the recorder a wake-up for nothing: send only what keeps it fresh
        if out.engaged or out.engaged_changed or out.gripper_changed or out.events or now - self.last_cmd >= self.idle_period:
            self._publish_state(out)

    def _input_lost(self, now: float) -> bool:
        """A deflected stick whose stream stopped: the driver or simulated operator died."""
        silent = self.last_input >= 0 and self.input_timeout > 0 and now - self.last_input > self.input_timeout
        deflected = any(abs(a) > self.gate.config.deadband for a in self.axes)
        if silent and deflected:
            self.error = f"{self.input} input silent for {now - self.last_input:.2f} s with the stick deflected"
            self.get_logger().error(f"{self.error}: zero command, gate released", throttle_duration_sec=2.0)
            self.axes = (0.0,) * 6
            return True
        return False

    # -- outputs ---------------------------------------------------------------------------

    def _publish_state(self, out: GateOutput, force: bool = False) -> None:
        # The command goes out before the engagement flag, so the mux already holds the
        # input that engaged when the flag arrives and forwards exactly that one.
        self.cmd_pub.publish(twist_stamped(out.twist, self.frame_id, self.get_clock().now().to_msg()))
        self.last_cmd = self.clock()
        if out.gripper_changed or force:
            self.gripper_pub.publish(Float64(data=out.gripper))
        if out.engaged_changed or force:
            if out.engaged_changed:
                self.get_logger().info(("engaged: " if out.engaged else "released: ") + out.reason)
            self.engaged_pub.publish(Bool(data=out.engaged))
        for request in out.events:  # the episode manager decides: a request in the wrong state is refused there
            self.get_logger().info(f"operator asks for episode {request}")
            self.request_pub.publish(String(data=request))

    def _publish_spacenav(self) -> None:
        joy = Joy(axes=[float(a) for a in self.axes], buttons=[int(b) for b in self.buttons])
        joy.header.stamp = self.get_clock().now().to_msg()
        joy.header.frame_id = self.frame_id
        self.joy_pub.publish(joy)
        twist = Twist()
        (twist.linear.x, twist.linear.y, twist.linear.z, twist.angular.x, twist.angular.y, twist.angular.z) = self.axes
        self.twist_pub.publish(twist)

    def _publish_diagnostics(self) -> None:
        status = DiagnosticStatus(name="spacemouse_gate: input", hardware_id=self.input)
        status.level = DiagnosticStatus.OK if self.connected and not self.error else DiagnosticStatus.ERROR
        status.message = self.error or ("engaged" if self.gate.engaged else "idle")
        status.values = [
            KeyValue(key="input", value=self.input),
            KeyValue(key="connected", value=str(self.connected)),
            KeyValue(key="engaged", value=str(self.gate.engaged)),
            KeyValue(key="gripper", value=f"{self.gate.gripper:.2f}"),
        ]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)

    def destroy_node(self) -> None:
        if self.reader is not None:
            self.reader.stop()
        super().destroy_node()


def _release(node: SpaceMouseGate) -> None:
    """On exit: zero command and released, so the mux hands back explicitly."""
    node._publish_state(node.gate.device_lost(), force=True)


def main(args: list[str] | None = None) -> int:
    return run(SpaceMouseGate, on_exit=_release, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
