"""The benchmark side of ``bench sync`` and ``bench jitter``: an rclpy node that plays the arm
(observations) and, for sync, the learner (weights), and times the policy node's proposals."""
from __future__ import annotations

import time
from typing import Callable

import rclpy
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import String, UInt8MultiArray

from iil_robot.data.records import EpisodeEvent, Observation, Proposal, StepRecord
from iil_robot.nodes.common import EVENTS_QOS, LATCHED_QOS, RECORD_QOS, SENSOR_QOS
from iil_robot.nodes.learner import weights_message

EPISODE_STEPS = 200
"""Synthetic episodes: a ``start`` event, this many steps, a ``timeout`` (the learner labels by episode)."""


class PolicyPeer:
    def __init__(self, domain_id: int, obs_dim: int, spec: str) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("bench_peer", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.obs_dim, self.spec = obs_dim, spec
        self.proposals: list[tuple[float, int]] = []  # (time.monotonic() at receipt, policy_version)
        self.tick_stamps: list[float] = []  # the policy node's clock when it made each proposal (its tick)
        self.obs_pub = self.node.create_publisher(String, "observation", SENSOR_QOS)
        self.weights_pub = self.node.create_publisher(UInt8MultiArray, "policy/weights", LATCHED_QOS)
        self.step_pub = self.node.create_publisher(String, "step", RECORD_QOS)
        self.event_pub = self.node.create_publisher(String, "episode/event", EVENTS_QOS)
        self.node.create_subscription(String, "policy/proposal", self._on_proposal, RECORD_QOS)
        self._next_obs = 0.0
        self._tick = 0

    def _on_proposal(self, msg: String) -> None:
        proposal = Proposal.decode(msg.data)
        self.proposals.append((time.monotonic(), proposal.policy_version))
        self.tick_stamps.append(proposal.stamp)

    def observe(self, rate: float = 100.0) -> None:
        """Publish a fresh observation when due (the arm side)."""
        now = time.monotonic()
        if now >= self._next_obs:
            values = tuple(0.01 * ((self._tick + i) % 7) for i in range(self.obs_dim))
            self.obs_pub.publish(String(data=Observation(values, self.spec, time.time()).encode()))
            self._next_obs = now + 1.0 / rate

    def publish_steps(self, count: int) -> None:
        """Synthetic step records (policy-driven, an intervention every 50) in episodes, to feed a learner."""
        for _ in range(count):
            if self._tick % EPISODE_STEPS == 0:
                stamp = self._tick * 0.05
                if self._tick:
                    self.event_pub.publish(String(data=EpisodeEvent("timeout", "sim", stamp - 0.01).encode()))
                self.event_pub.publish(String(data=EpisodeEvent("start", "sim", stamp - 0.005).encode()))
            obs = tuple(0.01 * ((self._tick + i) % 7) for i in range(self.obs_dim))
            record = StepRecord(self._tick, self._tick * 0.05, "policy", "policy", (0.01, 0, 0, 0, 0, 0, 0), None, None,
                                False, self._tick % 50 == 49, self._tick % 50 == 49, False, obs, 0.0, 0, "", False)
            self.step_pub.publish(String(data=record.encode()))
            self._tick += 1

    def publish_weights(self, data: bytes) -> float:
        self.weights_pub.publish(weights_message(data))
        return time.monotonic()

    def spin_until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > end:
                raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
            self.executor.spin_once(timeout_sec=0.002)
            self.observe()

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        self.spin_until(lambda: time.monotonic() >= end, seconds + 1.0, "time")

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
