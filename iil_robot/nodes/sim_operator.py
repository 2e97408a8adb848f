"""``sim_operator`` node: a virtual SpaceMouse worked by the simulated operator.

It sees what a person beside the arm sees: the end-effector, object and goal poses and the
fingers' opening (``ee_pose``, ``object_pose``, ``goal_pose``, ``joint_states``, under the robot
profile's names), never the policy's observation. Each arm tick (each ``joint_states``) it
judges the policy's proposal with ``iil_robot.sim.operator.SimOperator`` (the same code the
headless benchmarks use) and moves a virtual device on ``spacenav/joy``,
exactly what the ``spacenav`` driver publishes for a real one, so its input goes through the
real gate: while in control it holds the takeover button and deflects the cap by the inverse
of the gate's axis mapping; it clicks the gripper button when the closure it wants differs
from the gate's; to hand back it lets go of everything. With ``correct_orientation`` (an action
space with rotations: ``iil-robot sim --action-space``) it also twists the cap to turn the gripper
back to the orientation it had when the episode started, so the operator's commands teach the
policy to keep it.

It answers the policy's help requests (``help/request``, std_msgs/Bool): with model ``robot_gated``
it steps in only then (ThriftyDAgger's setting), with ``answers_requests`` a ``value``/``random``
operator also answers them; it drives until the request is withdrawn or ``answer_max_steps``.

Every decision that starts or ends an intervention is published on ``operator/decision``
(JSON: model, reason, Q values, and for an answered request whether it was ``needed``) so the
recorder keeps which model triggered it and why.
"""
from __future__ import annotations

import json
import math

import numpy as np
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import JointState, Joy
from std_msgs.msg import Bool, Float64, String

from iil_robot.command.gate import GateConfig
from iil_robot.data.actions import ACTION_SPACES
from iil_robot.data.records import EpisodeEvent, Proposal, RecordError
from iil_robot.data.rotation import yaw_matrix
from iil_robot.nodes.common import (
    EVENTS_QOS,
    LATCHED_QOS,
    RECORD_QOS,
    SENSOR_QOS,
    IilNode,
    ParameterError,
    declare,
    declare_floats,
    run,
)
from iil_robot.sim.operator import MODELS, SimOperator, SimOperatorConfig
from iil_robot.sim.rotation import turn_back
from iil_robot.sim.spec import TASK_NAMES
from iil_robot.sim.state import TaskState
from iil_robot.sim.tasks import task_spec

JUDGED = ACTION_SPACES["translation"].indices
"""The values of a proposal the operator judges (its value model knows translation and gripper)."""
TURN_GAIN, TURN_TOLERANCE = 2.0, 0.03
"""``correct_orientation``: the angular speed (rad/s) per radian of orientation error, and the error (rad) below
which the operator leaves the cap's rotation alone."""


def deflection_for(twist: np.ndarray, gate: GateConfig) -> list[float]:
    """Cap deflection (6 axes) that makes the gate command ``twist`` (x, y, z in m/s, then optionally rx, ry, rz in
    rad/s, command frame)."""
    axes = [0.0] * 6
    turn = yaw_matrix(math.radians(gate.operator_yaw)).T  # from the command frame into the device's axes
    twist = np.asarray(twist[:6], dtype=float)
    device = np.concatenate([turn @ twist[:3], turn @ twist[3:6]]) if len(twist) == 6 else turn @ twist[:3]
    for i, v in enumerate(device):
        scale = gate.axis_scale[i]
        if v == 0.0 or scale == 0.0:
            continue
        magnitude = min(1.0, abs(v) / scale)
        axes[i] = float(np.sign(v * gate.axis_sign[i]) * (gate.deadband + magnitude * (1.0 - gate.deadband)))
    return axes


