"""STAND-IN for ``tf2_ros``, for tests only: never install it or put it on a robot's PYTHONPATH.

``tf2_ros`` has no pip wheel and ``tf2_msgs`` (``/tf``'s TFMessage) is not on the pip wheels either, so
the observer's TF path is tested with this package placed first on the node process's PYTHONPATH. It
has the names the observer uses, with the real signatures: ``Buffer.lookup_transform(target_frame,
source_frame, time)``, ``TransformListener(buffer, node)``, and the exception classes under
``TransformException``. Unlike the real one it

- listens to ``geometry_msgs/TransformStamped`` messages on ``/tf_stand_in`` instead of TFMessage on
  ``/tf`` and ``/tf_static``, and keeps the newest per (``header.frame_id``, ``child_frame_id``);
- answers only ``Time()`` lookups (the newest transform) of a pair it received, chaining no frames;
- forgets a child frame named by a ``std_msgs/String`` on ``/tf_stand_in/forget``, after which its
  lookups raise LookupException as the real buffer does for a frame it never heard of.
"""
from __future__ import annotations

from typing import Any

from geometry_msgs.msg import TransformStamped
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from std_msgs.msg import String

TOPIC = "/tf_stand_in"
FORGET_TOPIC = "/tf_stand_in/forget"
QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE,
                 history=HistoryPolicy.KEEP_LAST)
"""The real listener's /tf QoS."""


class TransformException(Exception):
    pass


class LookupException(TransformException):
    pass


class ConnectivityException(TransformException):
    pass


class ExtrapolationException(TransformException):
    pass


class InvalidArgumentException(TransformException):
    pass


class Buffer:
    def __init__(self, cache_time: Any = None, node: Any = None) -> None:
        self._newest: dict[tuple[str, str], TransformStamped] = {}

    def set_transform(self, transform: TransformStamped, authority: str) -> bool:
        self._newest[(transform.header.frame_id, transform.child_frame_id)] = transform
        return True

    def forget(self, child_frame_id: str) -> None:
        self._newest = {pair: t for pair, t in self._newest.items() if pair[1] != child_frame_id}

    def lookup_transform(self, target_frame: str, source_frame: str, time: Time, timeout: Any = None) -> TransformStamped:
        if not isinstance(time, Time) or time.nanoseconds != 0:
            raise InvalidArgumentException(f"the tf2_ros stand-in answers only Time() (the newest), not {time!r}")
        try:
            return self._newest[(target_frame, source_frame)]
        except KeyError:
            raise LookupException(f'"{source_frame}" passed to lookupTransform argument source_frame does not exist '
                                  f"(tf2_ros stand-in: no transform {target_frame} -> {source_frame} on {TOPIC})") from None


class TransformListener:
    def __init__(self, buffer: Buffer, node: Any, *, spin_thread: bool = False, qos: Any = None,
                 static_qos: Any = None) -> None:
        if spin_thread:
            raise NotImplementedError("the tf2_ros stand-in has no spin thread: spin the node")
        self.buffer = buffer
        self.tf_sub = node.create_subscription(TransformStamped, TOPIC, lambda m: buffer.set_transform(m, "stand_in"), QOS)
        self.forget_sub = node.create_subscription(String, FORGET_TOPIC, lambda m: buffer.forget(m.data), QOS)
