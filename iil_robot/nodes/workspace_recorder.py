"""The ROS side of ``iil-robot workspace record``: feed every end-effector pose to a `WorkspaceExtent`."""
from __future__ import annotations

import time
from typing import Callable, TextIO

import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.executors import SingleThreadedExecutor

from iil_robot.command.workspace import WorkspaceExtent
from iil_robot.nodes.common import SENSOR_QOS


def record(extent: WorkspaceExtent, topic: str, domain_id: int, seconds: float, stop: Callable[[], bool],
           out: TextIO) -> None:
    """Feed ``extent`` every pose on ``topic`` until ``stop()`` or ``seconds`` (> 0) have passed, showing the bounds
    on ``out``."""
    def on_pose(msg: PoseStamped) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        extent.add((p.x, p.y, p.z), (q.x, q.y, q.z, q.w), msg.header.frame_id)

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    node = rclpy.create_node("workspace_record", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    node.create_subscription(PoseStamped, topic, on_pose, SENSOR_QOS)
    end = time.monotonic() + seconds if seconds > 0 else float("inf")
    next_line = 0.0
    try:
        while time.monotonic() < end and not stop():
            executor.spin_once(timeout_sec=0.05)
            if time.monotonic() >= next_line:
                next_line = time.monotonic() + 0.5
                out.write("\r" + extent.line() + "\033[K")
                out.flush()
    except KeyboardInterrupt:
        pass
    finally:
        out.write("\n")
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
