"""Processes of the latency benchmark: a timed publisher, a recording subscriber, a joy ramp.

Each runs in its own process (``python -m iil_robot.nodes.peers.latency ROLE ...``) and writes
what it sent or received, with ``time.monotonic()`` stamps, to a JSON file. CLOCK_MONOTONIC is
one clock for every process on a Linux machine, so send and receive times compare directly.

Messages are matched by a sequence number carried in ``twist.linear.x`` as ``seq * SEQ_SCALE``
m/s: small enough for the mux's speed and acceleration limits to leave it unchanged. For the
observer the number rides in a joint position (``joint_states``) and comes back as the first value
of the observation.
"""
from __future__ import annotations

import argparse
import json
import signal
import time
from pathlib import Path
from typing import Any, Callable

import rclpy
from geometry_msgs.msg import TwistStamped
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import JointState, Joy
from std_msgs.msg import Bool, String

from iil_robot.data.records import Observation
from iil_robot.nodes.common import COMMAND_QOS, LATCHED_QOS, RECORD_QOS, SENSOR_QOS

SEQ_SCALE = 1e-6


def _node(name: str):
    rclpy.init()
    node = rclpy.create_node(name)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    return node, executor


def _wait_for_subscribers(executor, publishers, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while any(p.get_subscription_count() == 0 for p in publishers):
        if time.monotonic() > deadline:
            raise SystemExit(f"no subscriber appeared on {[p.topic_name for p in publishers if p.get_subscription_count() == 0]}")
        executor.spin_once(timeout_sec=0.01)


def _paced(rate: float, count: int):
    """Yield ``count`` times at ``rate`` Hz on a fixed grid (sleep, then a short spin to the deadline)."""
    period = 1.0 / rate
    next_time = time.monotonic() + 0.2
    for i in range(count):
        while True:
            remaining = next_time - time.monotonic()
            if remaining <= 0:
                break
            if remaining > 0.0005:
                time.sleep(remaining - 0.0003)
        yield i
        next_time += period


def source(args: argparse.Namespace) -> None:
    """Publish ``count`` twists at ``rate`` on both the bare hop topic and the mux's human input."""
    node, executor = _node("latency_source")
    hop = node.create_publisher(TwistStamped, "bench/hop", COMMAND_QOS)
    human = node.create_publisher(TwistStamped, "human/cmd", COMMAND_QOS)
    engaged = node.create_publisher(Bool, "human/engaged", LATCHED_QOS)
    _wait_for_subscribers(executor, [hop, human, engaged])
    engaged.publish(Bool(data=True))
    executor.spin_once(timeout_sec=0.2)
    msg = TwistStamped()
    msg.header.frame_id = "base_link"

    def numbered(seq: int) -> TwistStamped:
        msg.twist.linear.x = seq * SEQ_SCALE
        return msg

    _send_numbered(args, numbered, [hop, human])


def joints(args: argparse.Namespace) -> None:
    """Publish ``count`` joint states at ``rate`` on both the bare hop topic and the observer's ``joint_states``."""
    node, executor = _node("latency_joints")
    hop = node.create_publisher(JointState, "bench/hop_joints", SENSOR_QOS)
    arm = node.create_publisher(JointState, "joint_states", SENSOR_QOS)
    _wait_for_subscribers(executor, [hop, arm])
    executor.spin_once(timeout_sec=0.2)

    def numbered(seq: int) -> JointState:
        msg = JointState(name=["j1"], position=[seq * SEQ_SCALE])
        msg.header.stamp = node.get_clock().now().to_msg()
        return msg

    _send_numbered(args, numbered, [hop, arm])


def _send_numbered(args: argparse.Namespace, numbered, publishers) -> None:
    """Publish message ``seq`` (``numbered(seq)``) at ``rate`` on every publisher at the same instant; write what was
    sent, with its time, to ``out``."""
    sent: list[tuple[int, float]] = []
    sent_wall: list[tuple[int, float]] = []  # the same instants by the system clock, which DDS source stamps use
    for i in _paced(args.rate, args.count):
        seq = args.first_seq + i
        msg = numbered(seq)
        t, wall = time.monotonic(), time.time()
        for publisher in publishers:
            publisher.publish(msg)
        sent.append((seq, t))
        sent_wall.append((seq, wall))
    Path(args.out).write_text(json.dumps({"sent": sent, "sent_wall": sent_wall}))


def joy_ramps(args: argparse.Namespace) -> None:
    """Feed the gate ``trials`` ramps on spacenav/joy: rest, then y rising by ``step`` per message."""
    node, executor = _node("latency_joy")
    pub = node.create_publisher(Joy, "spacenav/joy", SENSOR_QOS)
    _wait_for_subscribers(executor, [pub])
    per_trial = args.rest + args.ramp
    sent: list[tuple[int, float, float]] = []
    for i in _paced(args.rate, args.trials * per_trial):
        k = i % per_trial
        y = 0.0 if k < args.rest else args.start + args.step * (k - args.rest)
        pub.publish(Joy(axes=[0.0, y, 0.0, 0.0, 0.0, 0.0], buttons=[0, 0]))
        sent.append((i, y, time.monotonic()))
        executor.spin_once(timeout_sec=0.0)
    Path(args.out).write_text(json.dumps({"sent": sent, "per_trial": per_trial, "rest": args.rest}))


SINK_KINDS = {
    "twist": (TwistStamped, COMMAND_QOS, lambda m: (m.twist.linear.x, m.twist.linear.y)),
    "joints": (JointState, SENSOR_QOS, lambda m: (m.position[0], 0.0)),
    "observation": (String, RECORD_QOS, lambda m: (Observation.decode(m.data).values[0], 0.0)),
}
"""``--topics`` entries ``topic[:kind]``: the type, QoS and the (x, y) a message carries."""


def sink(args: argparse.Namespace) -> None:
    """Record every message on the given topics (``topic[:kind]``, kind twist by default) until SIGINT, then write them."""
    node, executor = _node("latency_sink")
    received: dict[str, list[tuple[float, float, float]]] = {}
    published: dict[str, list[tuple[float, float]]] = {}
    """By topic: (x, when its publisher wrote it), from the DDS source timestamp (system clock)."""
    for entry in args.topics:
        topic, _, kind = entry.partition(":")
        msg_type, qos, values = SINK_KINDS[kind or "twist"]
        received[topic], published[topic] = [], []
        node.create_subscription(msg_type, topic, _logger(received[topic], published[topic], values), qos)
    stop = False

    def on_signal(signum, frame) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    deadline = time.monotonic() + 30.0
    while any(node.count_publishers(topic) == 0 for topic in args.wait) and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.01)
    Path(args.ready).touch()
    while not stop:
        executor.spin_once(timeout_sec=0.05)
    Path(args.out).write_text(json.dumps({**received, **{f"{topic}@published": log for topic, log in published.items()}}))