class SimOperatorNode(IilNode):
    def __init__(self) -> None:
        super().__init__("sim_operator")
        task = declare(self, "task", "push", f"Fetch task: {', '.join(TASK_NAMES)}")
        if task not in TASK_NAMES:
            raise ParameterError(f"parameter 'task'={task!r} must be one of {TASK_NAMES}")
        rate = declare(self, "rate", 20.0, "Control rate of the sim arm (Hz)", 1.0, 500.0)
        d = SimOperatorConfig()
        config = SimOperatorConfig(
            model=declare(self, "model", d.model, f"Intervention model: {', '.join(MODELS)}"),
            level=declare(self, "level", 0.7, "Operator quality in [0, 1] (success ~ level x the scripted optimum)", 0.0, 1.0),
            takeover_steps=declare(self, "takeover_steps", d.takeover_steps, "Ticks an intervention lasts at most", 1, 10000),
            release_on_track=declare(self, "release_on_track", d.release_on_track,
                                     "Hand back as soon as the state is back on track"),
            beta=declare(self, "beta", d.beta, "Value model: probability of stepping in when the action looks bad", 0.0, 1.0),
            alpha=declare(self, "alpha", d.alpha, "Value model: step in when Q(s,a_policy) < alpha * Q(s,a_ref)", 0.0, 1.0),
            random_prob=declare(self, "random_prob", d.random_prob, "Random model: per-tick probability", 0.0, 1.0),
            answers_requests=declare(self, "answers_requests", d.answers_requests,
                                     "Value/random models: also take over when the policy asks for help (help/request)"),
            answer_max_steps=declare(self, "answer_max_steps", d.answer_max_steps,
                                     "Ticks the operator drives at most in answer to one help request", 1, 100000),
        )
        if config.model == "dagger":  # through the gate a deflection is a takeover: no label without driving
            raise ParameterError("model 'dagger' labels every tick without taking over, which a SpaceMouse cannot do "
                                 "through the gate: run DAgger headless (iil-robot bench learning --methods dagger)")
        seed = declare(self, "seed", 0, "Seed of the operator's randomness", 0, 2**31 - 1)
        self.gate = GateConfig(
            deadband=declare(self, "gate.deadband", GateConfig().deadband, "The gate's deadband (as configured there)",
                             0.0, 0.95),
            axis_scale=declare_floats(self, "gate.axis_scale", GateConfig().axis_scale, "The gate's axis_scale"),
            axis_sign=declare_floats(self, "gate.axis_sign", GateConfig().axis_sign, "The gate's axis_sign"),
            operator_yaw=declare(self, "gate.operator_yaw", GateConfig().operator_yaw, "The gate's operator_yaw (its "
                                 "operator_frame must be base)", -360.0, 360.0),
        )
        self.takeover_button = declare(self, "gate.buttons.takeover", 1, "The gate's takeover button", 0, 31)
        self.gripper_button = declare(self, "gate.buttons.gripper_toggle", 0, "The gate's gripper toggle button", 0, 31)
        self.correct_orientation = declare(self, "correct_orientation", False,
                                           "While in control, also turn the gripper back to its orientation at the "
                                           "episode's start (for a policy that learns rotations)")
        joy_rate = declare(self, "joy_rate", 50.0, "Rate (Hz) at which the device state is repeated", 1.0, 1000.0)
        try:
            self.task = task_spec(task, rate)
            self.operator = SimOperator(config, self.task, np.random.default_rng(seed))
        except ValueError as err:
            raise ParameterError(f"sim_operator: {err}") from err

        self.joy_pub = self.create_publisher(Joy, "spacenav/joy", SENSOR_QOS)
        self.decision_pub = self.create_publisher(String, "operator/decision", EVENTS_QOS)
        self.finger_joints = list(declare(self, "finger_joints", ["r_gripper_finger_joint", "l_gripper_finger_joint"],
                                          "The gripper's finger joints in joint_states (their positions sum to its opening)"))
        self.poses: dict[str, np.ndarray] = {}
        self.orientation: np.ndarray | None = None  # the end effector's, (w, x, y, z)
        self.start_orientation: np.ndarray | None = None  # at the episode's first tick
        for name in ("ee_pose", "object_pose", "goal_pose"):
            self.create_subscription(PoseStamped, name, self._pose_callback(name), SENSOR_QOS)
        self.create_subscription(JointState, "joint_states", self._on_joint_states, SENSOR_QOS)
        self.create_subscription(String, "policy/proposal", self._on_proposal, RECORD_QOS)
        self.create_subscription(Float64, "human/gripper", self._on_gate_gripper, LATCHED_QOS)
        self.create_subscription(String, "episode/event", self._on_episode, EVENTS_QOS)
        self.create_subscription(Bool, "help/request", self._on_help_request, LATCHED_QOS)
        self.help_requested = False
        self.in_episode = False
        self.axes = [0.0] * 6
        self.buttons = [0] * (max(self.takeover_button, self.gripper_button) + 1)
        self.gate_gripper = 0.0
        self.policy_action: np.ndarray | None = None
        self.interventions = 0
        self.create_timer(1.0 / joy_rate, self._publish_joy)
        self.get_logger().info(f"{config.model} operator at level {config.level:.2f} on {task}")

    def _on_proposal(self, msg: String) -> None:
        try:
            self.policy_action = np.array(Proposal.decode(msg.data).action)[list(JUDGED)]
        except RecordError as err:
            self.get_logger().warn(f"ignoring an undecodable proposal: {err}", throttle_duration_sec=2.0)

    def _on_help_request(self, msg: Bool) -> None:
        self.help_requested = bool(msg.data)

    def _on_gate_gripper(self, msg: Float64) -> None:
        if not np.isfinite(msg.data):
            self.get_logger().error(f"ignoring human/gripper = {msg.data}: not a closure in [0, 1]", throttle_duration_sec=2.0)
            return
        self.gate_gripper = msg.data

    def _on_episode(self, msg: String) -> None:
        try:
            event = EpisodeEvent.decode(msg.data).event
        except RecordError as err:
            self.get_logger().warn(f"ignoring an undecodable episode event: {err}", throttle_duration_sec=2.0)
            return
        if event == "start":
            self.operator.reset()
            self.policy_action = self.start_orientation = None
        self.in_episode = event == "start"  # between episodes (the reset) the operator keeps its hands off

    def _pose_callback(self, name: str):
        def on_pose(msg: PoseStamped) -> None:
            p = msg.pose.position
            position = np.array([p.x, p.y, p.z])
            if not np.isfinite(position).all():
                self.get_logger().error(f"ignoring {name} with a non-finite position {position.tolist()}: the operator keeps "
                                        "the last good one", throttle_duration_sec=2.0)
                return
            self.poses[name] = position
            o = msg.pose.orientation
            if name == "ee_pose" and np.isfinite([o.w, o.x, o.y, o.z]).all() and (o.w, o.x, o.y, o.z) != (0.0,) * 4:
                self.orientation = np.array([o.w, o.x, o.y, o.z])

        return on_pose

    def _seen(self, msg: JointState) -> TaskState:
        """The scene as the operator sees it. Raises ValueError while a pose or a finger joint is missing or not finite."""
        positions = dict(zip(msg.name, msg.position))
        needed = ("ee_pose", "goal_pose") + (("object_pose",) if self.task.has_object else ())
        problems = [f"no {name} yet" for name in needed if name not in self.poses]
        missing = [j for j in self.finger_joints if j not in positions]
        if missing:
            problems.append(f"joint_states has no {missing} (set finger_joints to the gripper's joints)")
        elif not np.isfinite([positions[j] for j in self.finger_joints]).all():
            problems.append(f"joint_states has non-finite finger positions {[positions[j] for j in self.finger_joints]}")
        if problems:
            raise ValueError("; ".join(problems))
        return TaskState(grip_pos=self.poses["ee_pose"], finger_opening=float(sum(positions[j] for j in self.finger_joints)),
                         goal=self.poses["goal_pose"], object_pos=self.poses.get("object_pose"))

    def _on_joint_states(self, msg: JointState) -> None:
        if not self.in_episode:
            self.axes, self.buttons = [0.0] * 6, [0] * len(self.buttons)
            return
        if self.start_orientation is None:
            self.start_orientation = self.orientation
        if self.help_requested and self.policy_action is None:
            return  # asked for help: first see what the policy proposes, to say whether the request was needed
        try:
            decision = self.operator.act(self._seen(msg), self.policy_action, help_requested=self.help_requested)
        except ValueError as err:
            self.get_logger().warning(f"cannot judge this tick: {err}", throttle_duration_sec=2.0)
            return
        if decision.onset or decision.offset:
            self.interventions += decision.onset
            self.decision_pub.publish(String(data=json.dumps({
                "format": "iil_robot.operator_decision", "version": 1, "onset": decision.onset,
                "offset": decision.offset, "model": decision.model, "reason": decision.reason,
                "q_policy": decision.q_policy, "q_reference": decision.q_reference, "needed": decision.needed,
                "stamp": self.get_clock().now().nanoseconds * 1e-9,
            })))
        self.buttons = [0] * len(self.buttons)
        if decision.in_control:
            self.axes = deflection_for(np.concatenate([decision.action[:3], self._turn()]), self.gate)
            self.buttons[self.takeover_button] = 1
            if self.task.gripper_enabled and (decision.action[3] >= 0.5) != (self.gate_gripper >= 0.5):
                self.buttons[self.gripper_button] = 1  # one click; released on the next decision
        else:
            self.axes = [0.0] * 6
        self._publish_joy()

    def _turn(self) -> np.ndarray:
        """The angular velocity that turns the gripper back to its orientation at the episode's start (zero unless
        ``correct_orientation``)."""
        if not self.correct_orientation or self.orientation is None or self.start_orientation is None:
            return np.zeros(3)
        return turn_back(self.orientation, self.start_orientation, TURN_GAIN, max(self.gate.axis_scale[3:]), TURN_TOLERANCE)

    def _publish_joy(self) -> None:
        joy = Joy(axes=list(self.axes), buttons=list(self.buttons))
        joy.header.stamp = self.get_clock().now().to_msg()
        self.joy_pub.publish(joy)


def main(args: list[str] | None = None) -> int:
    return run(SimOperatorNode, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
