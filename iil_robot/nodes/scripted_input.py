"""``scripted_input`` node: a scripted SpaceMouse on ``spacenav/joy``, for demos without hardware.

It repeats a fixed routine so the gate and mux can be watched working: rest, a push to the
left that takes over from the policy, let go (the policy gets control back after the gate's
release time), a click of the gripper button, rest.
"""
from __future__ import annotations

from sensor_msgs.msg import Joy

from iil_robot.nodes.common import SENSOR_QOS, IilNode, declare, run

# (start s, end s, axes x y z roll pitch yaw, buttons) within one routine
ROUTINE: tuple[tuple[float, float, tuple[float, ...], tuple[int, int]], ...] = (
    (0.0, 2.0, (0.0, 0.0, 0.0, 0.0, 0.0, 0.0), (0, 0)),
    (2.0, 3.5, (0.0, 0.6, 0.0, 0.0, 0.0, 0.0), (0, 0)),
    (3.5, 4.5, (0.0, 0.0, 0.0, 0.0, 0.0, 0.0), (0, 0)),
    (4.5, 4.7, (0.0, 0.0, 0.0, 0.0, 0.0, 0.0), (1, 0)),
    (4.7, 6.0, (0.0, 0.0, 0.0, 0.0, 0.0, 0.0), (0, 0)),
)
ROUTINE_LENGTH = ROUTINE[-1][1]


class ScriptedInput(IilNode):
    def __init__(self) -> None:
        super().__init__("scripted_input")
        self.rate = declare(self, "rate", 50.0, "Joy publishing rate (Hz)", 1.0, 1000.0)
        self.pub = self.create_publisher(Joy, "spacenav/joy", SENSOR_QOS)
        self.start = self.get_clock().now()
        self.create_timer(1.0 / self.rate, self._on_timer)

    def _on_timer(self) -> None:
        t = ((self.get_clock().now() - self.start).nanoseconds * 1e-9) % ROUTINE_LENGTH
        axes, buttons = next((a, b) for start, end, a, b in ROUTINE if start <= t < end)
        msg = Joy(axes=list(axes), buttons=list(buttons))
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub.publish(msg)


def main(args: list[str] | None = None) -> int:
    return run(ScriptedInput, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
