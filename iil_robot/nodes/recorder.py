"""``recorder`` node: every configured topic into rosbag2 MCAP bags, episodes marked.

Subscribes raw (CDR bytes, written as received) to ``topics.<name>.{topic,type,qos}`` and to the JPEG
frames of each camera named in ``cameras`` (``camera/<name>/image_raw/compressed``, as the camera node
publishes them, so the camera names are given once, as the policy's and the learner's); the
writer thread of :class:`iil_robot.data.recorder.Recorder` does the disk work, so a callback only
stamps and queues. Services ``~/episode/{start,success,failure,timeout,reset}`` (Trigger)
publish an episode event (origin ``service``) on ``episode/event``; each finished episode's
summary goes out on ``episode/summary``. A write error (e.g. a full disk) stops recording
with an error in the log and on ``/diagnostics``; the node stays up and the graph runs on.
"""
from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from std_srvs.srv import Trigger

from iil_robot.data.bags import QOS_KINDS, BagError, TopicSpec
from iil_robot.data.episodes import EpisodeSummary
from iil_robot.data.frames import camera_names, compressed_topic
from iil_robot.data.recorder import Recorder, RecorderConfig
from iil_robot.data.records import EPISODE_EVENT_KINDS, EpisodeEvent
from iil_robot.nodes.common import EVENTS_QOS, RECORD_QOS, IilNode, ParameterError, declare, interface_class, override_names, run

# name: (topic, type, qos). The step records and episode events are looked up by these names.
DEFAULT_TOPICS: dict[str, tuple[str, str, str]] = {
    "step": ("step", "std_msgs/msg/String", "reliable"),
    "episode_event": ("episode/event", "std_msgs/msg/String", "latched"),
    "intervention": ("intervention", "std_msgs/msg/String", "latched"),
    "arm_cmd": ("arm/cmd", "geometry_msgs/msg/TwistStamped", "reliable"),
    "arm_gripper": ("arm/gripper", "std_msgs/msg/Float64", "reliable"),
    "gripper_commands": ("gripper/commands", "std_msgs/msg/Float64MultiArray", "reliable"),
    "gripper_grasped": ("gripper/grasped", "std_msgs/msg/Float64", "reliable"),
    "human_cmd": ("human/cmd", "geometry_msgs/msg/TwistStamped", "reliable"),
    "human_engaged": ("human/engaged", "std_msgs/msg/Bool", "latched"),
    "human_gripper": ("human/gripper", "std_msgs/msg/Float64", "latched"),
    "proposal": ("policy/proposal", "std_msgs/msg/String", "reliable"),
    "observation": ("observation", "std_msgs/msg/String", "reliable"),
    "joint_states": ("joint_states", "sensor_msgs/msg/JointState", "sensor"),
    "ee_pose": ("ee_pose", "geometry_msgs/msg/PoseStamped", "sensor"),
    "image": ("image", "sensor_msgs/msg/Image", "sensor"),
    "diagnostics": ("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray", "reliable"),
}
# Subscriber QoS per kind: reliable-volatile matches reliable publishers of any durability;
# latched (transient-local) also gets the history of events published before the recorder
# started; sensor (best effort) matches every publisher.
# Best effort with a deeper queue than qos_profile_sensor_data (5): the recorder must ride out
# a scheduling stall of its executor at 10x a camera's rate without losing frames.
RECORD_SENSOR_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE,
                               history=HistoryPolicy.KEEP_LAST)
SUBSCRIBE_QOS = {"reliable": RECORD_QOS, "latched": EVENTS_QOS, "sensor": RECORD_SENSOR_QOS}


