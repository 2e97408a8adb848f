"""An in-test rclpy node: publish, collect with receive times, and wait for conditions."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import rclpy
from rclpy.executors import SingleThreadedExecutor


@dataclass
class Received:
    messages: list[Any] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # time.monotonic() at receipt

    def __len__(self) -> int:
        return len(self.messages)


class Probe:
    def __init__(self, domain_id: int) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("test_probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def publisher(self, msg_type, topic: str, qos):
        return self.node.create_publisher(msg_type, topic, qos)

    def collect(self, msg_type, topic: str, qos) -> Received:
        received = Received()

        def on_msg(msg) -> None:
            received.messages.append(msg)
            received.times.append(time.monotonic())

        self.node.create_subscription(msg_type, topic, on_msg, qos)
        return received

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=max(0.0, end - time.monotonic()))

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str,
                 every: Callable[[], None] | None = None) -> float:
        """Spin until ``condition()`` holds; return the time it took. Fails the test on timeout."""
        start = time.monotonic()
        while not condition():
            if time.monotonic() - start > timeout:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            self.executor.spin_once(timeout_sec=0.005)
            if every is not None:
                every()
        return time.monotonic() - start

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
