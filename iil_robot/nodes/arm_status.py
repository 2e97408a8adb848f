"""``arm_status`` node: a driver's own status message as a DiagnosticStatus the mux's arm-fault lock watches.

For drivers that report faults only in their own message type, e.g. franka_ros2's robot mode::

    message_type: franka_msgs/msg/FrankaRobotState
    topic: /franka_robot_state_broadcaster/robot_state
    field: robot_mode
    ok_values: [1, 2]            # ROBOT_MODE_IDLE, ROBOT_MODE_MOVE; a reflex (4) or a user stop (5) is a fault
    status_name: franka_robot_mode

Publishes on ``/diagnostics`` the status ``status_name``: OK while the field holds one of
``ok_values``, ERROR otherwise, STALE when no message came for ``timeout`` s; at ``rate`` and at
once when the verdict changes. The mux's lock (``locks.<name>.type: diagnostics``, ``status`` =
``status_name``) holds the arm on ERROR and STALE. See ``iil_robot.command.arm_status``.
"""
from __future__ import annotations

from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from iil_robot.command.arm_status import ArmStatus, ArmStatusConfig, ArmStatusError, field_value, value_name
from iil_robot.nodes.common import SENSOR_QOS, IilNode, ParameterError, declare, interface_class, run

LEVELS = {"ok": DiagnosticStatus.OK, "error": DiagnosticStatus.ERROR, "stale": DiagnosticStatus.STALE}


class ArmStatusNode(IilNode):
    def __init__(self) -> None:
        super().__init__("arm_status")
        type_name = declare(self, "message_type", "", "The driver's status message, e.g. franka_msgs/msg/FrankaRobotState")
        topic = declare(self, "topic", "", "Where the driver publishes it, e.g. /franka_robot_state_broadcaster/robot_state")
        if not type_name or not topic:
            raise ParameterError("arm_status: set message_type and topic (a robot profile does: config/profiles/panda.yaml)")
        try:
            config = ArmStatusConfig(
                field=declare(self, "field", "", "Dotted path of the integer or boolean field to judge, e.g. robot_mode"),
                ok_values=tuple(declare(self, "ok_values", [1, 2], "Values that mean the arm may move; others are faults")),
                timeout=declare(self, "timeout", 0.5, "Seconds without a message before the status is STALE", 0.01, 60.0),
            )
        except ArmStatusError as err:
            raise ParameterError(f"arm_status: {err}") from err
        self.status_name = declare(self, "status_name", "arm_status", "Name of the DiagnosticStatus (the mux lock's status)")
        rate = declare(self, "rate", 10.0, "Publishing rate (Hz); keep it above 1 / the mux lock's timeout", 1.0, 100.0)
        msg_type = interface_class(type_name, "drop the arm_status node and the mux's arm_fault lock from the profile")
        self.status = ArmStatus(config, lambda value: value_name(msg_type, config.field, value))
        self.last_level = ""
        self.pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(msg_type, topic, self._on_status, SENSOR_QOS)
        self.create_timer(1.0 / rate, self._publish)
        self.get_logger().info(f"{type_name}.{config.field} on {topic} -> /diagnostics status {self.status_name!r} "
                               f"(ok: {list(config.ok_values)})")

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_status(self, msg: Any) -> None:
        try:
            self.status.update(field_value(msg, self.status.config.field), self._now())
        except ArmStatusError as err:  # the status goes stale: the mux holds the arm
            self.get_logger().error(f"{err}; the status goes stale", throttle_duration_sec=2.0)
            return
        if self.status.verdict(self._now()).level != self.last_level:
            self._publish()

    def _publish(self) -> None:
        verdict = self.status.verdict(self._now())
        if verdict.level != self.last_level:
            if verdict.level == "ok":  # two call sites: an rclpy log call site keeps the severity of its first call
                self.get_logger().info(f"{self.status_name}: ok: {verdict.message}")
            else:
                self.get_logger().error(f"{self.status_name}: {verdict.level}: {verdict.message}")
            self.last_level = verdict.level
        status = DiagnosticStatus(name=self.status_name, level=LEVELS[verdict.level], message=verdict.message,
                                  values=[KeyValue(key="value", value=str(verdict.value))])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.pub.publish(array)


def main(args: list[str] | None = None) -> int:
    return run(ArmStatusNode, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
