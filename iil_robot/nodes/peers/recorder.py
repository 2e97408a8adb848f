"""Load generator for ``iil-robot bench recorder``: the topics of a 20 Hz control loop with one
128x128 camera, at ``factor`` times their rates, for ``duration`` seconds. Writes what it sent
(per topic) as JSON to ``out`` when done."""
from __future__ import annotations

import json
import time

import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.duration import Duration
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, JointState
from std_msgs.msg import Float64, String

from iil_robot.data.camera import encode_jpeg
from iil_robot.data.records import Observation, Proposal, StepRecord
from iil_robot.nodes.common import COMMAND_QOS, RECORD_QOS, SENSOR_QOS, declare, run

# topic: (base rate Hz at a 20 Hz loop, message type, QoS)
LOAD = {
    "step": (20.0, String, RECORD_QOS),
    "policy/proposal": (20.0, String, RECORD_QOS),
    "observation": (20.0, String, RECORD_QOS),
    "arm/cmd": (20.0, TwistStamped, COMMAND_QOS),
    "arm/gripper": (20.0, Float64, COMMAND_QOS),
    "human/cmd": (100.0, TwistStamped, COMMAND_QOS),
    "joint_states": (20.0, JointState, SENSOR_QOS),
    "ee_pose": (20.0, PoseStamped, SENSOR_QOS),
    "camera/front/image_raw/compressed": (20.0, CompressedImage, SENSOR_QOS),
}


class LoadNode(Node):
    def __init__(self) -> None:
        super().__init__("recorder_load")
        self.factor = declare(self, "factor", 10.0, "Multiple of the base rates", 0.1, 100.0)
        self.duration = declare(self, "duration", 10.0, "Seconds of load", 0.1, 7200.0)
        self.out = declare(self, "out", "", "Where to write the sent counts (JSON)")
        self.settle = declare(self, "settle", 1.0, "Seconds between matching and the load (discovery settles both ways)",
                              0.0, 60.0)
        self.matched_at: float | None = None
        self.pubs = {t: self.create_publisher(kind, t, qos) for t, (_, kind, qos) in LOAD.items()}
        self.sent = dict.fromkeys(LOAD, 0)
        # a 128 x 128 frame of noise as the camera node sends it: a JPEG (noise compresses poorly, about 13 KB)
        noise = np.random.default_rng(0).integers(0, 255, (128, 128, 3), np.uint8)
        self.image = CompressedImage(format="jpeg", data=encode_jpeg(noise))
        self.create_timer(0.01, self._start_when_matched)
        self.started = False

    def _start_when_matched(self) -> None:
        if self.started or not all(p.get_subscription_count() > 0 for p in self.pubs.values()):
            return
        # A publisher can see the subscription before the subscription has matched it back;
        # what it publishes in between is lost. Let discovery finish before counting.
        self.matched_at = self.matched_at or time.monotonic()
        if time.monotonic() - self.matched_at < self.settle:
            return
        self.started = True
        self._load()
        # Messages still in flight when this process exits are lost: wait until the reliable
        # ones are acknowledged, then linger so the recorder can take everything from DDS.
        for pub in self.pubs.values():
            pub.wait_for_all_acked(Duration(seconds=5))
        end = time.monotonic() + self.settle
        while time.monotonic() < end:
            time.sleep(0.05)
        with open(self.out, "w") as f:
            json.dump({"sent": self.sent, "duration": self.duration, "factor": self.factor}, f)
        raise KeyboardInterrupt  # done: run() shuts down cleanly

    def _message(self, topic: str, n: int):
        now = self.get_clock().now()
        t = now.nanoseconds * 1e-9
        action = (0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        obs = tuple(float(i) for i in range(25))
        if topic == "step":
            return String(data=StepRecord(n, t, "policy", "policy", action, action, None, False, False, False, False,
                                          obs, t, 0, "", False).encode())
        if topic == "policy/proposal":
            return String(data=Proposal(action, obs, 0, t, t).encode())
        if topic == "observation":
            return String(data=Observation(obs, "bench/v1", t).encode())
        if topic in ("arm/cmd", "human/cmd"):
            msg = TwistStamped()
            msg.header.stamp, msg.header.frame_id = now.to_msg(), "base_link"
            msg.twist.linear.x = float(n)
            return msg
        if topic == "arm/gripper":
            return Float64(data=float(n % 2))
        if topic == "joint_states":
            return JointState(name=[f"j{i}" for i in range(7)], position=[float(n)] * 7, velocity=[0.0] * 7)
        if topic == "ee_pose":
            msg = PoseStamped()
            msg.header.frame_id = "base_link"
            msg.pose.position.x = float(n)
            return msg
        self.image.header.stamp = now.to_msg()
        return self.image

    def _load(self) -> None:
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < self.duration:
            for topic, (rate, _, _) in LOAD.items():
                due = int(elapsed * rate * self.factor) + 1
                while self.sent[topic] < due:
                    self.pubs[topic].publish(self._message(topic, self.sent[topic]))
                    self.sent[topic] += 1
            time.sleep(0.001)  # pacing of the load generator


def main(args: list[str] | None = None) -> int:
    return run(LoadNode, args=args)


if __name__ == "__main__":
    raise SystemExit(main())


class StepStream:
    """For ``bench recorder-kill``: an in-process rclpy publisher of numbered step records (tick = sequence number),
    remembering when it published each (time.monotonic())."""

    def __init__(self, domain_id: int) -> None:
        import rclpy

        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("recorder_kill_stream", context=self.context)
        self.pub = self.node.create_publisher(String, "step", RECORD_QOS)
        self.sent: list[float] = []

    def matched(self) -> bool:
        return self.pub.get_subscription_count() > 0

    def publish(self) -> None:
        n, t = len(self.sent), time.time()
        record = StepRecord(n, t, "policy", "policy", (0.01,) + (0.0,) * 6, None, None, False, False, False, False,
                            None, None, None, "", False)
        self.pub.publish(String(data=record.encode()))
        self.sent.append(time.monotonic())

    def close(self) -> None:
        import rclpy

        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
