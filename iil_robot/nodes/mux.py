"""``mux`` node: arbitration between operator and policy; the only node that commands the arm.

Subscribes each configured source (``topics.<name>.*``) and lock (``locks.<name>.*``), the
end-effector pose for the workspace box, and publishes the arm command, the gripper command,
one step record per tick, intervention events and diagnostics. See ``iil_robot.command.mux``.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.clock import Clock, ClockType
from std_msgs.msg import Bool, Float64, String
from std_srvs.srv import SetBool, Trigger

from iil_robot.command.gripper import GripperConfig
from iil_robot.command.mux import Command, LockConfig, Mux, MuxConfig, Output, SourceConfig, diagnostic_fault
from iil_robot.command.safety import Limits, WorkspaceBox
from iil_robot.data.records import Proposal, RecordError
from iil_robot.nodes.clients.gripper_output import RANGES as GRIPPER_RANGES
from iil_robot.nodes.clients.gripper_output import GripperOutput
from iil_robot.nodes.common import (
    COMMAND_QOS,
    EVENTS_QOS,
    LATCHED_QOS,
    RECORD_QOS,
    SENSOR_QOS,
    IilNode,
    ParameterError,
    declare,
    declare_config,
    declare_floats,
    override_names,
    run,
    twist_stamped,
    twist_values,
)

MIN_WATCHDOG_DELAY = 1e-4  # s: a deadline already due fires at once, not in a busy loop
MAX_WATCHDOG_DELAY = 1.0  # s: next_deadline is never further than a timeout or a tick; this only bounds a surprise


LIMIT_NAMES = tuple(f"limits.{name}" for name in
                    ("max_linear_speed", "max_angular_speed", "max_linear_accel", "max_angular_accel"))
"""The parameters that may change at run time (``ros2 param set``): validated as at start-up, applied together."""

DEFAULT_SOURCES = (
    SourceConfig("spacemouse", "human", "human/cmd", 0.1, 100, "human/engaged", "human/gripper"),
    SourceConfig("policy", "policy", "policy/proposal", 0.25, 10),
)


class MuxNode(IilNode):
    def __init__(self) -> None:
        super().__init__("mux")
        self.frame_id = declare(self, "frame_id", "base_link", "Frame of the arm command (the robot base or servo frame)")
        config = MuxConfig(
            sources=self._declare_sources(),
            locks=self._declare_locks(),
            limits=self._declare_limits(),
            frame_id=self.frame_id,
            rate=declare(self, "rate", 20.0, "Control rate (Hz): self-ticks while the policy is not fresh, and a command "
                         "at least every 1/rate s (MoveIt Servo halts after its incoming_command_timeout)", 0.5, 1000.0),
            pause_on_help_request=declare(self, "pause_on_help_request", False,
                                          "Hold the arm while the policy requests help (help/request) "
                                          "and no operator is engaged"),
        )
        diagnostics = declare(self, "diagnostics_rate", 1.0, "Diagnostics publishing rate (Hz)", 0.1, 50.0)
        self.mux = Mux(config)
        self.changeable(LIMIT_NAMES, self._prepare_limits)
        self.clock = time.monotonic
        self.last_gripper: float | None = None

        self.arm_pub = self.create_publisher(TwistStamped, "arm/cmd", COMMAND_QOS)
        self.gripper_pub = self.create_publisher(Float64, "arm/gripper", COMMAND_QOS)
        self.gripper_out = GripperOutput(
            self, declare_config(self, GripperConfig, "gripper.", GRIPPER_RANGES),
            declare(self, "gripper.action", "gripper/gripper_cmd", "Action name: GripperCommand's, or the Franka "
                    "gripper's namespace (its grasp and move actions)"))
        if self.gripper_out.error:  # the node runs on (diagnostics, bags) with the arm held: it cannot grasp
            self.get_logger().error(f"{self.gripper_out.error}. The arm is held until the mux restarts with a gripper "
                                    "output it can use")
            self.mux.set_output_fault("gripper output unavailable")
        self.step_pub = self.create_publisher(String, "step", RECORD_QOS)
        self.intervention_pub = self.create_publisher(String, "intervention", EVENTS_QOS)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

        for source in config.sources:
            self._subscribe_source(source)
        for lock in config.locks:
            self._subscribe_lock(lock)
        if config.limits.workspace.enabled:
            self.create_subscription(PoseStamped, "ee_pose", self._on_ee_pose, SENSOR_QOS)
        self.create_service(SetBool, "~/pause", self._on_pause)
        self.create_service(Trigger, "~/recover", self._on_recover)
        self.create_subscription(Bool, "help/request", self._on_help_request, LATCHED_QOS)

        # the watchdog sleeps until the mux's next deadline (a timeout, a self-tick), re-armed after every update:
        # a fixed-rate poll cost a fifth of a core at 200 Hz and still saw a timeout up to a period late
        self.watchdog = self.create_timer(1.0 / config.rate, self._update, clock=Clock(clock_type=ClockType.STEADY_TIME))
        if "watchdog_rate" in getattr(self, "_parameter_overrides", {}):
            self.get_logger().warn("watchdog_rate is no longer used and can be removed: the mux wakes at each timeout and "
                                   "tick instead of polling")
        self.create_timer(1.0 / diagnostics, self._publish_diagnostics)
        self.get_logger().info(
            "sources: " + ", ".join(f"{s.name} ({s.type}, {s.topic}, prio {s.priority})" for s in config.sources)
            + "; locks: " + (", ".join(f"{lock.name} ({lock.topic}{', latching' if lock.latching else ''})"
                                      for lock in config.locks) or "none")
            + f"; gripper: {self.gripper_out.config.output} ({self.gripper_out.config.mode})"
        )

    # -- parameters ------------------------------------------------------------------------

    def _declare_sources(self) -> tuple[SourceConfig, ...]:
        names = override_names(self, "topics")
        if not names:
            return DEFAULT_SOURCES
        sources = []
        for name in names:
            p = f"topics.{name}"
            kind = declare(self, f"{p}.type", "policy", "Source type: human (gate output) or policy (proposals)")
            topic = declare(self, f"{p}.topic", "", "Command topic (human: TwistStamped; policy: proposal String)")
            base = topic.rsplit("/", 1)[0] + "/" if "/" in topic else ""
            sources.append(SourceConfig(
                name=name, type=kind, topic=topic,
                timeout=declare(self, f"{p}.timeout", 0.25, "Input older than this (s) is stale", 0.001, 10.0),
                priority=declare(self, f"{p}.priority", 0, "Higher wins; locks block lower priorities", 0, 255),
                engaged_topic=declare(self, f"{p}.engaged_topic", base + "engaged",
                                      "Human: Bool engagement topic") if kind == "human" else "",
                gripper_topic=declare(self, f"{p}.gripper_topic", base + "gripper",
                                      "Human: Float64 gripper topic") if kind == "human" else "",
            ))
        return tuple(sources)

    def _declare_locks(self) -> tuple[LockConfig, ...]:
        return tuple(
            LockConfig(
                name=name,
                topic=declare(self, f"locks.{name}.topic", "", "Bool topic (True locks), or a DiagnosticArray topic"),
                timeout=declare(self, f"locks.{name}.timeout", 0.0, "Heartbeat timeout (s); 0 = none", 0.0, 10.0),
                priority=declare(self, f"locks.{name}.priority", 255, "Blocks sources of lower priority", 0, 255),
                type=declare(self, f"locks.{name}.type", "bool",
                             "bool (std_msgs/Bool) or diagnostics (a DiagnosticStatus: ERROR or STALE locks)"),
                status=declare(self, f"locks.{name}.status", "", "diagnostics: the DiagnosticStatus name to watch"),
                locked_when=declare(self, f"locks.{name}.locked_when", True,
                                    "bool: the value that locks (false for a 'ready' or 'program running' flag)"),
                latching=declare(self, f"locks.{name}.latching", False,
                                 "An arm fault: stays locked after it clears until ~/recover is called"),
            )
            for name in override_names(self, "locks")
        )

    def _declare_limits(self) -> Limits:
        d = Limits()
        return Limits(
            max_linear_speed=declare(self, "limits.max_linear_speed", d.max_linear_speed, "Max linear speed (m/s)", 0.001, 10.0),
            max_angular_speed=declare(self, "limits.max_angular_speed", d.max_angular_speed, "Max angular speed (rad/s)",
                                      0.001, 20.0),
            max_linear_accel=declare(self, "limits.max_linear_accel", d.max_linear_accel, "Max linear accel (m/s^2); 0 = off",
                                     0.0, 100.0),
            max_angular_accel=declare(self, "limits.max_angular_accel", d.max_angular_accel,
                                      "Max angular accel (rad/s^2); 0 = off", 0.0, 200.0),
            workspace=self._declare_workspace(),
        )

    def _declare_workspace(self) -> WorkspaceBox:
        box = WorkspaceBox()
        corners = {name: declare_floats(self, f"workspace.{name}", getattr(box, name), text) for name, text in (
            ("min_xyz", "Workspace box lower corner x, y, z (m, command frame)"),
            ("max_xyz", "Workspace box upper corner x, y, z (m, command frame)"),
            ("min_rpy", "Lowest |roll|, pitch, yaw of the end effector (rad; roll by its absolute value); "
                        "0, -pi/2, -pi = no limit"),
            ("max_rpy", "Highest |roll|, pitch, yaw of the end effector (rad); pi, pi/2, pi = no limit"))}
        for name, values in corners.items():
            if len(values) != 3:
                raise ParameterError(f"workspace.{name} needs 3 values, got {list(values)}")
        return WorkspaceBox(
            enabled=declare(self, "workspace.enabled", box.enabled, "Enforce the workspace box and orientation ranges "
                            "(needs ee_pose in frame_id)"),
            pose_timeout=declare(self, "workspace.pose_timeout", box.pose_timeout,
                                 "EE pose older than this (s) holds the arm", 0.001, 10.0),
            linear_decel=declare(self, "workspace.linear_decel", box.linear_decel,
                                 "Deceleration (m/s^2) the arm brakes at before a wall", 0.01, 100.0),
            angular_decel=declare(self, "workspace.angular_decel", box.angular_decel,
                                  "Deceleration (rad/s^2) the arm brakes at before an orientation limit", 0.01, 200.0),
            latency=declare(self, "workspace.latency", box.latency, "Every delay (s) from a pose's measurement to the arm "
                            "acting on a command sent in reply, beyond the control period and the pose's age at the mux: "
                            "the pose's way here, the command's to the motors. Too small overshoots", 0.0, 1.0),
            **corners,  # type: ignore[arg-type]
        )

    def _prepare_limits(self, values: dict[str, float]) -> Callable[[], None]:
        limits = replace(self.mux.config.limits, **{name.removeprefix("limits."): v for name, v in values.items()})
        try:
            limits.validate()
        except ValueError as err:
            raise ParameterError(f"limits: {err}") from err
        return lambda: self.mux.set_limits(limits)

    # -- inputs ----------------------------------------------------------------------------

    def _subscribe_source(self, source: SourceConfig) -> None:
        name = source.name
        if source.type == "policy":
            self.create_subscription(String, source.topic, lambda m: self._on_proposal(name, m), RECORD_QOS)
            return
        self.create_subscription(TwistStamped, source.topic, lambda m: self._on_human(name, m), COMMAND_QOS)
        self.create_subscription(Bool, source.engaged_topic, lambda m: self._on_engaged(name, m), LATCHED_QOS)
        self.create_subscription(Float64, source.gripper_topic, lambda m: self._on_gripper(name, m), LATCHED_QOS)

    def _on_human(self, name: str, msg: TwistStamped) -> None:
        self._input(self.mux.human_command(name, twist_values(msg.twist), self.clock()))

    def _on_engaged(self, name: str, msg: Bool) -> None:
        self.mux.human_engaged(name, msg.data, self.clock(), "gate engaged" if msg.data else "gate released")
        self._input(None)

    def _on_gripper(self, name: str, msg: Float64) -> None:
        self._input(self.mux.human_gripper(name, msg.data, self.clock()))

    def _on_proposal(self, name: str, msg: String) -> None:
        try:
            error = self.mux.proposal(name, Proposal.decode(msg.data), self.clock())
        except RecordError as err:
            error = self.mux.reject(name, f"undecodable proposal: {err}")
        self._input(error, proposal_arrived=error is None)

    def _subscribe_lock(self, lock: LockConfig) -> None:
        if lock.type == "diagnostics":
            self.create_subscription(DiagnosticArray, lock.topic, lambda m: self._on_diagnostic_lock(lock, m), 10)
        else:
            self.create_subscription(Bool, lock.topic, lambda m: self._on_lock(lock, m.data == lock.locked_when),
                                     COMMAND_QOS)

    def _on_diagnostic_lock(self, lock: LockConfig, msg: DiagnosticArray) -> None:
        fault = diagnostic_fault([(s.name, ord(s.level) if isinstance(s.level, bytes) else s.level) for s in msg.status],
                                 lock.status)
        if fault is not None:
            self._on_lock(lock, fault)

    def _on_lock(self, lock: LockConfig, locked: bool) -> None:
        if locked and lock.latching and not self.mux.latched(lock.name):
            self.get_logger().error(f"arm fault from {lock.name} ({lock.topic}): arm held until an operator recovers it "
                                    f"(ros2 service call {self.get_fully_qualified_name()}/recover std_srvs/srv/Trigger)")
        self.mux.lock(lock.name, locked, self.clock())
        self._input(None)

    def _on_ee_pose(self, msg: PoseStamped) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        self._input(self.mux.ee_pose((p.x, p.y, p.z), (q.x, q.y, q.z, q.w), msg.header.frame_id, self.clock()))

    def _on_help_request(self, msg: Bool) -> None:
        self.mux.help_request(msg.data)
        self._input(None)

    def _on_pause(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        self.mux.set_paused(request.data)
        self.get_logger().warn("paused: arm held" if request.data else "resumed")
        self._update()
        response.success, response.message = True, "paused" if request.data else "resumed"
        return response

    def _on_recover(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self.mux.recover(self.clock())
        if response.success:  # two call sites: an rclpy log call site keeps the severity of its first call
            self.get_logger().warn(f"operator recovery: {response.message}")
        else:
            self.get_logger().error(f"operator recovery refused: {response.message}")
        self._update()
        return response

    def _input(self, error: str | None, proposal_arrived: bool = False) -> None:
        if error:
            self.get_logger().error(error, throttle_duration_sec=1.0)
        self._update(proposal_arrived)

    def _update(self, proposal_arrived: bool = False) -> None:
        now = self.clock()
        self._publish(self.mux.update(now, self._stamp(), proposal_arrived))
        delay = self.mux.next_deadline(now) - self.clock()
        self.watchdog.timer_period_ns = round(min(max(delay, MIN_WATCHDOG_DELAY), MAX_WATCHDOG_DELAY) * 1e9)
        self.watchdog.reset()

    # -- outputs ---------------------------------------------------------------------------

    def _stamp(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _publish(self, out: Output) -> None:
        if out.intervention is not None:
            event = out.intervention
            verb = "operator took over" if event.intervening else f"handed back after {event.duration:.2f} s"
            self.get_logger().info(f"intervention #{event.count} ({event.source_name}): {verb}: {event.reason}")
            self.intervention_pub.publish(String(data=event.encode()))
        if out.command is not None:
            self.publish_command(out.command, with_gripper=out.step is not None)
        if out.step is not None:
            self.step_pub.publish(String(data=out.step.encode()))

    def publish_command(self, command: Command, with_gripper: bool = True) -> None:
        """Arm command now; the gripper on ticks and whenever it changes (not on every forward)."""
        self.arm_pub.publish(twist_stamped(command.twist, self.frame_id, self.get_clock().now().to_msg()))
        if with_gripper or command.gripper != self.last_gripper:
            self.gripper_pub.publish(Float64(data=command.gripper))
            self.last_gripper = command.gripper
        self.gripper_out.publish(command.gripper, tick=with_gripper)

    def _publish_diagnostics(self) -> None:
        status = self.mux.status(self.clock())
        sel = status.selection
        top = DiagnosticStatus(name="mux: arbitration", hardware_id=self.frame_id)
        top.level = DiagnosticStatus.OK if sel.kind != "hold" or sel.hold_reason.startswith("waiting") else DiagnosticStatus.WARN
        top.message = f"{sel.kind} ({sel.name})" if sel.kind != "hold" else f"holding: {sel.hold_reason}"
        top.values = [
            KeyValue(key="source", value=sel.kind),
            KeyValue(key="source_name", value=sel.name),
            KeyValue(key="paused", value=str(status.paused)),
            KeyValue(key="ticks", value=str(status.ticks)),
            KeyValue(key="interventions", value=str(status.interventions)),
            KeyValue(key="step_subscribers", value=str(self.step_pub.get_subscription_count())),
            KeyValue(key="step_subscriber_nodes", value=",".join(sorted(
                info.node_name for info in self.get_subscriptions_info_by_topic(self.step_pub.topic_name)))),
        ]
        array = DiagnosticArray(status=[top])
        array.header.stamp = self.get_clock().now().to_msg()
        for s in status.sources:
            d = DiagnosticStatus(name=f"mux: source {s.name}", hardware_id=self.frame_id)
            d.level = DiagnosticStatus.ERROR if s.error else DiagnosticStatus.OK
            d.message = s.error or ("selected" if s.selected else "masked" if s.masked else "fresh" if s.fresh else "stale")
            d.values = [KeyValue(key=k, value=str(v)) for k, v in (
                ("type", s.type), ("fresh", s.fresh), ("masked", s.masked), ("selected", s.selected),
                ("engaged", s.engaged), ("age_s", f"{s.age:.3f}"))]
            array.status.append(d)
        for lock in status.locks:
            d = DiagnosticStatus(name=f"mux: lock {lock.name}", hardware_id=self.frame_id)
            d.level = DiagnosticStatus.WARN if lock.locked else DiagnosticStatus.OK
            d.message = f"locked: {lock.why}" if lock.locked else "free"
            d.values = [KeyValue(key="locked", value=str(lock.locked)), KeyValue(key="age_s", value=f"{lock.age:.3f}")]
            array.status.append(d)
        self.diagnostics_pub.publish(array)


def _stop_arm(node: MuxNode) -> None:
    node.publish_command(node.mux.stop_command("mux exiting"))


def main(args: list[str] | None = None) -> int:
    return run(MuxNode, on_exit=_stop_arm, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
