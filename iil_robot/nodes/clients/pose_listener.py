"""Listen to an end-effector pose from outside a graph (``iil-robot workspace record``, ``doctor --calibrate``)."""
from __future__ import annotations

from typing import Callable

import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.executors import SingleThreadedExecutor

from iil_robot.nodes.common import SENSOR_QOS


class PoseListener:
    """Its own ROS context on ``domain_id``, subscribed to ``topic``; ``spin`` delivers poses to ``on_pose``."""

    def __init__(self, domain_id: int, topic: str, on_pose: Callable[[PoseStamped], None], name: str) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.node.create_subscription(PoseStamped, topic, on_pose, SENSOR_QOS)

    def spin(self, seconds: float) -> None:
        self.executor.spin_once(timeout_sec=seconds)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
