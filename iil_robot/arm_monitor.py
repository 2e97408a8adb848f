"""A small in-process subscriber that shows a person what the arm receives."""
from __future__ import annotations

import time

import rclpy
from geometry_msgs.msg import TwistStamped
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import Float64, String

from .nodes.common import COMMAND_QOS, EVENTS_QOS, RECORD_QOS
from .records import InterventionEvent, StepRecord


class ArmMonitor:
    """Subscribes the mux's outputs and prints a line per second and per change of control."""

    def __init__(self, domain_id: int, print_every: float = 1.0) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("arm_monitor", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.commands = 0
        self.twist = (0.0,) * 6
        self.gripper = 0.0
        self.last_step: StepRecord | None = None
        self.steps = 0
        self.interventions = 0
        self.print_every = print_every
        self.next_print = time.monotonic()
        self.start = time.monotonic()
        self.node.create_subscription(TwistStamped, "arm/cmd", self._on_cmd, COMMAND_QOS)
        self.node.create_subscription(Float64, "arm/gripper", self._on_gripper, COMMAND_QOS)
        self.node.create_subscription(String, "step", self._on_step, RECORD_QOS)
        self.node.create_subscription(String, "intervention", self._on_intervention, EVENTS_QOS)

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=max(0.0, end - time.monotonic()))
        if time.monotonic() >= self.next_print:
            self.next_print += self.print_every
            self._print_line()

    def _on_cmd(self, msg: TwistStamped) -> None:
        t = msg.twist
        self.twist = (t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z)
        self.commands += 1

    def _on_gripper(self, msg: Float64) -> None:
        self.gripper = msg.data

    def _on_step(self, msg: String) -> None:
        self.last_step = StepRecord.decode(msg.data)
        self.steps += 1

    def _on_intervention(self, msg: String) -> None:
        event = InterventionEvent.decode(msg.data)
        self.interventions = event.count
        if event.intervening:
            print(f"[arm] >>> operator took over ({event.source_name}): {event.reason}", flush=True)
        else:
            print(f"[arm] <<< control back to the policy after {event.duration:.2f} s: {event.reason}", flush=True)

    def _print_line(self) -> None:
        v = self.twist
        step = self.last_step
        who = "-" if step is None else (f"hold ({step.hold_reason})" if step.source == "hold" else f"{step.source} ({step.source_name})")
        print(
            f"[arm] t={time.monotonic() - self.start:5.1f}s  v=({v[0]:+.3f}, {v[1]:+.3f}, {v[2]:+.3f}) m/s  "
            f"gripper={self.gripper:.2f}  control={who}  steps={self.steps}  commands={self.commands}  "
            f"interventions={self.interventions}",
            flush=True,
        )

    def summary(self) -> str:
        return f"{self.steps} step records, {self.commands} arm commands, {self.interventions} interventions."

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
