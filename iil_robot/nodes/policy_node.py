"""``policy`` node: runs the learned policy at the control rate and publishes proposals.

Subscribes ``observation`` (``iil_robot.observation`` JSON on std_msgs/String) and
``policy/weights`` (std_msgs/UInt8MultiArray: safetensors bytes, latched), publishes
``policy/proposal`` (``iil_robot.proposal`` JSON). Weights are validated on a worker thread and
swapped in between ticks; a bad message is refused with an error and the old policy keeps acting.
See ``iil_robot.policy``.
"""
from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor

import torch
from rclpy.node import Node
import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import String, UInt8MultiArray

from ..learners.weights import WeightsError
from ..policy import Active, CameraFrame, PolicyConfig, PolicyRunner
from ..records import Observation, RecordError
from .common import LATCHED_QOS, RECORD_QOS, SENSOR_QOS, declare_config, run

RANGES = {"rate": (0.5, 1000.0), "observation_timeout": (0.001, 10.0), "camera_timeout": (0.0, 10.0), "fallback_gripper": (0.0, 1.0), "num_threads": (1, 64)}


class PolicyNode(Node):
    def __init__(self) -> None:
        super().__init__("policy")
        config: PolicyConfig = declare_config(self, PolicyConfig, ranges=RANGES)
        torch.set_num_threads(config.num_threads)
        self.runner = PolicyRunner(config)
        self.observation: Observation | None = None
        self.validator = ThreadPoolExecutor(max_workers=1, thread_name_prefix="weights")
        self.pending: Future | None = None

        self.proposal_pub = self.create_publisher(String, "policy/proposal", RECORD_QOS)
        self.create_subscription(String, "observation", self._on_observation, SENSOR_QOS)
        self.create_subscription(UInt8MultiArray, "policy/weights", self._on_weights, LATCHED_QOS)
        self.frame: CameraFrame | None = None  # the newest camera image (camera policies, camera_timeout)
        self.create_subscription(Image, "camera/image_raw", self._on_image, SENSOR_QOS)
        self.act_on_observation = config.act_on_observation
        if not self.act_on_observation:
            self.create_timer(1.0 / config.rate, self._on_tick)
        pace = "on every observation" if self.act_on_observation else f"at {config.rate:g} Hz"
        self.get_logger().info(f"acting {pace}; before any weights: {config.fallback}")

    def _on_observation(self, msg: String) -> None:
        try:
            self.observation = Observation.decode(msg.data)
        except RecordError as err:
            self.get_logger().error(f"undecodable observation: {err}", throttle_duration_sec=1.0)
            return
        if self.act_on_observation:
            self._on_tick()

    def _on_image(self, msg: Image) -> None:
        if msg.encoding != "rgb8" or len(msg.data) != msg.height * msg.width * 3:
            self.get_logger().error(f"camera image is {msg.encoding} {msg.width}x{msg.height} ({len(msg.data)} bytes), "
                                    "expected rgb8: ignored", throttle_duration_sec=2.0)
            return
        rgb = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.width, 3)
        self.frame = CameraFrame(rgb, msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)

    def _on_weights(self, msg: UInt8MultiArray) -> None:
        data = msg.data.tobytes() if hasattr(msg.data, "tobytes") else bytes(msg.data)
        self.pending = self.validator.submit(self.runner.prepare, data)  # newest wins; validated off the tick

    def _install_pending(self) -> None:
        if self.pending is None or not self.pending.done():
            return
        future, self.pending = self.pending, None
        try:
            candidate: Active = future.result()
            self.runner.install(candidate)
        except WeightsError as err:
            self.get_logger().error(f"refused weights, version {self.runner.version} keeps acting: {err}")
            return
        meta = candidate.meta
        self.get_logger().info(f"acting with {meta.algorithm} weights version {meta.policy_version} ({meta.updates} updates)")

    def _on_tick(self) -> None:
        self._install_pending()
        proposal, why_not = self.runner.act(self.observation, self.get_clock().now().nanoseconds * 1e-9, self.frame)
        if proposal is None:
            self.get_logger().warn(f"no proposal: {why_not}", throttle_duration_sec=2.0)
            return
        self.proposal_pub.publish(String(data=proposal.encode()))


def _shutdown(node: PolicyNode) -> None:
    node.validator.shutdown(wait=False, cancel_futures=True)


def main(args: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return run(PolicyNode, on_exit=_shutdown, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
