"""``policy`` node: runs the learned policy at the control rate and publishes proposals.

Subscribes ``observation`` (``iil_robot.observation`` JSON on std_msgs/String) and
``policy/weights`` (std_msgs/UInt8MultiArray: safetensors bytes, latched) and, for each camera in
``cameras``, ``camera/<name>/image_raw`` (the camera node's rgb8 frames; each tick pairs the observation
with each camera's frame by stamp: ``iil_robot.acting.cameras``), publishes
``policy/proposal`` (``iil_robot.proposal`` JSON). The newest weights message is validated and
swapped in right after a tick has published its proposal, so the milliseconds it takes never delay a
tick (a worker thread would hold the GIL at random moments); a bad message is refused with an error
(the same refusal again at most once a second, with a count) and the old policy keeps acting.
With ``help.enabled`` it also publishes ``help/request`` (std_msgs/Bool, latched: on change and every
``help.publish_period``) and its diagnostics, and reads ``step`` records (the operator's command and its
risk under Q_G, for the hand-back; the operator letting go withdraws the request). See ``iil_robot.acting.policy``.
"""
from __future__ import annotations

import os
import sys

import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, String, UInt8MultiArray

from iil_robot.acting.cameras import CameraFrame, RecentFrames
from iil_robot.acting.inbox import WeightsInbox
from iil_robot.acting.policy import HelpConfig, HelpRequester, PolicyConfig, PolicyRunner, action_note
from iil_robot.data.actions import ActionConfig
from iil_robot.data.camera import CameraError, image_rgb
from iil_robot.data.frames import stamp_seconds
from iil_robot.data.records import Observation, Proposal, RecordError, StepRecord
from iil_robot.learners.weights import WeightsError
from iil_robot.nodes.common import LATCHED_QOS, RECORD_QOS, SENSOR_QOS, IilNode, RepeatThrottle, declare_config, run

RANGES = {"rate": (0.5, 1000.0), "observation_timeout": (0.001, 10.0), "camera_timeout": (0.0, 10.0),
          "camera_tolerance": (0.0, 1.0), "fallback_gripper": (0.0, 1.0), "num_threads": (1, 64),
          "max_parameters": (1_000, 1_000_000_000)}
HELP_RANGES = {"novelty_threshold": (0.0, 1e6), "risk_threshold": (0.0, 1.0), "target_rate": (0.0, 1.0), "recent": (1, 1_000_000),
               "min_ticks": (1, 1_000_000), "refit_every": (1, 1_000_000), "handback_disagreement": (0.0, 1e6),
               "publish_period": (0.05, 60.0)}


