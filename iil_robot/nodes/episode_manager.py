"""``episode_manager`` node: owns episode state (``iil_robot.acting.episode_manager``) on any arm.

Subscribes ``observation`` (the observer's): each one advances the state machine (success
detector, time limit, reset drive). Publishes ``episode/event`` (start and outcomes),
``episode/state`` (latched: ready, running, ended, resetting), ``episode/hold`` (latched Bool,
true while no episode runs: the mux's ``episode`` lock, which blocks the policy but not the
operator or the reset), and while resetting ``reset/cmd`` + ``reset/engaged`` (the mux's
``reset`` source, under the same limits and locks). Services ``~/start``, ``~/success``,
``~/failure`` and ``~/reset`` (std_srvs/Trigger), and ``episode/request`` (std_msgs/String: the
SpaceMouse's buttons, the console's keys), take the operator's or a script's requests; a request in
the wrong state is refused with the reason.

An episode's end is stamped where the mux stopped the policy: the manager first raises the
``episode/hold`` lock, then publishes the end event stamped with the first ``step`` record (the
mux's) at or after the hold that the policy did not drive. So a policy tick taken before the lock
reached the mux stays inside the episode it acted in, and no policy tick lies between episodes.
Without step records (no mux) the end goes out after ``end_wait`` seconds, stamped then. With ``scene_reset_service`` set (the
simulator's ``/sim_arm/reset_scene``, which does what a person does by hand at a real arm) it is
called at the start of every reset. With ``success_classifier`` set (``module:attribute``, your
model: ``iil_robot.acting.success``) the newest ``success_camera`` images are judged too, and a
running episode the classifier calls done ends as a success.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import TwistStamped
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from iil_robot.acting.episode_manager import EpisodeConfig, EpisodeError, EpisodeManager
from iil_robot.acting.success import ClassifierError, ImageSuccess, load_classifier
from iil_robot.data.camera import CameraError, image_rgb
from iil_robot.data.records import EpisodeEvent, Observation, RecordError, StepRecord
from iil_robot.nodes.common import (
    COMMAND_QOS,
    EVENTS_QOS,
    LATCHED_QOS,
    RECORD_QOS,
    SENSOR_QOS,
    IilNode,
    ParameterError,
    declare,
    declare_floats,
    declare_unset_list,
    run,
    twist_stamped,
)


class EpisodeManagerNode(IilNode):
    def __init__(self) -> None:
        super().__init__("episode_manager")
        d = EpisodeConfig()
        try:
            config = EpisodeConfig(
                time_limit=declare(self, "time_limit", d.time_limit, "Seconds an episode may run (0: no limit)",
                                   0.0, 86400.0),
                success_fields=tuple(declare_unset_list(self, "success_fields", "strings",
                                                        "Two observation fields whose x, y, z must meet for success, "
                                                        "e.g. [object, goal]; unset: success only from the operator")),
                success_distance=declare(self, "success_distance", d.success_distance,
                                         "Metres between the success fields that count as success", 0.0001, 10.0),
                auto_start=declare(self, "auto_start", d.auto_start, "Start the next episode when the reset is done"),
                reset_field=declare(self, "reset_field", d.reset_field, "Observation field of the end effector's x, y, z"),
                reset_pose=tuple(declare_unset_list(self, "reset_pose", "floats",
                                                    "x, y, z (m, command frame) the reset drives to; unset: no drive")),
                reset_ranges=declare_floats(self, "reset_ranges", d.reset_ranges,
                                            "Half-widths (m) of the reset pose's uniform randomisation"),
                reset_speed=declare(self, "reset_speed", d.reset_speed, "Speed (m/s) of the reset drive", 0.001, 2.0),
                reset_tolerance=declare(self, "reset_tolerance", d.reset_tolerance, "Metres from the reset pose that "
                                        "count as reached", 0.0001, 1.0),
                reset_timeout=declare(self, "reset_timeout", d.reset_timeout, "Seconds a reset may take before it is "
                                      "aborted (the arm holds)", 0.1, 3600.0),
                workspace_min=tuple(declare_unset_list(self, "workspace_min", "floats",
                                                       "Lower corner (x, y, z) a reset pose must lie in; unset: unchecked")),
                workspace_max=tuple(declare_unset_list(self, "workspace_max", "floats",
                                                       "Upper corner (x, y, z) a reset pose must lie in")),
            )
        except EpisodeError as err:
            raise ParameterError(f"episode_manager: {err}") from err
        self.frame_id = declare(self, "frame_id", "base_link", "Frame of the reset commands (the command frame)")
        self.end_wait = declare(self, "end_wait", 0.5, "Seconds an end event waits for the mux's first step without the "
                                "policy before it goes out anyway (no mux running)", 0.01, 10.0)
        seed = declare(self, "seed", 0, "Seed of the reset pose's randomisation", 0, 2**31 - 1)
        scene = declare(self, "scene_reset_service", "", "Simulator only: Trigger service called at every reset "
                        "(/sim_arm/reset_scene puts the block back); empty: none")
        self.manager = EpisodeManager(config, np.random.default_rng(seed))
        self.image_success = self._declare_classifier()
        self.scene_client = self.create_client(Trigger, scene) if scene else None
        self.event_pub = self.create_publisher(String, "episode/event", EVENTS_QOS)
        self.state_pub = self.create_publisher(String, "episode/state", LATCHED_QOS)
        self.hold_pub = self.create_publisher(Bool, "episode/hold", LATCHED_QOS)
        self.reset_pub = self.create_publisher(TwistStamped, "reset/cmd", COMMAND_QOS)
        self.engaged_pub = self.create_publisher(Bool, "reset/engaged", LATCHED_QOS)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(String, "observation", self._on_observation, RECORD_QOS)
        requests: dict[str, Callable[[float], list[EpisodeEvent]]] = {
            "start": self.manager.start, "success": lambda now: self.manager.end("success", now),
            "failure": lambda now: self.manager.end("failure", now), "reset": self.manager.reset}
        for name, request in requests.items():
            self.create_service(Trigger, f"~/{name}", self._service(name, request))
        self.requests = requests
        self.create_subscription(String, "episode/request", self._on_request, EVENTS_QOS)
        self.create_subscription(String, "step", self._on_step, RECORD_QOS)
        self.state, self.engaged, self.problem = "", False, ""
        self.reset_distance: float | None = None  # metres to go while the reset drives
        self.reset_from: float | None = None  # the largest distance seen in this reset
        self.pending: list[EpisodeEvent] = []  # end events waiting for the mux's first step without the policy
        self.held_at = 0.0  # when the hold went out for the pending end
        self.create_timer(0.05, self._flush_late_end)
        self._after(self.manager.state, [])
        self.create_timer(0.5, self._publish_diagnostics)  # twice a second: the console's progress line
        self.get_logger().info(f"episodes: time limit {config.time_limit:g} s, success when "
                               f"{' meets '.join(config.success_fields) or 'the operator says so'}, reset to "
                               f"{list(config.reset_pose) or 'no pose'}{', auto start' if config.auto_start else ''}")

    def _declare_classifier(self) -> ImageSuccess | None:
        spec = declare(self, "success_classifier", "", "Image success classifier 'module:attribute' (your model: "
                       "RGB image -> probability of success); empty: none")
        camera = declare(self, "success_camera", "camera/front/image_raw", "sensor_msgs/Image (rgb8 or bgr8) topic the "
                         "classifier judges")
        d = ImageSuccess(classifier=float)
        threshold = declare(self, "success_threshold", d.threshold, "Probability at or above which an image counts as "
                            "success", 0.0, 1.0)
        frames = declare(self, "success_frames", d.frames, "Images in a row that must count as success", 1, 1000)
        rate = declare(self, "success_rate", d.rate, "Largest number of images judged per second", 0.1, 100.0)
        if not spec:
            return None
        try:
            classifier = load_classifier(spec)
        except ClassifierError as err:
            raise ParameterError(f"episode_manager: {err}") from err
        self.create_subscription(Image, camera, self._on_image, SENSOR_QOS)
        self.get_logger().info(f"success classifier {spec} on {camera}: success at p >= {threshold:g}, "
                               f"{frames} image(s) in a row")
        return ImageSuccess(classifier, threshold, frames, rate)

    # -- inputs -----------------------------------------------------------------------------

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_observation(self, msg: String) -> None:
        try:
            observation = Observation.decode(msg.data)
        except RecordError as err:
            self.get_logger().error(f"undecodable observation: {err}", throttle_duration_sec=2.0)
            return
        before = self.manager.state
        try:
            events = self.manager.update(observation, self._now())
            self.problem = self.manager.held
        except EpisodeError as err:
            events, self.problem = [], str(err)
            self.get_logger().error(str(err), throttle_duration_sec=5.0)
        self._after(before, events)
        self._drive(observation)
        self._track_reset(observation)

    def _on_image(self, msg: Image) -> None:
        if self.manager.state != "running":
            self.image_success.restart()
            return
        try:
            rgb = image_rgb(msg.encoding, msg.width, msg.height, msg.step, msg.data)
        except CameraError as err:
            self.get_logger().error(f"success camera: {err}: not judged", throttle_duration_sec=5.0)
            return
        try:
            done = self.image_success.judge(rgb, self._now())
        except ClassifierError as err:
            self.problem = str(err)
            self.get_logger().error(f"{err}: this image is not judged", throttle_duration_sec=5.0)
            return
        if done:
            self._service("success", lambda now: self.manager.end("success", now))(Trigger.Request(), Trigger.Response())

    def _track_reset(self, observation: Observation) -> None:
        """Distance to go and from where, for the reset's progress line (diagnostics, the console)."""
        try:
            distance = self.manager.reset_distance(observation)
        except EpisodeError:
            distance = None
        if distance is None:
            self.reset_distance = self.reset_from = None
            return
        self.reset_distance = distance
        self.reset_from = max(distance, self.reset_from or 0.0)

    def _on_step(self, msg: String) -> None:
        if not self.pending:
            return
        try:
            step = StepRecord.decode(msg.data)
        except RecordError as err:
            self.get_logger().error(f"undecodable step record: {err}", throttle_duration_sec=2.0)
            return
        if step.source != "policy" and step.stamp >= self.held_at:
            self._publish_pending(step.stamp)

    def _flush_late_end(self) -> None:
        if self.pending and self._now() - self.held_at >= self.end_wait:
            self.get_logger().warning(f"no step record without the policy {self.end_wait:g} s after the episode hold "
                                      "(is the mux running?): the end event goes out stamped now",
                                      throttle_duration_sec=10.0)
            self._publish_pending(self._now())

    def _publish_pending(self, stamp: float) -> None:
        for event in self.pending:
            self._publish_event(dataclasses.replace(event, stamp=max(event.stamp, stamp)))
        self.pending = []

    def _publish_event(self, event: EpisodeEvent) -> None:
        self.event_pub.publish(String(data=event.encode()))
        self.get_logger().info(f"episode {self.manager.episodes}: {event.event}")

    def _on_request(self, msg: String) -> None:
        """A request from the SpaceMouse's buttons or the console's keys (``start``, ``success``, ``failure``, ``reset``)."""
        request = self.requests.get(msg.data)
        if request is None:
            self.get_logger().warning(f"unknown episode request {msg.data[:40]!r}: expected one of {list(self.requests)}",
                                      throttle_duration_sec=2.0)
            return
        self._service(msg.data, request)(Trigger.Request(), Trigger.Response())

    def _service(self, name: str, request: Callable[[float], list[EpisodeEvent]]):
        def handle(_req: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
            before = self.manager.state
            try:
                events = request(self._now())
            except EpisodeError as err:
                response.success, response.message = False, f"{name} refused: {err}"
                self.get_logger().warning(response.message)
                return response
            self._after(before, events)
            response.success, response.message = True, f"{name}: now {self.manager.state}"
            return response

        return handle

    # -- outputs ----------------------------------------------------------------------------

    def _after(self, before: str, events: list[EpisodeEvent]) -> None:
        state = self.manager.state
        changed, was_running = state != self.state, self.state == "running"
        if changed:  # the hold goes out before the end event (see the module docstring)
            self.state = state
            self.state_pub.publish(String(data=state))
            self.hold_pub.publish(Bool(data=state != "running"))
            if was_running:
                self.held_at = self._now()
        for event in events:
            if event.event != "start":
                self.pending.append(event)
                continue
            self._publish_pending(event.stamp)  # an end still waiting goes out before the next start
            self._publish_event(event)
        if changed and state == "resetting" and self.scene_client is not None:
            self._reset_scene()
        if before == "resetting" and state != "resetting":
            self._engage(False)

    def _reset_scene(self) -> None:
        if not self.scene_client.service_is_ready():
            self.get_logger().error(f"the scene reset service {self.scene_client.srv_name} is not available",
                                    throttle_duration_sec=5.0)
            return
        self.scene_client.call_async(Trigger.Request())

    def _drive(self, observation: Observation) -> None:
        velocity = self.manager.reset_velocity(observation)
        if velocity is None:
            return
        self._engage(True)
        stamp = self.get_clock().now().to_msg()
        self.reset_pub.publish(twist_stamped((*velocity.tolist(), 0.0, 0.0, 0.0), self.frame_id, stamp))

    def _engage(self, engaged: bool) -> None:
        if engaged != self.engaged:
            self.engaged = engaged
            self.engaged_pub.publish(Bool(data=engaged))

    def _publish_diagnostics(self) -> None:
        level = DiagnosticStatus.ERROR if self.problem else DiagnosticStatus.OK
        status = DiagnosticStatus(name="episode_manager", level=level,
                                  message=self.problem or f"episode {self.manager.episodes}: {self.manager.state}")
        values = [("state", self.manager.state), ("episodes", self.manager.episodes), ("outcome", self.manager.outcome),
                  ("state_seconds", f"{self.manager.state_age(self._now()):.1f}")]
        if self.reset_distance is not None:
            values += [("reset_distance", f"{self.reset_distance:.3f}"), ("reset_from", f"{self.reset_from:.3f}"),
                       ("reset_timeout", f"{self.manager.config.reset_timeout:g}")]
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)


def _release(node: EpisodeManagerNode) -> None:
    node._engage(False)  # the reset source lets go: the mux holds the arm


def main(args: list[str] | None = None) -> int:
    return run(EpisodeManagerNode, on_exit=_release, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