class RecorderNode(IilNode):
    def __init__(self) -> None:
        super().__init__("recorder")
        d = RecorderConfig()
        specs = self._declare_topics()
        names = list(specs)
        config = RecorderConfig(
            output_dir=declare(self, "output_dir", d.output_dir, "Directory for the bags (one per session and part)"),
            prefix=declare(self, "prefix", d.prefix, "Bag name prefix"),
            split_period=declare(self, "split_period", d.split_period,
                                 "The most a crash loses (s): an MCAP file is closed before its oldest message has waited "
                                 "this long", 0.05, 1.0),
            flush_period=declare(self, "flush_period", d.flush_period,
                                 "What a crash loses after `replay --repair` (s): the open file is flushed before its oldest "
                                 "unflushed message has waited this long", 0.01, 1.0),
            max_bag_duration=declare(self, "max_bag_duration", d.max_bag_duration, "Seconds per bag before the next part",
                                     5.0, 86400.0),
            queue_limit=declare(self, "queue_limit", d.queue_limit, "Messages queued for the writer before dropping",
                                100, 10_000_000),
            compression=declare(self, "compression", d.compression, "MCAP chunk compression: none, lz4, zstd"),
            operator=declare(self, "operator", d.operator, "Operator name stored with each episode"),
            task=declare(self, "task", d.task, "Task name stored with each episode"),
            step_topic=specs["step"].topic if "step" in specs else "",
            event_topic=specs["episode_event"].topic if "episode_event" in specs else "",
        )
        if config.flush_period > config.split_period:
            raise ParameterError(f"flush_period {config.flush_period} must be <= split_period {config.split_period}")
        if config.compression not in ("none", "lz4", "zstd"):
            raise ParameterError(f"parameter 'compression'={config.compression!r} must be none, lz4 or zstd")

        self.event_pub = self.create_publisher(String, "episode/event", EVENTS_QOS)
        self.summary_pub = self.create_publisher(String, "episode/summary", EVENTS_QOS)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.recorder = Recorder(config, list(specs.values()), on_episode=self._on_episode)
        try:
            bag = self.recorder.start()
        except BagError as err:
            raise ParameterError(f"cannot start recording in {config.output_dir!r}: {err}") from err
        self.subscriptions_ = [
            self.create_subscription(interface_class(spec.msgtype), spec.topic,
                                     lambda data, i=i: self.recorder.put(i, self._now_ns(), data),
                                     SUBSCRIBE_QOS[spec.qos], raw=True)
            for i, spec in enumerate(specs[n] for n in names)
        ]
        for kind in EPISODE_EVENT_KINDS:
            self.create_service(Trigger, f"~/episode/{kind}", lambda req, res, k=kind: self._on_service(k, res))
        self.reported_error = False
        self.reported_late_start = False
        self.reported_undecodable = 0
        self.create_timer(0.2, self._check_error)
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(f"recording {len(specs)} topics into {bag}: " + ", ".join(s.topic for s in specs.values()))

    def _declare_topics(self) -> dict[str, TopicSpec]:
        names = override_names(self, "topics") or list(DEFAULT_TOPICS)
        specs = {}
        for name in names:
            topic, msgtype, qos = DEFAULT_TOPICS.get(name, ("", "std_msgs/msg/String", "reliable"))
            p = f"topics.{name}"
            topic = declare(self, f"{p}.topic", topic, "Topic to record")
            msgtype = declare(self, f"{p}.type", msgtype, "Message type, e.g. std_msgs/msg/String")
            qos = declare(self, f"{p}.qos", qos, "reliable | latched (transient local) | sensor (best effort)")
            if not topic:
                raise ParameterError(f"parameter '{p}.topic' is empty")
            if qos not in QOS_KINDS:
                raise ParameterError(f"parameter '{p}.qos'={qos!r} must be one of {QOS_KINDS}")
            interface_class(msgtype)
            specs[name] = TopicSpec(self.resolve_topic_name(topic), msgtype, qos)
        return specs | self._declare_cameras({spec.topic for spec in specs.values()})

    def _declare_cameras(self, listed: set[str]) -> dict[str, TopicSpec]:
        """The JPEG topic of each camera in ``cameras`` not already in the topic list (an explicit ``topics`` entry
        for a camera stays as it is)."""
        text = declare(self, "cameras", "front", "Cameras whose JPEG frames are recorded, comma-separated (e.g. front,wrist): "
                       "camera/<name>/image_raw/compressed each, as the camera node publishes them; empty = none")
        try:
            names = camera_names(text)
            topics = {name: self.resolve_topic_name(compressed_topic(name).lstrip("/")) for name in names}
        except (ValueError, RuntimeError) as err:  # rclpy: RuntimeError on a name that makes no valid topic
            raise ParameterError(f"parameter 'cameras'={text!r}: {err}; give camera names, comma-separated, e.g. "
                                 "front,wrist") from err
        return {f"cameras.{name}": TopicSpec(topic, "sensor_msgs/msg/CompressedImage", "sensor")
                for name, topic in topics.items() if topic not in listed}

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_service(self, kind: str, response: Trigger.Response) -> Trigger.Response:
        event = EpisodeEvent(kind, "service", self._now_ns() * 1e-9)
        self.event_pub.publish(String(data=event.encode()))
        self.get_logger().info(f"episode {kind} (service)")
        response.success, response.message = True, f"episode {kind} at {event.stamp:.3f}"
        return response

    def _on_episode(self, summary: EpisodeSummary) -> None:  # writer thread
        self.summary_pub.publish(String(data=summary.encode()))

    def _check_error(self) -> None:
        error = self.recorder.stats.error
        if error is None or self.reported_error:
            return
        self.reported_error = True
        self.get_logger().error(f"recording stopped: {error}")
        for sub in self.subscriptions_:
            self.destroy_subscription(sub)
        self.subscriptions_ = []

    def destroy_node(self) -> None:
        self.recorder.stop()  # the bag closed (metadata.yaml written) however the node ends; again after _finish: a no-op
        super().destroy_node()

    def _report_undecodable(self) -> None:
        """Once a second at most: the step records and episode events that did not decode since the last report."""
        s = self.recorder.stats
        new, self.reported_undecodable = s.undecodable - self.reported_undecodable, s.undecodable
        if new:
            self.get_logger().error(f"{new} undecodable step record(s) or episode event(s) in the last second, written to the "
                                    f"bag as received and left out of the episode summaries; the newest: {s.last_undecodable}")

    def _publish_diagnostics(self) -> None:
        s = self.recorder.stats
        if s.ticks_before_first_record and not self.reported_late_start:
            self.reported_late_start = True
            self.get_logger().warning(f"the first step record was mux tick {s.ticks_before_first_record}: the ticks before it "
                                      "were published before this recorder's subscription matched the mux and are not in "
                                      "this recording (to keep them, start the mux once the recorder is up and subscribed)")
        self._report_undecodable()
        status = DiagnosticStatus(name="recorder", hardware_id=str(self.recorder.bag_path))
        status.level = (DiagnosticStatus.ERROR if s.error
                        else DiagnosticStatus.WARN if s.dropped or s.ticks_missing else DiagnosticStatus.OK)
        status.message = f"stopped: {s.error}" if s.error else f"recording to {self.recorder.bag_path}"
        status.values = [KeyValue(key=k, value=str(v)) for k, v in (
            ("received", s.received), ("written", s.written), ("dropped", s.dropped), ("queued", self.recorder.queued),
            ("episodes", s.episodes), ("undecodable", s.undecodable), ("ticks_before_first_record", s.ticks_before_first_record),
            ("ticks_missing", s.ticks_missing), ("bag", self.recorder.bag_path))]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)


def _finish(node: RecorderNode) -> None:
    node.recorder.stop()
    s = node.recorder.stats
    node.get_logger().info(f"recorder stopped: {s.written} messages written, {s.dropped} dropped, {s.episodes} episodes, "
                           f"{s.ticks_before_first_record} mux ticks before the first step record, {s.ticks_missing} missing "
                           f"between step records; bags: {s.bags}")


def main(args: list[str] | None = None) -> int:
    return run(RecorderNode, on_exit=_finish, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
