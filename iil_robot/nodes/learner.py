"""``learner`` node: trains from live step records and publishes weights; never in the control loop.

Runs in its own process, niced and with few torch threads (CUDA when available). Subscribes
``step`` (``iil_robot.step`` JSON) and ``episode/event`` (they split episodes; each is labelled
by ``iil_robot.data.labels``, as offline replay does); publishes ``policy/weights``
(std_msgs/UInt8MultiArray, safetensors bytes, latched) every ``publish_every_updates`` updates
or ``publish_period`` seconds. A camera learner (``image_width``/``image_height``) also subscribes
``camera/<name>/image_raw/compressed`` of each of its ``cameras`` and pairs their frames with step records by the
records' ``image_stamps``.
Checkpoints and TensorBoard scalars go to ``run_dir``; a restart
resumes from there, with its buffers rebuilt from the bags under ``bags_dir`` when set. See
``iil_robot.learners.trainer``.

Training runs on its own thread. The executor only decodes messages into an inbox, so no step
record is lost however long an update takes (one update per executor cycle would take one
message per cycle, and a slow, niced learner would then overflow the subscription queue).
Its diagnostics carry the training thread's CPU share, and WARN when other processes starve it.
"""
from __future__ import annotations

import array
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import NamedTuple

from iil_robot.config.openmp import openmp_defaults

OPENMP_PROBLEM = openmp_defaults()  # before torch loads: its OpenMP runtime reads them once

import torch  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue  # noqa: E402
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CompressedImage  # noqa: E402
from std_msgs.msg import MultiArrayDimension, String, UInt8MultiArray  # noqa: E402

from iil_robot.data.actions import ActionConfig  # noqa: E402
from iil_robot.data.frames import compressed_topic, stamp_seconds  # noqa: E402
from iil_robot.data.labels import LabelConfig  # noqa: E402
from iil_robot.data.recordings import read_bags_dir  # noqa: E402
from iil_robot.data.records import EpisodeEvent, Observation, RecordError, StepRecord  # noqa: E402
from iil_robot.learners.configs import LearnerConfigs  # noqa: E402
from iil_robot.learners.cpu import ThreadCpu, idle_priority, lower_priority  # noqa: E402
from iil_robot.learners.memory import TRIM_PERIOD, keep_freed_memory, trim_freed_memory  # noqa: E402
from iil_robot.learners.methods import ALGORITHMS, METHODS  # noqa: E402
from iil_robot.learners.pace import Pace  # noqa: E402
from iil_robot.learners.sizes import CpuSizes, describe  # noqa: E402
from iil_robot.learners.trainer import Trainer, TrainerConfig  # noqa: E402
from iil_robot.learners.weights import WEIGHTS_FORMAT, WEIGHTS_VERSION  # noqa: E402
from iil_robot.nodes.common import (  # noqa: E402
    EVENTS_QOS,
    LATCHED_QOS,
    RECORD_QOS,
    SENSOR_QOS,
    IilNode,
    ParameterError,
    declare_config,
    run,
)

TRAINER_RANGES = {
    "min_transitions": (1, 10_000_000), "prior_capacity": (1, 100_000_000), "online_capacity": (1, 100_000_000),
    "publish_every_updates": (1, 1_000_000), "publish_period": (0.01, 3600.0), "checkpoint_period": (1.0, 86400.0),
    "log_every_updates": (1, 1_000_000), "num_threads": (1, 256), "nice": (0, 19), "seed": (0, 2**31 - 1),
    "event_delay": (0.0, 3600.0), "min_obs_std": (1e-6, 1000.0), "warm_start_updates": (0, 1_000_000),
    "image_width": (0, 512), "image_height": (0, 512), "frame_buffer": (1, 1_000_000),
}
LABEL_RANGES = {"pre_intervention_window": (0, 10_000)}


