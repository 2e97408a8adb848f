"""``observer`` node: the policy's observation from named fields of the arm driver's standard topics.

Parameters come from a robot profile (``config/profiles/<robot>.yaml``)::

    observation_spec: panda/v1
    frame_id: panda_link0
    fields: [ee, joints, grip]            # the order of the values
    fields.ee.kind: position              # acting/observer.py FIELD_KINDS
    fields.ee.topic: franka_robot_state_broadcaster/current_pose
    fields.joints.kind: joint_positions
    fields.joints.topic: joint_states
    fields.joints.joints: [panda_joint1, ...]
    fields.tcp.kind: position             # from TF instead of a topic: the pose of tool0 in frame_id
    fields.tcp.child_frame_id: tool0
    fields.goal.relative_to: ee           # relative to the end effector: R^T (goal - ee), with
    fields.goal.expressed_in: ee_q        # ee_q an orientation field (docs/learners.md)

Publishes ``observation`` (``iil_robot.observation`` JSON with its layout) each time a message of
the ``publish_on`` field arrives and every field is fresh; otherwise nothing (the policy then
proposes nothing and the mux holds) and ``/diagnostics`` names the fields that hold it back.
TF fields are looked up (the newest transform) just before each observation, so ``publish_on``
names a topic field; ``tf2_ros`` is imported only where a field reads TF.
"""
from __future__ import annotations

from typing import Any, Callable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, TwistStamped, WrenchStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, Float64MultiArray, String

from iil_robot.acting.observer import FieldConfig, Observer, ObserverConfig, ObserverError, transform_values
from iil_robot.nodes.clients.transforms import TransformLookup, import_tf2_ros
from iil_robot.nodes.common import RECORD_QOS, SENSOR_QOS, IilNode, ParameterError, declare, declare_unset_list, run, seconds

MESSAGES: dict[str, type] = {
    "geometry_msgs/PoseStamped": PoseStamped, "geometry_msgs/TwistStamped": TwistStamped,
    "geometry_msgs/WrenchStamped": WrenchStamped, "sensor_msgs/JointState": JointState,
    "std_msgs/Float64": Float64, "std_msgs/Float64MultiArray": Float64MultiArray,
}
VALUES: dict[str, Callable[[Any], tuple[Any, ...]]] = {
    "position": lambda m: (m.pose.position.x, m.pose.position.y, m.pose.position.z),
    "orientation": lambda m: (m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z, m.pose.orientation.w),
    "joint_positions": lambda m: tuple(m.position),
    "joint_velocities": lambda m: tuple(m.velocity),
    "width": lambda m: tuple(m.position),
    "linear_velocity": lambda m: (m.twist.linear.x, m.twist.linear.y, m.twist.linear.z),
    "angular_velocity": lambda m: (m.twist.angular.x, m.twist.angular.y, m.twist.angular.z),
    "force": lambda m: (m.wrench.force.x, m.wrench.force.y, m.wrench.force.z),
    "torque": lambda m: (m.wrench.torque.x, m.wrench.torque.y, m.wrench.torque.z),
    "float64": lambda m: (m.data,),
    "float64_array": lambda m: tuple(m.data),
}
"""Field kind -> its values in a message (observer.FIELD_KINDS names the message type)."""


