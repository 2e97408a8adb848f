"""``sim_arm`` node: a MuJoCo Fetch arm behind the ROS interface of a real arm's drivers.

It takes what the mux sends a real arm (``arm/cmd``: TwistStamped end-effector velocity in m/s
with MoveIt Servo's semantics, rotations included; ``gripper/commands``: Float64MultiArray with one position, as a
ros2_control forward/position gripper controller takes it) and publishes only what a real arm's
drivers and perception would: ``joint_states`` (arm and finger joints, under the robot profile's
``joint_names``), the end-effector pose (``ee_pose``, as franka_robot_state_broadcaster's
``current_pose`` or ur_robot_driver's ``tcp_pose_broadcaster``), object and goal poses as a
perception system would, and optionally camera images as a camera driver (usb_cam, realsense2_camera)
publishes them: for each MuJoCo camera in ``cameras``, ``<camera>/image_raw`` (Image rgb8),
``<camera>/image_raw/compressed`` (JPEG) and ``<camera>/camera_info`` (the pinhole of the camera's
``fovy``), all with the tick's stamp. The ``observer`` node builds the
policy's observation from them and the ``episode_manager`` decides when episodes start and end,
as on a real arm: the simulated arm runs on and never ends an episode. ``~/reset_scene`` is the
one thing a simulator offers that a real arm does not: it does what a person does by hand between
episodes (puts the block back and draws a new goal, seed ``seed + k`` for the k-th scene), and
puts the arm back to its start. ``~/simulate_fault`` (SetBool) is the other: it raises (true) or clears
(false) a fault, as a Franka reflex or a UR protective stop would, so the fault lock and the operator's
recovery can be practised; while it stands the arm ignores commands, and ``status_topic`` (std_msgs/UInt8,
0 healthy, 1 faulted, every tick) says so, as a driver's robot mode does (the ``arm_status`` relay reads it).

Modes:
- real time (default): one step per control period at ``rate``, with the latest command; a
  command older than ``command_timeout`` (MoveIt Servo's ``incoming_command_timeout``, 0.1 s)
  counts as zero, as Servo halts then; a command in another frame than ``frame_id`` is refused
  (Servo would transform it; this stand-in cannot);
- ``lockstep``: one step per step record on ``step`` (the mux's executed action), as fast as
  the graph answers; the state is republished every control period while nothing comes, so
  the loop (re)starts by itself.
"""
from __future__ import annotations

import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; must be set before MuJoCo loads

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, TwistStamped
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, JointState
from std_msgs.msg import Float64MultiArray, String, UInt8
from std_srvs.srv import SetBool, Trigger

from iil_robot.command.mux import step_records_reach
from iil_robot.data.camera import encode_jpeg
from iil_robot.data.records import RecordError, StepRecord
from iil_robot.nodes.common import (
    COMMAND_QOS,
    RECORD_QOS,
    SENSOR_QOS,
    IilNode,
    ParameterError,
    declare,
    declare_unset_list,
    run,
    twist_values,
)
from iil_robot.sim.camera import pinhole
from iil_robot.sim.spec import MAX_ANGULAR_SPEED_RAD_S, TASK_NAMES
from iil_robot.sim.tasks import FetchTaskConfig, FetchTaskEnv

SIM_JOINTS = ("shoulder_pan_joint", "shoulder_lift_joint", "upperarm_roll_joint", "elbow_flex_joint", "forearm_roll_joint",
              "wrist_flex_joint", "wrist_roll_joint", "r_gripper_finger_joint", "l_gripper_finger_joint")
"""The simulated arm's joints that ``joint_states`` carries (Fetch's arm and fingers; torso and head stay fixed)."""


