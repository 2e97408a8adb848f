"""The attacker of ``iil-robot soak``: an rclpy node that sends the graph a steady stream of bad inputs and counts the
mux's ticks.

Each ``send()`` publishes the next hostile message of every stream (``iil_robot.nodes.peers.hostile``): proposals, step
records, observations, episode events and weights (once an observation has told the weights' layout), and asks the
mux to take a bad parameter. Every step record the mux publishes goes through a ``TickGaps``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import cycle

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import String, UInt8MultiArray

from iil_robot.data.episodes import TickGaps
from iil_robot.data.records import Observation, RecordError, StepRecord
from iil_robot.nodes.common import EVENTS_QOS, LATCHED_QOS, RECORD_QOS, SENSOR_QOS
from iil_robot.nodes.learner import weights_message
from iil_robot.nodes.peers import hostile

BAD_PARAMETERS = [
    ("limits.max_linear_speed", ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=-1.0)),
    ("limits.max_linear_speed", ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=10**9)),
    ("limits.max_linear_speed", ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="fast")),
    ("limits.max_linear_speed", ParameterValue(type=ParameterType.PARAMETER_NOT_SET)),
    ("rate", ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=500.0)),
]
"""Parameter changes the mux must refuse: out of range, a string, an unset, a read-only one."""


@dataclass
class SoakCounts:
    sent: dict[str, int] = field(default_factory=dict)
    parameters_refused: int = 0
    parameters_accepted: int = 0
    """Bad parameter changes the mux took: must stay 0."""
    step_records: int = 0
    ticks: TickGaps = field(default_factory=TickGaps)
    stale_policy_holds: int = 0
    """Step records holding the arm because the policy's proposal was stale."""
    first_learned_action: float | None = None
    """When (monotonic) the policy first drove the arm with the learner's weights (policy version above 0)."""
    learner_fusion: str | None = None
    """The learner's torch.compile state from its last diagnostics ("" when it reports none: not fusing)."""

    def learner_settled(self) -> bool:
        """The learner drives the arm and has no compile pending (a fused learner allocates its graphs when it
        switches, a one-time cost like its networks')."""
        fusion = self.learner_fusion
        return (self.first_learned_action is not None and fusion is not None
                and (fusion in ("", "on") or fusion.startswith("off")))


class SoakPeer:
    def __init__(self, domain_id: int) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("soak", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.counts = SoakCounts()
        self.streams = {
            "proposals": (self.node.create_publisher(String, "policy/proposal", RECORD_QOS), cycle(hostile.hostile_proposals())),
            "steps": (self.node.create_publisher(String, "step", RECORD_QOS), cycle(hostile.hostile_steps())),
            "observations": (self.node.create_publisher(String, "observation", RECORD_QOS),
                             cycle(hostile.hostile_observations())),
            "events": (self.node.create_publisher(String, "episode/event", EVENTS_QOS), cycle(hostile.hostile_events())),
        }
        self.weights_pub = self.node.create_publisher(UInt8MultiArray, "policy/weights", LATCHED_QOS)
        self.weights = None  # cycle of hostile weights, once an observation tells the layout
        self.parameters = cycle(BAD_PARAMETERS)
        self.set_parameters = self.node.create_client(SetParameters, "/mux/set_parameters")
        self.pending: list = []
        self.node.create_subscription(String, "step", self._on_step, RECORD_QOS)
        self.node.create_subscription(String, "observation", self._on_observation, SENSOR_QOS)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)

    def _on_step(self, msg: String) -> None:
        try:
            record = StepRecord.decode(msg.data)
        except RecordError:  # one of ours (the hostile stream on this topic), not the mux's
            return
        self.counts.step_records += 1
        self.counts.ticks.add(record.tick)
        self.counts.stale_policy_holds += record.hold_reason.startswith("stale:policy")
        if self.counts.first_learned_action is None and record.source == "policy" and (record.policy_version or 0) > 0:
            self.counts.first_learned_action = time.monotonic()

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == "learner":
                self.counts.learner_fusion = next((kv.value for kv in status.values if kv.key == "fusion"), "")

    def _on_observation(self, msg: String) -> None:
        if self.weights is not None:
            return
        try:
            observation = Observation.decode(msg.data)
        except RecordError:
            return
        self.weights = cycle([weights_message(data) for _, data in hostile.hostile_weights(len(observation.values),
                                                                                             observation.spec)])

    def _count(self, stream: str) -> None:
        self.counts.sent[stream] = self.counts.sent.get(stream, 0) + 1

    def send(self) -> None:
        """The next bad message of every stream, and a bad parameter change for the mux."""
        for name, (publisher, messages) in self.streams.items():
            publisher.publish(String(data=next(messages)[1]))
            self._count(name)
        if self.weights is not None:
            self.weights_pub.publish(next(self.weights))
            self._count("weights")
        if self.set_parameters.service_is_ready():
            name, value = next(self.parameters)
            self.pending.append(self.set_parameters.call_async(SetParameters.Request(parameters=[Parameter(name=name,
                                                                                                            value=value)])))
            self._count("parameters")

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=max(0.0, min(0.05, end - time.monotonic())))
            self._collect_answers()

    def _collect_answers(self) -> None:
        for future in [f for f in self.pending if f.done()]:
            self.pending.remove(future)
            result = future.result().results[0]
            if result.successful:
                self.counts.parameters_accepted += 1
            else:
                self.counts.parameters_refused += 1

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