STARVED_WAITING, STARVED_RUNNING = 0.5, 0.1
"""A training thread that waited for a CPU over half of the last 5 s and ran under a tenth of them is starved (in the
sim job on 2 cores it ran 20-60 % and waited the rest: the control nodes come first, as they should)."""

STOP_WAIT = 4.0
"""Seconds the training thread has to finish its update at a stop: less than the 5 s that ``ros2 launch`` (and the
sim job) wait after SIGINT before they send SIGTERM."""


FRAME_QOS = QoSProfile(depth=200, reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST)
"""Camera frames: best effort like the camera's, but deep (10 s at 20 Hz) so that a busy learner keeps them."""


class Layout(NamedTuple):
    """The observations' layout, as the observer names it (``Observation.fields``)."""

    fields: tuple[str, ...]


class Frame(NamedTuple):
    """A camera frame as received: its camera, header stamp (s) and JPEG bytes."""

    camera: str
    stamp: float
    jpeg: bytes


RENAMED = {"camera": "cameras"}
"""Parameters renamed, old -> new: the old name given stops the node (ROS ignores an undeclared parameter, and a
learner that silently trains on the default camera instead would be worse)."""


def weights_message(data: bytes) -> UInt8MultiArray:
    msg = UInt8MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=f"{WEIGHTS_FORMAT}/v{WEIGHTS_VERSION}", size=len(data), stride=1)]
    msg.data = array.array("B", data)
    return msg


