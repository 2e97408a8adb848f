"""The mux's gripper output: its closure to the gripper driver (see ``iil_robot.command.gripper``).

Part of the ``mux`` node, not a node of its own: the mux stays the one thing that commands the
arm, and one process less runs. ``position_controller`` publishes ``std_msgs/Float64MultiArray``
on ``gripper/commands`` (a ros2_control forward/position controller: remap it to
``/<controller>/commands``) on every tick, since a topic message can miss a late subscriber and
repeating it costs nothing. ``gripper_command`` and ``franka`` send action goals, only on a change;
their types are loaded by name at start-up. When a package is missing (control_msgs and franka_msgs
are not on the pip wheels) :attr:`GripperOutput.error` says which, and the mux holds the arm. Action results say whether
an object is held: ``gripper/grasped`` (std_msgs/Float64, 1 held, 0 not) goes out each tick for
the observer (a ``float64`` field).
"""
from __future__ import annotations

from rclpy.action import ActionClient
from rclpy.node import Node
from std_msgs.msg import Float64, Float64MultiArray

from iil_robot.command.gripper import (
    GRIPPER_OUTPUTS,
    Gripper,
    GripperConfig,
    GripperTarget,
    fill_franka_grasp,
    fill_franka_move,
    fill_gripper_command,
    grasped,
)
from iil_robot.nodes.common import COMMAND_QOS, ParameterError, interface_class

RANGES = {"close_above": (0.0, 1.0), "open_below": (0.0, 1.0), "min_change": (0.001, 1.0),
          "open_position": (-10.0, 10.0), "closed_position": (-10.0, 10.0), "max_effort": (0.0, 1000.0),
          "speed": (0.001, 1.0), "epsilon": (0.0, 0.1)}


class GripperOutput:
    """Sends the gripper target to the driver; ``publish`` is called with the closure on every mux command."""

    def __init__(self, node: Node, config: GripperConfig, action: str) -> None:
        self.node, self.config = node, config
        self.gripper = Gripper(config)
        self.grasp = 0.0
        self.grasp_pub = None
        self.clients: dict[str, ActionClient] = {}
        self.error = ""
        """Why the gripper cannot be commanded (a missing action package); empty when it can."""
        if config.output == "position_controller":
            self.position_pub = node.create_publisher(Float64MultiArray, "gripper/commands", COMMAND_QOS)
            return
        if config.output == "gripper_command":
            names = {"command": action}
            type_names = {"command": GRIPPER_OUTPUTS["gripper_command"]}
        else:
            names = {"grasp": f"{action}/grasp", "move": f"{action}/move"}
            type_names = {"grasp": "franka_msgs/action/Grasp", "move": "franka_msgs/action/Move"}
        try:
            types = {key: interface_class(name, "set gripper.output=position_controller") for key, name in type_names.items()}
        except ParameterError as err:
            self.error = f"gripper output {config.output}: {err}"
            return
        self.types = types
        self.clients = {key: ActionClient(node, types[key], names[key]) for key in types}
        self.grasp_pub = node.create_publisher(Float64, "gripper/grasped", COMMAND_QOS)

    def publish(self, closure: float, tick: bool) -> None:
        if self.error:
            return
        if self.config.output == "position_controller":  # a topic: the exact target each tick, a change at once
            target = self.gripper.target(closure) if tick else self.gripper.update(closure)
            if target is not None:
                self.position_pub.publish(Float64MultiArray(data=[target.position]))
                self.gripper.sent(target)
            return
        target = self.gripper.update(closure)
        if target is not None:
            self._send_goal(target)
        if tick and self.grasp_pub is not None:
            self.grasp_pub.publish(Float64(data=self.grasp))

    def _send_goal(self, target: GripperTarget) -> None:
        key = "command" if self.config.output == "gripper_command" else ("grasp" if target.closing else "move")
        client = self.clients[key]
        if not client.server_is_ready():
            self.node.get_logger().warn(f"gripper action {client._action_name} is not up: {target.closure:g} not sent yet "
                                        "(retried each tick)", throttle_duration_sec=2.0)
            return
        goal = self.types[key].Goal()
        if key == "command":
            fill_gripper_command(goal, target, self.config)
        elif key == "grasp":
            fill_franka_grasp(goal, self.config)
        else:
            fill_franka_move(goal, self.config)
        self.grasp = 0.0  # a new motion: nothing is known to be held until its result says so
        future = client.send_goal_async(goal)
        future.add_done_callback(lambda f: self._on_accepted(f, target))
        self.gripper.sent(target)

    def _on_accepted(self, future, target: GripperTarget) -> None:
        handle = future.result()
        if handle is None or not handle.accepted:
            self.node.get_logger().error(f"gripper goal {target.closure:g} rejected by the driver; sent again next tick")
            self.gripper.forget()
            return
        handle.get_result_async().add_done_callback(lambda f: self._on_result(f, target))

    def _on_result(self, future, target: GripperTarget) -> None:
        if self.gripper.last_sent is target:  # a newer goal may have replaced it meanwhile
            self.grasp = 1.0 if grasped(self.config.output, target, future.result().result) else 0.0