class ObserverNode(IilNode):
    def __init__(self) -> None:
        super().__init__("observer")
        try:
            config = ObserverConfig(
                spec=declare(self, "observation_spec", "", "Name of the observation layout, e.g. panda/v1"),
                fields=tuple(self._declare_field(name)
                             for name in declare_unset_list(self, "fields", "strings", "Field names, in value order")),
                frame_id=declare(self, "frame_id", "base_link", "Frame every pose, twist and wrench must be in"),
            )
        except ObserverError as err:
            raise ParameterError(f"observer: {err}") from err
        self.observer = Observer(config)
        trigger = declare(self, "publish_on", config.fields[0].name,
                          "Field whose messages trigger an observation (the one arriving at the control rate)")
        if trigger not in {f.name for f in config.fields}:
            raise ParameterError(f"parameter 'publish_on'={trigger!r} must name a field: {[f.name for f in config.fields]}")
        self.tf_fields = [f for f in config.fields if f.child_frame_id]
        if trigger in {f.name for f in self.tf_fields}:
            raise ParameterError(f"parameter 'publish_on'={trigger!r} names a TF field, and TF fields are looked up on "
                                 "each observation: set publish_on to a topic field that arrives at the control rate "
                                 f"(one of {[f.name for f in config.fields if f.topic]})")
        self.trigger = trigger
        self.transforms = TransformLookup(self, import_tf2_ros(self.tf_fields)) if self.tf_fields else None
        self.published = 0
        self.obs_pub = self.create_publisher(String, "observation", RECORD_QOS)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        for topic in dict.fromkeys(f.topic for f in config.fields if f.topic):
            fields = self.observer.fields_of(topic)
            types = {f.message_type for f in fields}
            if len(types) > 1:
                raise ParameterError(f"observer: fields {[f.name for f in fields]} read {topic} as different types "
                                     f"{sorted(types)}")
            self.create_subscription(MESSAGES[types.pop()], topic, self._callback(topic, fields), SENSOR_QOS)
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(f"{config.spec}: {len(config.layout)} values from {len(config.fields)} fields, "
                               f"published on each {trigger} message")

    def _declare_field(self, name: str) -> FieldConfig:
        p = f"fields.{name}"
        return FieldConfig(
            name=name,
            kind=declare(self, f"{p}.kind", "", "What the field reads (acting/observer.py FIELD_KINDS)"),
            topic=declare(self, f"{p}.topic", "", "Topic it reads (empty where it reads TF: child_frame_id)"),
            timeout=declare(self, f"{p}.timeout", 0.2, "Seconds after its stamp that a value is stale", 0.001, 3600.0),
            joints=tuple(declare_unset_list(self, f"{p}.joints", "strings", "JointState fields: the joints it reads, by name")),
            size=declare(self, f"{p}.size", 0, "float64_array: the number of values", 0, 100000),
            frame_id=declare(self, f"{p}.frame_id", "", "Frame its header, or its TF lookup's, must name "
                             "(empty: the observer's frame_id)"),
            child_frame_id=declare(self, f"{p}.child_frame_id", "", "position/orientation from TF instead of a topic: "
                                   "the frame whose pose in frame_id it reads, e.g. tool0 (topic empty)"),
            relative_to=declare(self, f"{p}.relative_to", "", "position: the position field subtracted from it, e.g. ee "
                                "(its offset from the end effector); empty: absolute"),
            expressed_in=declare(self, f"{p}.expressed_in", "", "The orientation field in whose axes its values are "
                                 "given, e.g. ee_orientation (the end effector's frame); empty: frame_id's axes"),
        )

    def _callback(self, topic: str, fields: list[FieldConfig]) -> Callable[[Any], None]:
        stamped = hasattr(MESSAGES[fields[0].message_type](), "header")

        def on_message(msg: Any) -> None:
            now = self.get_clock().now().nanoseconds * 1e-9
            stamp = seconds(msg.header.stamp) if stamped else now
            frame = msg.header.frame_id if stamped else ""
            names = tuple(msg.name) if isinstance(msg, JointState) else ()
            for field in fields:
                try:
                    self.observer.update(field, stamp, frame, VALUES[field.kind](msg), names)
                except ObserverError as err:
                    self.get_logger().warning(f"{err}; the observation holds", throttle_duration_sec=2.0)
            if any(f.name == self.trigger for f in fields):
                self._look_up_transforms()
                self._publish(now)

        return on_message

    def _look_up_transforms(self) -> None:
        for field in self.tf_fields:
            target = self.observer.config.frame_of(field)
            try:
                transform = self.transforms.newest(target, field.child_frame_id)
                self.observer.update(field, seconds(transform.header.stamp), transform.header.frame_id,
                                     transform_values(field.kind, transform))
            except self.transforms.errors as err:
                self.observer.hold(field, f"TF lookup {target} -> {field.child_frame_id} failed: {err}")
                self.get_logger().warning(f"field {field.name!r}: TF lookup {target} -> {field.child_frame_id} failed "
                                          f"({type(err).__name__}: {err}); the observation holds", throttle_duration_sec=2.0)
            except ObserverError as err:
                self.get_logger().warning(f"{err}; the observation holds", throttle_duration_sec=2.0)

    def _publish(self, now: float) -> None:
        observation = self.observer.observe(now)
        if observation is None:
            self.get_logger().warning("no observation: " + "; ".join(f"{k}: {v}" for k, v in self.observer.problems.items()),
                                      throttle_duration_sec=2.0)
            return
        self.obs_pub.publish(String(data=observation.encode()))
        self.published += 1

    def _publish_diagnostics(self) -> None:
        problems = dict(self.observer.problems)
        status = DiagnosticStatus(name="observer", hardware_id=self.observer.config.spec,
                                  level=DiagnosticStatus.WARN if problems else DiagnosticStatus.OK,
                                  message=("holding: " + ", ".join(problems)) if problems else "all fields fresh")
        status.values = [KeyValue(key="published", value=str(self.published))] + [
            KeyValue(key=name, value=text) for name, text in problems.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)


def main(args: list[str] | None = None) -> int:
    return run(ObserverNode, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