class LearnerNode(IilNode):
    def __init__(self) -> None:
        super().__init__("learner")
        for old, new in RENAMED.items():
            if old in getattr(self, "_parameter_overrides", {}):  # rclpy keeps launch/YAML overrides here
                raise ParameterError(f"parameter {old!r} was replaced by {new!r} (comma-separated camera names, e.g. "
                                     f"front,wrist): rename it in the learner's parameters")
        config: TrainerConfig = declare_config(self, TrainerConfig, ranges=TRAINER_RANGES)
        if not METHODS[config.method].interactive:
            raise ParameterError(f"method {config.method!r} trains once on demos and then stays frozen: train it offline "
                                 "(iil-robot replay BAGS --train) and give the policy node the weights (fallback: weights)")
        configs = LearnerConfigs(**{name: declare_config(self, a.config_class(), f"{name}.") for name, a in ALGORITHMS.items()})
        action: ActionConfig = declare_config(self, ActionConfig, "action.")
        labels = declare_config(self, LabelConfig, "labels.", LABEL_RANGES,  # the orientation: from the observation layout
                                given={"action_space": action.space, "action_frame": action.frame, "orientation": ()})
        cpu_sizes = declare_config(self, CpuSizes, "cpu.")
        for problem in (OPENMP_PROBLEM, lower_priority(config.nice)):  # niceness before any thread starts: they inherit it
            if problem:
                self.get_logger().warning(problem)
        torch.set_num_threads(config.num_threads)
        keep_freed_memory()  # no page faults per update on CPU (see learners/memory.py)
        from torch.utils.tensorboard import SummaryWriter  # slow import, only in the learner process

        self.writer = SummaryWriter(str(Path(config.run_dir) / "tensorboard"))
        self.trainer = Trainer(config, configs, labels, action, log_scalar=self.writer.add_scalar,
                               warn=lambda text: self.get_logger().warning(text, throttle_duration_sec=10.0),
                               cpu_sizes=cpu_sizes)
        self.sizes = f"{self.trainer.size} sizes: {describe(self.trainer.configs, config.algorithm)}"
        """The sizes trained with, for the log and the diagnostics (``TrainerConfig.size``)."""
        self.pace = Pace(METHODS[config.method].updates_per_step)
        self.inbox: deque[StepRecord | EpisodeEvent | Frame | Layout] = deque()  # filled by the executor, drained by training
        self.stopping = threading.Event()
        self.training_cpu: ThreadCpu | None = None
        """The training thread's CPU share, once it runs (for diagnostics)."""

        self.weights_pub = self.create_publisher(UInt8MultiArray, "policy/weights", LATCHED_QOS)
        self.create_subscription(String, "step", self._on_step, RECORD_QOS)
        self.create_subscription(String, "episode/event", self._on_event, EVENTS_QOS)
        self.layout: tuple[str, ...] = ()
        self.create_subscription(String, "observation", self._on_observation, SENSOR_QOS)  # for its layout only
        for camera in config.camera_names:  # camera policies: frames paired with step records by their stamp (image_stamps)
            self.create_subscription(CompressedImage, compressed_topic(camera).lstrip("/"),
                                     lambda msg, camera=camera: self._on_frame(camera, msg), FRAME_QOS)
        recording = None
        if config.bags_dir:  # the bags are the source of the buffers
            recording = read_bags_dir(config.bags_dir, config.step_topic, config.event_topic, config.camera_names)
        resumed = self.trainer.restore(recording)
        self._log_restore(resumed)
        if resumed and self.trainer.status()["updates"] > 0:  # never replace the fallback with untrained weights
            self._publish(self.trainer.export())
        self.training = threading.Thread(target=self._train, name="training", daemon=True)
        self.training.start()
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._rate_window = (time.monotonic(), 0)
        self._fusion = "off"  # the learner's torch.compile state, as last logged
        self._precision: str | None = None  # what its losses multiply in, as last logged
        self.create_timer(1.0, self._publish_diagnostics)
        why = {"auto": f"size auto on {self.trainer.device.type}", "cpu": "size cpu", "gpu": "size gpu"}[config.size]
        self.get_logger().info(f"{config.method} ({config.algorithm}) learner on {self.trainer.device}, {self.sizes} ({why}; "
                               f"budget {self.pace.budget} updates per env step), action space {action.space} "
                               f"({', '.join(action.action_space.fields)}) within ±{action.max_linear_speed:g} m/s"
                               f"{f', ±{action.max_angular_speed:g} rad/s' if action.action_space.rotates else ''}, "
                               f"{self._inputs(config)}, "
                               f"{config.num_threads} thread(s), nice {config.nice}"
                               f"{', idle priority' if config.idle_priority else ''}, "
                               f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '')}")

    @staticmethod
    def _inputs(config: TrainerConfig) -> str:
        """What the policy learns from: the state, and the images of which cameras at what size."""
        if not config.image:
            return "from the state only"
        return (f"from the state and images of camera(s) {', '.join(config.camera_names)} at "
                f"{config.image_width}x{config.image_height}")

    def _on_step(self, msg: String) -> None:
        try:
            self.inbox.append(StepRecord.decode(msg.data))
        except RecordError as err:
            self.get_logger().error(f"undecodable step record: {err}", throttle_duration_sec=1.0)

    def _on_event(self, msg: String) -> None:
        try:
            self.inbox.append(EpisodeEvent.decode(msg.data))
        except RecordError as err:
            self.get_logger().error(f"undecodable episode event: {err}", throttle_duration_sec=1.0)

    def _on_observation(self, msg: String) -> None:
        try:
            fields = Observation.decode(msg.data).fields
        except RecordError as err:
            self.get_logger().error(f"undecodable observation: {err}", throttle_duration_sec=5.0)
            return
        if fields != self.layout:
            self.layout = fields
            self.inbox.append(Layout(fields))

    def _on_frame(self, camera: str, msg: CompressedImage) -> None:
        self.inbox.append(Frame(camera, stamp_seconds(msg.header.stamp.sec, msg.header.stamp.nanosec), bytes(msg.data)))

    def _drain(self) -> None:
        """Hand the inbox to the trainer in arrival order (events split episodes between steps; frames are
        decoded here, on the training thread)."""
        records: list[StepRecord] = []
        while self.inbox:
            item = self.inbox.popleft()
            if isinstance(item, StepRecord):
                records.append(item)
                continue
            if records:
                self.trainer.add_records(records)
                records = []
            if isinstance(item, Frame):
                self.trainer.add_compressed_frame(item.camera, item.stamp, item.jpeg)
            elif isinstance(item, Layout):
                self.trainer.set_observation_layout(item.fields)
            else:
                self.trainer.add_event(item)
        if records:
            self.trainer.add_records(records)

    def _train(self) -> None:
        """The training thread: take in what arrived, update, publish weights, checkpoint."""
        self.training_cpu = ThreadCpu(threading.get_native_id())
        problem = idle_priority() if self.trainer.config.idle_priority else None
        if problem:
            self.get_logger().warning(problem)
        try:
            trimmed = time.monotonic()
            while not self.stopping.is_set():
                self._drain()
                if time.monotonic() - trimmed >= TRIM_PERIOD:  # hand freed memory back (learners/memory.py)
                    trim_freed_memory()
                    trimmed = time.monotonic()
                weights = self.trainer.step()
                if weights is not None:
                    self._publish(weights)
                elif not self.trainer.ready():
                    self.stopping.wait(0.02)  # nothing to learn from yet
                if self.trainer.checkpoint_due():
                    self.trainer.save()
        except Exception as err:  # a dead learner must be loud: the graph reports this process
            self.get_logger().fatal(f"training stopped: {type(err).__name__}: {err}")
            os._exit(1)

    def stop_training(self) -> bool:
        """Ask the training thread to stop after its update; whether it stopped within ``STOP_WAIT`` seconds."""
        self.stopping.set()
        self.training.join(timeout=STOP_WAIT)
        return not self.training.is_alive()

    def destroy_node(self) -> None:
        stopped = not self.training.is_alive() if self.stopping.is_set() else self.stop_training()
        if stopped:  # else it may still log: a daemon thread, it ends with the process
            self.writer.close()
        if self.trainer.learner is not None and hasattr(self.trainer.learner, "close"):
            self.trainer.learner.close()  # the compile's child process
        super().destroy_node()

    def _say_fusion(self, fusion: str) -> None:
        self._fusion = fusion
        if fusion == "compiling":
            self.get_logger().info("fusing the updates: a child process compiles them with torch.compile; the updates "
                                   "run eagerly until it is done")
        elif fusion == "on":
            learner = self.trainer.learner
            self.get_logger().info(f"fused: the updates run torch.compile's kernels (the child compiled for "
                                   f"{learner.fusion_seconds:.0f} s; compiling in place from its caches took "
                                   f"{learner.fusion_wait:.1f} s)")
        elif fusion.startswith("off: "):
            self.get_logger().warning(f"not fused: {fusion[5:]}")

    def _publish_diagnostics(self) -> None:
        """Counters once a second, for dashboards (``iil-robot sim``) and ``ros2 topic echo /diagnostics``."""
        status = self.trainer.status()
        now = time.monotonic()
        since, updates = self._rate_window
        self._rate_window = (now, status["updates"])
        rate = (status["updates"] - updates) / max(now - since, 1e-9)
        # Only counters here: the training thread may be building the buffers at this moment.
        needed = self.trainer.config.min_transitions
        done, total = status["warm_start_done"], status["warm_start_total"]
        message = (f"warm start on the operator's data: {done}/{total} updates" if done < total
                   else "training" if status["prior"] + status["online"] >= needed else f"waiting for {needed} transitions")
        level = DiagnosticStatus.OK
        self.pace.add(now, status["env_steps"], status["updates"], training=message == "training")
        ratio = self.pace.ratio()
        values = {**status, "updates_per_s": f"{rate:.1f}", "method": self.trainer.config.method,
                  "algorithm": self.trainer.config.algorithm, "inbox": len(self.inbox), "sizes": self.sizes,
                  "updates_per_env_step": "-" if ratio is None else f"{ratio:.2f}",
                  "budget_per_env_step": f"{self.pace.budget:g}"}
        fusion = getattr(self.trainer.learner, "fusion", "off")
        if fusion != "off":
            values["fusion"] = fusion
        if fusion != self._fusion:
            self._say_fusion(fusion)
        precision = getattr(self.trainer.learner, "precision", None)
        if precision is not None:
            values["precision"] = precision
            if precision != self._precision:
                self._precision = precision
                log = self.get_logger().warning if precision.startswith("float32:") else self.get_logger().info
                log(f"the losses multiply in {precision}")
        if self.pace.behind():
            self.get_logger().warning(f"falling behind the arm: {ratio:.2f} updates per env step over the last "
                                      f"{self.pace.span:.0f} s, below {self.trainer.config.method}'s budget of "
                                      f"{self.pace.budget:g} ({self.sizes}); smaller cpu.* sizes, a free core or a GPU "
                                      "would keep up", throttle_duration_sec=30.0)
        share = self.training_cpu.window() if self.training_cpu is not None else None
        if share is not None:
            values |= {"training_cpu_percent": f"{100 * share.running:.0f}",
                       "training_wait_percent": f"{100 * share.waiting:.0f}"}
            if share.waiting > STARVED_WAITING and share.running < STARVED_RUNNING:
                level = DiagnosticStatus.WARN
                nice = self.trainer.config.nice
                values["warning"] = (f"starved of CPU: the training thread waited for one {100 * share.waiting:.0f} % of "
                                     f"the last {share.seconds:.0f} s and ran {100 * share.running:.0f} %: other processes "
                                     "keep the cores busy" + (f", and at nice {nice} the learner gives way to all of them"
                                                             if nice else "")
                                     + "; free a core (see `top`), or give the learner a machine of its own")
                message = f"{message}; {values['warning']}"
        diagnostic = DiagnosticStatus(name="learner", hardware_id=str(self.trainer.device), level=level, message=message)
        diagnostic.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        array = DiagnosticArray(status=[diagnostic])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)
        if level != DiagnosticStatus.OK:
            self.get_logger().warning(message, throttle_duration_sec=30.0)

    def _log_restore(self, resumed: bool) -> None:
        t, log = self.trainer, self.get_logger()
        if resumed:
            log.info(f"resumed from {t.checkpoint_path}: {t.learner.updates} updates, policy version {t.policy_version}")
        if t.restored:
            log.info(f"rebuilt buffers from {t.restored['bags']} bag(s) under {t.config.bags_dir}: {t.restored['steps']} steps, "
                     f"{t.restored['events']} events -> {len(t.prior or ())} prior + {len(t.online or ())} online transitions")
            for bag in t.restored["skipped"]:
                log.warning(f"skipped bag {bag}: no metadata.yaml yet (being written, or left by a crash: "
                            f"run `iil-robot replay --repair {bag}`)")
        elif resumed:
            log.info(f"buffers from the checkpoint: {len(t.prior)} prior + {len(t.online)} online transitions")

    def _publish(self, weights: bytes) -> None:
        self.weights_pub.publish(weights_message(weights))
        self.get_logger().info(f"published weights version {self.trainer.policy_version} "
                               f"({len(weights) / 1e6:.2f} MB, {self.trainer.learner.updates} updates)",
                               throttle_duration_sec=10.0)


def _on_exit(node: LearnerNode) -> None:
    """Finish the update in progress, take in what arrived, and write a checkpoint."""
    if node.stop_training():
        node._drain()
        node.trainer.save()
        return
    done, total = node.trainer.warm_start_progress
    doing = f"in the warm start, {done}/{total} updates" if done < total else "in its current step"
    path = node.trainer.checkpoint_path
    kept = f"{path} keeps the last one" if path.exists() else "there is none yet"
    node.get_logger().warning(f"training did not stop within {STOP_WAIT:.0f} s ({doing}): no checkpoint written at this "
                              f"stop, {kept}; the bags hold every step")
    os._exit(0)  # not through the interpreter's exit: with torch code still running in the thread, that aborts


def main(args: list[str] | None = None) -> int:
    return run(LearnerNode, on_exit=_on_exit, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
