"""A MoveIt Servo stand-in for ``iil-robot doctor --servo``: only the parameters the doctor reads, as Jazzy's
servo_node declares them (generate_parameter_library, namespace ``moveit_servo``), overridable with ``-p``."""
from __future__ import annotations

import rclpy
from rclpy.executors import ExternalShutdownException

PARAMETERS = {
    "moveit_servo.incoming_command_timeout": 0.1,
    "moveit_servo.command_in_type": "unitless",  # Servo's own default
    "moveit_servo.cartesian_command_in_topic": "~/delta_twist_cmds",
}


def main() -> None:
    rclpy.init()
    node = rclpy.create_node("servo_node")
    for name, default in PARAMETERS.items():
        node.declare_parameter(name, default)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