class PolicyNode(IilNode):
    def __init__(self) -> None:
        super().__init__("policy")
        config: PolicyConfig = declare_config(self, PolicyConfig, ranges=RANGES)
        action: ActionConfig = declare_config(self, ActionConfig, "action.")
        torch.set_num_threads(config.num_threads)
        self.runner = PolicyRunner(config, action)
        self.observation: Observation | None = None
        self.refusals = RepeatThrottle(1.0)  # a stream of the same bad message logs once a second
        self.inbox = WeightsInbox(self.runner, self._refused)

        self.proposal_pub = self.create_publisher(String, "policy/proposal", RECORD_QOS)
        self.create_subscription(String, "observation", self._on_observation, SENSOR_QOS)
        self.create_subscription(UInt8MultiArray, "policy/weights", self._on_weights, LATCHED_QOS)
        self.cameras = {name: RecentFrames() for name in config.camera_names}  # frames to pair with the observations
        for name in self.cameras:
            self.create_subscription(Image, f"camera/{name}/image_raw", lambda msg, name=name: self._on_image(name, msg),
                                     SENSOR_QOS)
        self.act_on_observation = config.act_on_observation
        if not self.act_on_observation:
            self.create_timer(1.0 / config.rate, self._on_tick)
        help_config: HelpConfig = declare_config(self, HelpConfig, "help.", HELP_RANGES)
        self.help = HelpRequester(help_config, action.command_indices) if help_config.enabled else None
        if self.help is not None:
            self.help_pub = self.create_publisher(Bool, "help/request", LATCHED_QOS)
            self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
            self.create_subscription(String, "step", self._on_step, RECORD_QOS)
            self.create_timer(help_config.publish_period, self._publish_help)
            self._publish_help()
        pace = "on every observation" if self.act_on_observation else f"at {config.rate:g} Hz"
        frame = (f"the end effector's frame (its orientation: observation field {action.orientation_field})"
                 if action.frame == "tool" else "the command frame")
        self.get_logger().info(f"acting {pace} in action space {action.space}, in {frame}; before any weights: {config.fallback}")
        if self.runner.active.meta is not None and action_note(self.runner.active.meta):
            self.get_logger().info(f"fallback {action_note(self.runner.active.meta)}")

    def _on_observation(self, msg: String) -> None:
        try:
            self.observation = Observation.decode(msg.data)
        except RecordError as err:
            self.get_logger().error(f"undecodable observation: {err}", throttle_duration_sec=1.0)
            return
        if self.act_on_observation:
            self._on_tick()

    def _on_image(self, name: str, msg: Image) -> None:
        try:
            rgb = image_rgb(msg.encoding, msg.width, msg.height, msg.step, msg.data)
        except CameraError as err:
            self.get_logger().error(f"camera/{name}/image_raw: {err}; ignored (the camera node publishes rgb8)",
                                    throttle_duration_sec=2.0)
            return
        self.cameras[name].add(CameraFrame(rgb, stamp_seconds(msg.header.stamp.sec, msg.header.stamp.nanosec)))

    def destroy_node(self) -> None:
        self.inbox.close()
        super().destroy_node()

    def _on_weights(self, msg: UInt8MultiArray) -> None:
        data = msg.data.tobytes() if hasattr(msg.data, "tobytes") else bytes(msg.data)
        try:
            self.inbox.offer(data)  # screened here; checked in full on the inbox's thread
        except WeightsError as err:
            self._refused(err)

    def _refused(self, err: WeightsError) -> None:
        line = self.refusals.line(f"refused weights, version {self.runner.version} keeps acting: {err}")
        if line is not None:
            self.get_logger().error(line)

    def _install_ready(self) -> None:
        if self.runner.obs_dim is None:
            return  # the weights wait for an observation: before one, nothing tells whether they fit this arm
        candidate = self.inbox.take()
        if candidate is None:
            return
        try:
            self.runner.install(candidate)
        except WeightsError as err:
            self._refused(err)
            return
        meta = candidate.meta
        if action_note(meta):
            self.get_logger().info(action_note(meta))
        self.get_logger().info(f"acting with {meta.algorithm} weights version {meta.policy_version} ({meta.updates} updates)")

    def _on_tick(self) -> None:
        self._install_ready()  # between ticks: a swap never mixes two policies
        proposal, why_not = self.runner.act(self.observation, self.get_clock().now().nanoseconds * 1e-9, self.cameras)
        if proposal is None:
            self.get_logger().warn(f"no proposal: {why_not}", throttle_duration_sec=2.0)
        else:
            self.proposal_pub.publish(String(data=proposal.encode()))
            if self.help is not None:
                self._update_help(proposal)

    def _on_step(self, msg: String) -> None:
        try:
            record = StepRecord.decode(msg.data)
        except RecordError as err:
            self.get_logger().error(f"undecodable step record: {err}", throttle_duration_sec=1.0)
            return
        human_risk = self.runner.risk(record.observation, record.human_action) if record.intervention else None
        if self.help.on_step(record, human_risk) is not None:
            self.get_logger().info("help request withdrawn: the operator let go")
            self._publish_help()

    def _update_help(self, proposal: Proposal) -> None:
        decision = self.help.on_proposal(proposal)
        if decision is not None and decision.changed:
            if decision.requesting:
                t = self.help.gate.thresholds
                self.get_logger().warn(f"asking the operator for help ({decision.reason}: novelty {self.help.novelty} "
                                       f"(> {t.novelty:.4g}?), risk {self.help.risk} (> {t.risk:.4g}?))")
            else:
                self.get_logger().info("help request withdrawn: the operator's command agrees with the policy (and is low-risk)")
            self._publish_help()

    def _publish_help(self) -> None:
        """The request (latched Bool) and a diagnostics status any dashboard can show."""
        requester, requesting = self.help, self.help.requesting
        self.help_pub.publish(Bool(data=requesting))
        status = DiagnosticStatus(name="policy: help request", hardware_id="policy",
                                  level=DiagnosticStatus.WARN if requesting else DiagnosticStatus.OK,
                                  message=f"help requested ({requester.reason})" if requesting else "not requesting")
        gate = requester.gate
        values = {"requesting": requesting, "uncertainty": requester.novelty, "risk": requester.risk,
                  "novelty_threshold": None if gate is None else gate.thresholds.novelty,
                  "risk_threshold": None if gate is None else gate.thresholds.risk,
                  "raised": 0 if gate is None else gate.raised, "policy_version": self.runner.version}
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)


def main(args: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.setswitchinterval(0.0005)  # the tick's thread gets the GIL back from the weights check within 0.5 ms
    return run(PolicyNode, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
