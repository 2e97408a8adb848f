"""The observer's TF lookups: a ``tf2_ros`` Buffer and TransformListener, made only where a field reads TF.

``tf2_ros`` comes with a ROS 2 install (``ros-jazzy-tf2-ros``) and has no pip wheel, so it is imported
here, when the observer is configured with a TF field, and its absence stops the node at start-up
naming the field, the package and the alternative (a PoseStamped topic).
"""
from __future__ import annotations

import importlib
from typing import Any, Sequence

from rclpy.node import Node
from rclpy.time import Time

from iil_robot.acting.observer import FieldConfig
from iil_robot.nodes.common import ParameterError


def import_tf2_ros(fields: Sequence[FieldConfig]) -> Any:
    """The ``tf2_ros`` module, or ParameterError naming the TF ``fields``, the package and the alternative."""
    try:
        return importlib.import_module("tf2_ros")
    except ImportError as err:
        named = ", ".join(f"{f.name!r} (child_frame_id {f.child_frame_id!r})" for f in fields)
        fields_read = f"fields {named} read" if len(fields) > 1 else f"field {named} reads"
        raise ParameterError(
            f"observer: {fields_read} TF, but tf2_ros cannot be imported ({err}). Install it with ROS 2 "
            "(package ros-jazzy-tf2-ros: `sudo apt install ros-jazzy-tf2-ros`, then source /opt/ros/jazzy/setup.bash), "
            "or read the pose from a geometry_msgs/PoseStamped topic instead (set fields.<name>.topic and leave "
            "child_frame_id empty)") from err


class TransformLookup:
    """The newest transform between two frames, from ``/tf`` and ``/tf_static`` as this node's executor receives them."""

    def __init__(self, node: Node, tf2_ros: Any) -> None:
        self.buffer = tf2_ros.Buffer()
        # Served by the node's own executor (spin_thread off): the project's nodes spin one SingleThreadedExecutor.
        self.listener = tf2_ros.TransformListener(self.buffer, node)
        self.errors: tuple[type[Exception], ...] = (tf2_ros.TransformException,)
        """What a failed lookup raises: LookupException, ConnectivityException, ExtrapolationException, ..."""

    def newest(self, target_frame: str, source_frame: str) -> Any:
        """The newest ``geometry_msgs/TransformStamped`` from ``target_frame`` to ``source_frame`` (its child): the
        pose of ``source_frame`` in ``target_frame``. Raises one of ``errors`` when there is none."""
        return self.buffer.lookup_transform(target_frame, source_frame, Time())