class SimArm(IilNode):
    def __init__(self) -> None:
        super().__init__("sim_arm")
        task = declare(self, "task", "push", f"Fetch task: {', '.join(TASK_NAMES)}")
        if task not in TASK_NAMES:
            raise ParameterError(f"parameter 'task'={task!r} must be one of {TASK_NAMES}")
        self.rate = declare(self, "rate", 20.0, "Control rate (Hz); must divide 500 Hz", 1.0, 500.0)
        self.lockstep = declare(self, "lockstep", False, "Step once per step record instead of in real time")
        self.seed = declare(self, "seed", 0, "Seed of the first scene (the k-th scene reset uses seed + k)", 0, 2**31 - 1)
        self.command_timeout = declare(self, "command_timeout", 0.1, "A command older than this (s) counts as zero "
                                       "(MoveIt Servo's incoming_command_timeout)", 0.01, 10.0)
        self.frame_id = declare(self, "frame_id", "base_link", "Frame of poses and commands (Fetch's world axes)")
        self.gripper_open = declare(self, "gripper_open_position", 0.05, "Gripper controller position of the open "
                                    "fingers (the mux's gripper.open_position)", -10.0, 10.0)
        self.gripper_closed = declare(self, "gripper_closed_position", 0.0, "Gripper controller position of the closed "
                                      "fingers (the mux's gripper.closed_position)", -10.0, 10.0)
        if self.gripper_open == self.gripper_closed:
            raise ParameterError("gripper_open_position and gripper_closed_position must differ")
        renamed = declare(self, "joint_names", list(SIM_JOINTS),
                          "Names under which the arm's seven joints and two fingers are published, in Fetch's order; "
                          "\"\" leaves one out")
        if len(renamed) != len(SIM_JOINTS):
            raise ParameterError(f"parameter 'joint_names' needs {len(SIM_JOINTS)} names (\"\" to leave one out), for "
                                 f"{list(SIM_JOINTS)}; got {len(renamed)}")
        self.joint_names = dict(zip(SIM_JOINTS, renamed))
        self.cameras = declare_unset_list(self, "cameras", "strings", "MuJoCo cameras published each tick as camera drivers "
                                          "do (<camera>/image_raw, /compressed, /camera_info), e.g. external_camera_0, "
                                          "gripper_camera_rgb; none by default (rendering costs CPU; needs MUJOCO_GL=egl)")
        self.image_size = declare(self, "image_size", 128, "Square camera image size (px)", 16, 1024)
        self.jpeg_quality = declare(self, "jpeg_quality", 90, "JPEG quality of <camera>/image_raw/compressed", 1, 100)
        awaited = declare(self, "await_step_subscribers", "", "Comma-separated node names (e.g. recorder,learner) the mux must "
                          "report subscribed to its step records before the arm publishes anything; empty = at once")
        self.awaited = {name.strip() for name in awaited.split(",") if name.strip()}
        status_topic = declare(self, "status_topic", "", "Where to publish the arm's status as a driver's robot mode "
                               "(std_msgs/UInt8: 0 healthy, 1 faulted by ~/simulate_fault); empty = none")
        try:
            self.env = FetchTaskEnv(FetchTaskConfig(task, self.rate, ends_episodes=False))
        except ValueError as err:
            raise ParameterError(f"sim_arm: {err}") from err
        self.spec = f"fetch_{task}/v1"
        self.clock = time.monotonic

        self.joint_pub = self.create_publisher(JointState, "joint_states", SENSOR_QOS)
        self.pose_pubs = {name: self.create_publisher(PoseStamped, name, SENSOR_QOS)
                          for name in ("ee_pose", "object_pose", "goal_pose")}
        self.camera_pubs = {name: self._camera_publishers(name) for name in self.cameras}
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(TwistStamped, "arm/cmd", self._on_cmd, COMMAND_QOS)
        self.create_subscription(Float64MultiArray, "gripper/commands", self._on_gripper, COMMAND_QOS)
        if self.lockstep:
            self.create_subscription(String, "step", self._on_step, RECORD_QOS)
        self.create_service(Trigger, "~/reset_scene", self._on_reset_scene)
        self.create_service(SetBool, "~/simulate_fault", self._on_simulate_fault)
        self.status_pub = self.create_publisher(UInt8, status_topic, SENSOR_QOS) if status_topic else None
        self.faulted = False

        self.velocity = np.zeros(6)  # the twist: linear (m/s), angular (rad/s)
        self.command_time = -np.inf
        self.gripper = 0.0
        self.scene = -1
        self.last_step_time = self.clock()
        self.running = not self.awaited
        self._reset_scene()
        if self.awaited:
            # ``ros2 launch`` starts every node at once: the arm stays silent (so no episode starts) until the mux's
            # step records reach the recorder (and the learner), or the first ticks would be missing from the bag.
            self.diagnostics_sub = self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
            self.get_logger().info(f"waiting for the mux to report {', '.join(sorted(self.awaited))} subscribed to its "
                                   "step records")
        self.create_timer(1.0 / self.rate, self._on_timer)
        self.create_timer(1.0, self._publish_diagnostics)
        mode = "lockstep" if self.lockstep else f"real time at {self.rate:g} Hz"
        self.get_logger().info(f"Fetch {task}, {mode}, max speed {self.env.task.max_speed:.2f} m/s per axis and "
                               f"{MAX_ANGULAR_SPEED_RAD_S:g} rad/s, seed {self.seed}")

    # -- inputs ----------------------------------------------------------------------------

    def _on_cmd(self, msg: TwistStamped) -> None:
        if msg.header.frame_id != self.frame_id:
            self.get_logger().error(f"arm/cmd in frame {msg.header.frame_id!r}, not {self.frame_id!r}: refused, holding "
                                    "(set the mux's frame_id to the arm's)", throttle_duration_sec=1.0)
            self.velocity, self.command_time = np.zeros(6), self.clock()
            return
        velocity = np.array(twist_values(msg.twist))
        if not np.all(np.isfinite(velocity)):
            self.get_logger().error(f"arm/cmd has non-finite values {velocity.tolist()}: ignored, holding",
                                    throttle_duration_sec=1.0)
            velocity = np.zeros(6)
        self.velocity, self.command_time = velocity, self.clock()

    def _on_gripper(self, msg: Float64MultiArray) -> None:
        if len(msg.data) != 1 or not np.isfinite(msg.data[0]):
            self.get_logger().error(f"gripper/commands needs one finite position, got {list(msg.data)}: ignored, the "
                                    "gripper keeps its command", throttle_duration_sec=1.0)
            return
        closure = (msg.data[0] - self.gripper_open) / (self.gripper_closed - self.gripper_open)
        self.gripper = float(np.clip(closure, 0.0, 1.0))

    def _on_step(self, msg: String) -> None:
        try:
            step = StepRecord.decode(msg.data)
        except RecordError as err:
            self.get_logger().error(f"undecodable step record: {err}", throttle_duration_sec=1.0)
            return
        self._step(np.array(step.executed_action))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        if self.running:
            return
        for status in msg.status:
            if status.name == "mux: arbitration" and step_records_reach({kv.key: kv.value for kv in status.values}, self.awaited):
                self.get_logger().info(f"the mux's step records reach {', '.join(sorted(self.awaited))}: running")
                self.destroy_subscription(self.diagnostics_sub)  # the whole graph's diagnostics: not for every tick's executor
                self.running = True
                return

    def _on_timer(self) -> None:
        if not self.lockstep:
            fresh = self.clock() - self.command_time <= self.command_timeout
            self._step(np.append(self.velocity if fresh else np.zeros(6), self.gripper))
        elif self.clock() - self.last_step_time > 1.0 / self.rate:
            self._publish_state()  # nudge a lockstep loop that is waiting for an observation

    def _on_simulate_fault(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        self.faulted = bool(request.data)
        self.get_logger().warn("simulated fault: the arm ignores commands until it is cleared" if self.faulted
                               else "simulated fault cleared")
        response.success, response.message = True, "faulted" if self.faulted else "cleared"
        return response

    def _on_reset_scene(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self._reset_scene()
        response.success, response.message = True, f"scene {self.scene} (seed {self.seed + self.scene})"
        return response

    # -- simulation ------------------------------------------------------------------------

    def _step(self, action: np.ndarray) -> None:
        if not self.running:  # waiting for the recorder (await_step_subscribers): silent and still
            return
        if self.faulted:  # as a reflex: the arm stops and takes no command; the gripper keeps its state
            action = np.append(np.zeros(6), action[6])
        self.env.step(action)
        self.last_step_time = self.clock()
        self._publish_state()

    def _reset_scene(self) -> None:
        self.scene += 1
        self.env.reset(seed=self.seed + self.scene)
        self.velocity, self.command_time = np.zeros(6), -np.inf  # no old command carries into the new scene
        if self.running:
            self._publish_state()

    # -- outputs ---------------------------------------------------------------------------

    def _publish_state(self) -> None:
        stamp = self.get_clock().now().to_msg()
        poses = self.env.poses()
        for name, pose in (("ee_pose", poses.ee), ("object_pose", poses.object), ("goal_pose", poses.goal)):
            if pose is not None:
                self.pose_pubs[name].publish(self._pose(pose, stamp))
        readout = self.env.joint_states()
        published = [(self.joint_names[n], p, v) for n, p, v in zip(readout.names, readout.position, readout.velocity)
                     if self.joint_names.get(n)]  # joints and names the profile gives, in Fetch's order
        joints = JointState(name=[n for n, _, _ in published], position=[float(p) for _, p, _ in published],
                            velocity=[float(v) for _, _, v in published])
        joints.header.stamp, joints.header.frame_id = stamp, self.frame_id
        self.joint_pub.publish(joints)
        if self.status_pub is not None:
            self.status_pub.publish(UInt8(data=int(self.faulted)))
        for name in list(self.camera_pubs):
            self._publish_images(name, stamp)

    def _pose(self, pose, stamp) -> PoseStamped:
        msg = PoseStamped()
        msg.header.stamp, msg.header.frame_id = stamp, self.frame_id
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in pose.position)
        o = msg.pose.orientation
        o.x, o.y, o.z, o.w = (float(v) for v in pose.orientation)  # readout gives (x, y, z, w)
        return msg

    def _camera_publishers(self, name: str) -> tuple:
        try:
            fx, fy, cx, cy = pinhole(self.env.model, name, self.image_size, self.image_size)
        except ValueError as err:
            raise ParameterError(f"parameter 'cameras': {err}") from err
        size = self.image_size
        info = CameraInfo(height=size, width=size, distortion_model="plumb_bob", d=[0.0] * 5,
                          k=[fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0], r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                          p=[fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0])
        info.header.frame_id = f"{name}_optical_frame"
        return (self.create_publisher(Image, f"{name}/image_raw", SENSOR_QOS),
                self.create_publisher(CompressedImage, f"{name}/image_raw/compressed", SENSOR_QOS),
                self.create_publisher(CameraInfo, f"{name}/camera_info", SENSOR_QOS), info)

    def _publish_images(self, name: str, stamp) -> None:
        image_pub, jpeg_pub, info_pub, info = self.camera_pubs[name]
        try:
            rgb = self.env.render_image(self.image_size, self.image_size, name)
        except RuntimeError as err:
            self.get_logger().error(f"camera {name} disabled: {err}. Set MUJOCO_GL=egl (or osmesa) before starting.")
            del self.camera_pubs[name]
            return
        image = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8", step=rgb.shape[1] * 3, data=rgb.tobytes())
        jpeg = CompressedImage(format="rgb8; jpeg compressed bgr8", data=encode_jpeg(rgb, self.jpeg_quality))
        for msg in (image, jpeg, info):
            msg.header.stamp, msg.header.frame_id = stamp, info.header.frame_id
        image_pub.publish(image)
        jpeg_pub.publish(jpeg)
        info_pub.publish(info)

    def _publish_diagnostics(self) -> None:
        status = DiagnosticStatus(name="sim_arm", hardware_id=self.spec, level=DiagnosticStatus.OK,
                                  message=f"scene {self.scene}, tick {self.env.steps}" if self.running else
                                  f"waiting for the mux to report {', '.join(sorted(self.awaited))} subscribed")
        status.values = [KeyValue(key=k, value=str(v)) for k, v in (
            ("scene", self.scene), ("tick", self.env.steps), ("lockstep", self.lockstep))]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)


def _hold(node: SimArm) -> None:
    node.env.close()


def main(args: list[str] | None = None) -> int:
    return run(SimArm, on_exit=_hold, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
