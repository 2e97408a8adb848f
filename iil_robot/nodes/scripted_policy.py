"""``scripted_policy`` node: a stand-in policy that proposes a fixed pattern at the control rate.

It owns the control tick as the real policy node does: each tick it publishes one proposal
(action, the observation it "saw", version 0) on ``policy/proposal``. The action traces a slow
circle in the x-y plane; the observation is the tick phase, so records are easy to check.
"""
from __future__ import annotations

import math

from std_msgs.msg import String

from iil_robot.data.records import Proposal
from iil_robot.nodes.common import RECORD_QOS, IilNode, declare, run


class ScriptedPolicy(IilNode):
    def __init__(self) -> None:
        super().__init__("policy")
        self.rate = declare(self, "rate", 20.0, "Control rate (Hz): one proposal per tick", 0.5, 1000.0)
        self.speed = declare(self, "speed", 0.05, "Speed of the circle (m/s)", 0.0, 1.0)
        self.period = declare(self, "period", 8.0, "Seconds per circle", 0.1, 600.0)
        self.gripper = declare(self, "gripper", 0.0, "Gripper closure proposed (0 open, 1 closed)", 0.0, 1.0)
        self.pub = self.create_publisher(String, "policy/proposal", RECORD_QOS)
        self.tick = 0
        self.create_timer(1.0 / self.rate, self._on_tick)

    def _on_tick(self) -> None:
        phase = 2.0 * math.pi * (self.tick / self.rate) / self.period
        now = self.get_clock().now().nanoseconds * 1e-9
        action = (self.speed * math.cos(phase), self.speed * math.sin(phase), 0.0, 0.0, 0.0, 0.0, self.gripper)
        observation = (math.cos(phase), math.sin(phase), float(self.tick))
        self.pub.publish(String(data=Proposal(action, observation, 0, now, now).encode()))
        self.tick += 1


def main(args: list[str] | None = None) -> int:
    return run(ScriptedPolicy, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
