"""``estop_heartbeat`` node: a software e-stop that keeps the arm free while it runs.

Publishes ``estop`` = false at ``rate``. With the mux's ``locks.estop.timeout`` > 0, the arm is
locked until this node's first message and again as soon as it stops, for whatever reason; it
publishes ``estop`` = true on the way out.
"""
from __future__ import annotations

from std_msgs.msg import Bool

from iil_robot.nodes.common import COMMAND_QOS, IilNode, declare, run


class EstopHeartbeat(IilNode):
    def __init__(self) -> None:
        super().__init__("estop_heartbeat")
        rate = declare(self, "rate", 20.0, "Heartbeat rate (Hz); keep it well above 1 / the lock's timeout", 1.0, 1000.0)
        self.pub = self.create_publisher(Bool, "estop", COMMAND_QOS)
        self.create_timer(1.0 / rate, lambda: self.pub.publish(Bool(data=False)))


def main(args: list[str] | None = None) -> int:
    return run(EstopHeartbeat, on_exit=lambda node: node.pub.publish(Bool(data=True)), args=args)


if __name__ == "__main__":
    raise SystemExit(main())
