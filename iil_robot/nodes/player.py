"""Bag player for ``iil-robot replay --play``: republishes recorded topics with their original
timing and publishes ``/clock``, so RViz, Foxglove and nodes started with ``use_sim_time`` follow
the recording. Messages go out as the CDR bytes the recorder wrote; each topic with the QoS it
was recorded with (latched topics transient-local, sensor streams best effort)."""
from __future__ import annotations

import time
from pathlib import Path

import rclpy
from rclpy.qos import QoSProfile
from rosbags.rosbag2 import Reader
from rosgraph_msgs.msg import Clock

from iil_robot.data.bags import read_messages
from iil_robot.nodes.common import EVENTS_QOS, RECORD_QOS, SENSOR_QOS, interface_class

QOS = {"reliable": RECORD_QOS, "latched": EVENTS_QOS, "sensor": SENSOR_QOS}


def _kinds(bag: Path) -> dict[str, tuple[str, str]]:
    from iil_robot.data.bags import _qos_kind

    with Reader(bag) as reader:
        return {c.topic: (c.msgtype, _qos_kind(c.ext.offered_qos_profiles)) for c in reader.connections}


def play(bags: list[Path], rate: float = 1.0, delay: float = 1.0) -> int:
    """Publish every message of ``bags`` (in order) at ``rate`` times the recorded speed, after
    ``delay`` seconds for subscribers to discover the publishers (as ``ros2 bag play --delay``)."""
    if rate <= 0:
        raise ValueError(f"--rate {rate} must be > 0")
    rclpy.init()
    node = rclpy.create_node("iil_replay")
    clock_pub = node.create_publisher(Clock, "/clock", QoSProfile(depth=10))
    publishers = {}
    count = 0
    try:
        for bag in bags:
            for topic, (msgtype, kind) in _kinds(bag).items():
                if topic not in publishers:
                    publishers[topic] = node.create_publisher(interface_class(msgtype), topic, QOS[kind])
            time.sleep(delay)
            start_wall = time.monotonic()
            first: int | None = None
            for m in read_messages(bag, raw=True):
                first = m.t_ns if first is None else first
                due = start_wall + (m.t_ns - first) * 1e-9 / rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)  # pacing to the recorded timing
                clock = Clock()
                clock.clock.sec, clock.clock.nanosec = divmod(m.t_ns, 1_000_000_000)
                clock_pub.publish(clock)
                publishers[m.topic].publish(m.raw)
                count += 1
            node.get_logger().info(f"played {bag}")
    except KeyboardInterrupt:
        pass
    finally:
        node.get_logger().info(f"published {count} messages")
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    """``ros2 run iil_robot player BAG_OR_DIR... [--rate R] [--delay S]``: the same as ``iil-robot replay --play``."""
    import argparse
    import sys

    from iil_robot.data.bags import BagError, find_bags

    parser = argparse.ArgumentParser(prog="player", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", metavar="BAG_OR_DIR")
    parser.add_argument("--rate", type=float, default=1.0, help="speed factor (default 1.0)")
    parser.add_argument("--delay", type=float, default=1.0, help="seconds for discovery before the first message")
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)  # ros2 run appends --ros-args
    try:
        return play(find_bags(args.paths), rate=args.rate, delay=args.delay)
    except (BagError, ValueError) as err:
        print(f"[player] {err}", file=sys.stderr)
        return 1