def _logger(received: list, published: list, values: Callable[[Any], tuple[float, float]]) -> Callable[[Any, dict], None]:
    def on_msg(msg, info) -> None:  # two arguments: rclpy passes the message info (its source timestamp)
        now, x_y = time.monotonic(), values(msg)
        received.append((*x_y, now))
        published.append((x_y[0], info["source_timestamp"] * 1e-9))
    return on_msg


def main() -> None:
    parser = argparse.ArgumentParser(prog="latency_peers")
    roles = parser.add_subparsers(dest="role", required=True)
    p = roles.add_parser("source")
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--first-seq", type=int, default=1)
    p.add_argument("--out", required=True)
    p.set_defaults(run=source)
    p = roles.add_parser("joints")
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--first-seq", type=int, default=1)
    p.add_argument("--out", required=True)
    p.set_defaults(run=joints)
    p = roles.add_parser("joy")
    p.add_argument("--rate", type=float, default=100.0)
    p.add_argument("--trials", type=int, required=True)
    p.add_argument("--rest", type=int, default=60, help="messages at rest before each ramp (longer than the release time)")
    p.add_argument("--ramp", type=int, default=30)
    p.add_argument("--start", type=float, default=0.1)
    p.add_argument("--step", type=float, default=0.013)
    p.add_argument("--out", required=True)
    p.set_defaults(run=joy_ramps)
    p = roles.add_parser("sink")
    p.add_argument("--topics", nargs="+", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--ready", required=True, help="file touched once the --wait topics have a publisher")
    p.add_argument("--wait", nargs="*", default=[], help="topics whose publisher must be matched first")
    p.set_defaults(run=sink)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
