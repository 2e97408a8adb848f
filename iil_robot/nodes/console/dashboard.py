"""The live terminal dashboard of ``iil-robot sim``: an in-process subscriber and a text view.

``Dashboard`` keeps counts from the graph's topics (step records, episode events,
interventions, diagnostics); ``render`` turns them into a few lines. On a terminal the block
is redrawn in place; otherwise (logs, CI) a line is printed per episode. Given the run folder, the
newest frame of camera ``front`` (``camera/front/image_raw/compressed``) is written to ``<run>/camera_latest.jpg``
about once a second and, on kitty or iTerm2, drawn under the text (``iil_robot.nodes.console.thumbnail``).
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Bool, String

from iil_robot.data.camera import CameraError
from iil_robot.data.episodes import Episode, EpisodeSplitter, TickGaps
from iil_robot.data.records import EpisodeEvent, InterventionEvent, RecordError, StepRecord
from iil_robot.nodes.common import EVENTS_QOS, LATCHED_QOS, RECORD_QOS, SENSOR_QOS, IilNode
from iil_robot.nodes.console.thumbnail import THUMBNAIL_FILE, ThumbnailWriter, inline_image, inline_protocol

THUMBNAIL_ROWS = 8
"""Terminal rows of the inline camera thumbnail (kitty / iTerm2 only)."""
REFRESH_HZ = 4.0
"""How often an interactive view is redrawn."""


class RedrawMeter:
    """How often the view was actually redrawn and how long drawing took (a busy machine or a slow terminal shows
    here first): the title line gives the rate over the last ``window`` seconds, ``summary`` the whole run's."""

    def __init__(self, window: float = 10.0) -> None:
        self.window = window
        self.times: deque[float] = deque()
        self.count, self.first, self.last = 0, 0.0, 0.0
        self.durations: deque[float] = deque(maxlen=1000)

    def add(self, start: float, end: float) -> None:
        if not self.count:
            self.first = start
        self.count, self.last = self.count + 1, start
        self.times.append(start)
        while self.times and self.times[0] < start - self.window:
            self.times.popleft()
        self.durations.append(end - start)

    def rate(self) -> float | None:
        """Redraws per second over the window, or None before two redraws."""
        if len(self.times) < 2 or self.times[-1] <= self.times[0]:
            return None
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])

    def summary(self) -> str:
        if self.count < 2:
            return f"{self.count} redraw(s)"
        span = self.last - self.first
        slowest = 1e3 * float(np.percentile(list(self.durations), 99))
        return (f"{self.count} redraws in {span:.1f} s ({(self.count - 1) / span:.1f} Hz, target {REFRESH_HZ:g}), "
                f"drawing took {slowest:.1f} ms at p99")


@dataclass
class EpisodeStats:
    index: int
    steps: int = 0
    human_steps: int = 0
    onsets: int = 0
    outcome: str = ""

    @classmethod
    def of(cls, index: int, steps: Sequence[StepRecord], outcome: str = "") -> "EpisodeStats":
        return cls(index, len(steps), sum(s.source == "human" for s in steps), sum(s.onset for s in steps), outcome)

    @property
    def intervention_rate(self) -> float:
        return self.human_steps / self.steps if self.steps else 0.0


@dataclass
class GraphState:
    """What the dashboard knows, updated from messages (pure: testable without ROS).

    Episodes are cut as the recorder and the learner cut them (``EpisodeSplitter``, by stamp): step records and
    episode events travel on different topics, and the last step of an episode often arrives after the event that
    ended it. An episode counts as finished once a step at or after its end has arrived."""

    finished: list[EpisodeStats] = field(default_factory=list)
    splitter: EpisodeSplitter = field(default_factory=EpisodeSplitter)
    steps: int = 0
    ticks: TickGaps = field(default_factory=TickGaps)
    source: str = "-"
    policy_version: int | None = None
    interventions: int = 0
    learner: dict[str, str] = field(default_factory=dict)
    recorder: dict[str, str] = field(default_factory=dict)
    mux: dict[str, str] = field(default_factory=dict)
    problems: deque = field(default_factory=lambda: deque(maxlen=3))
    help_requested: bool = False
    help_requests: int = 0
    episode_state: str = ""
    """The episode manager's state (ready, running, ended, resetting); empty: no manager heard yet."""
    episode: dict[str, str] = field(default_factory=dict)
    """The episode manager's diagnostics values (state_seconds, reset_distance, ...)."""

    @property
    def lost_ticks(self) -> int:
        """Mux ticks missing between the step records received."""
        return self.ticks.between

    @property
    def current(self) -> EpisodeStats:
        """The episode in progress (empty between episodes)."""
        return EpisodeStats.of(len(self.finished), self.splitter.open_steps)

    def on_step(self, step: StepRecord) -> list[EpisodeStats]:
        """Returns the episodes this step finished."""
        self.ticks.add(step.tick)
        self.steps += 1
        self.source = f"hold ({step.hold_reason})" if step.source == "hold" else step.source
        if step.policy_version is not None:
            self.policy_version = step.policy_version
        return self._finish(self.splitter.add_step(step))

    def on_episode_event(self, event: EpisodeEvent) -> list[EpisodeStats]:
        """Returns the episodes this event finished (only one older than steps already received finishes at once)."""
        return self._finish(self.splitter.add_event(event))

    def _finish(self, episodes: list[Episode]) -> list[EpisodeStats]:
        done = [EpisodeStats.of(len(self.finished) + i, e.steps, e.outcome) for i, e in enumerate(episodes)]
        self.finished += done
        return done

    def on_intervention(self, event: InterventionEvent) -> None:
        self.interventions = max(self.interventions, event.count)

    def on_help_request(self, requested: bool) -> bool:
        """The policy's ``help/request``; returns True when a request is newly raised (ring the bell)."""
        raised = requested and not self.help_requested
        self.help_requested = bool(requested)
        self.help_requests += raised
        return raised

    def on_diagnostics(self, array: DiagnosticArray) -> None:
        for status in array.status:
            values = {kv.key: kv.value for kv in status.values}
            if status.name.startswith("learner"):
                self.learner = {"message": status.message, **values}
            elif status.name.startswith("recorder"):
                self.recorder = {"message": status.message, **values}
            elif status.name == "mux: arbitration":
                self.mux = values
            elif status.name == "episode_manager":
                self.episode = values
            level = status.level if isinstance(status.level, int) else ord(status.level)  # a ROS byte
            if level >= 2 and status.message:
                text = f"{status.name}: {status.message}"
                if text not in self.problems:
                    self.problems.append(text)


def render(state: GraphState, title: str, target_episodes: int | None, elapsed: float,
           redraw_hz: float | None = None) -> list[str]:
    done = state.finished
    successes = sum(e.outcome == "success" for e in done)
    recent = done[-5:]
    recent_rate = sum(e.human_steps for e in recent) / max(1, sum(e.steps for e in recent))
    current = state.current
    of = f"/{target_episodes}" if target_episodes else ""
    learner = state.learner
    lines = [
        f"{title}   elapsed {int(elapsed) // 60:02d}:{int(elapsed) % 60:02d}"
        + (f"   redraw {redraw_hz:.1f} Hz" if redraw_hz is not None else ""),
        (f"all {len(done)} episodes done" if target_episodes and len(done) >= target_episodes else f"episode {len(done) + 1}{of}")
        + (f" ({state.episode_state})" if state.episode_state else "")
        + f"   last outcome: {done[-1].outcome if done else '-'}   "
        f"successes {successes}/{len(done)}" + (f" ({100 * successes / len(done):.0f} %)" if done else ""),
        f"control: {state.source}   policy version: {state.policy_version if state.policy_version is not None else '-'}   "
        f"interventions: {state.interventions} ({sum(e.onsets for e in (*done, current))} in episodes)",
        f"intervention rate: this episode {100 * current.intervention_rate:.0f} %   last 5 episodes {100 * recent_rate:.0f} %",
        "learner: " + _learner_line(learner),
        f"step records: {state.steps} ({sum(e.steps for e in (*done, current))} in episodes)   lost ticks: {state.lost_ticks}"
        + (f"   recorder: {state.recorder.get('message', '')}" if state.recorder else ""),
    ]
    waiting = _waiting_line(state)
    if waiting:
        lines.append(waiting)
    behind = falling_behind(learner)
    if behind:
        lines.append(f"! {behind}")
    if state.help_requested:
        lines.append(f"*** THE POLICY ASKS FOR HELP: take over (request {state.help_requests}) ***")
    lines += [f"! {p}" for p in state.problems]
    return lines


def progress_bar(fraction: float, width: int = 20) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def _waiting_line(state: GraphState) -> str:
    """A progress line while the arm waits between episodes (the reset), or empty."""
    values = state.episode
    try:
        if state.episode_state == "resetting" and "reset_distance" in values:
            to_go, start = float(values["reset_distance"]), float(values["reset_from"])
            return (f"reset {progress_bar(1.0 - to_go / start if start > 0 else 1.0)} {to_go:.2f} m to go, "
                    f"{float(values['state_seconds']):.0f} s (gives up after {values['reset_timeout']} s)")
        if state.episode_state == "ready" and float(values.get("state_seconds", 0.0)) >= 1.0:
            return "ready: waiting for the operator to start the next episode (key n)"
    except (KeyError, ValueError):
        return ""
    return ""


def falling_behind(learner: dict[str, str]) -> str | None:
    """The console's warning when the learner does fewer updates per env step than its method's budget (the one the
    learning benchmark gives it), or None."""
    try:
        ratio, budget = float(learner["updates_per_env_step"]), float(learner["budget_per_env_step"])
    except (KeyError, ValueError):  # not training yet, or a learner that does not report it
        return None
    if ratio >= budget:
        return None
    return (f"learner falling behind: {ratio:.2f} updates per env step, below its budget of {budget:g} "
            f"({learner.get('sizes', 'sizes unknown')}; the learner's log says what would help)")


def _learner_line(learner: dict[str, str]) -> str:
    done, total = learner.get("warm_start_done"), learner.get("warm_start_total")
    if done is not None and total is not None and int(done) < int(total):  # no weights until it ends
        line = (f"warm start on the operator's data {progress_bar(int(done) / max(1, int(total)))} {done}/{total} updates "
                "(no weights yet)")
    else:
        line = ", ".join(f"{k} {learner[k]}" for k in ("updates", "updates_per_s", "prior", "online", "version")
                         if k in learner) \
            or "waiting for data"
    if learner.get("updates_per_env_step", "-") != "-":
        line += f", {learner['updates_per_env_step']} updates/env step (budget {learner.get('budget_per_env_step', '?')})"
    if "training_cpu_percent" in learner:
        line += f", training cpu {learner['training_cpu_percent']} % (waits {learner.get('training_wait_percent', '?')} %)"
    if "fusion" in learner:  # torch.compile: compiling beside the eager updates, then on (or off, saying why)
        line += f", fusion {learner['fusion']}"
    if "warning" in learner:
        line += f"; {learner['warning']}"
    return line


class Dashboard:
    """Subscribes the graph's topics in this process and draws ``render`` once a second."""

    def __init__(self, domain_id: int, title: str, target_episodes: int | None, interactive: bool,
                 run_dir: Path | None = None, camera: str = "front") -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = IilNode("dashboard", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.state = GraphState()
        self.title, self.target, self.interactive = title, target_episodes, interactive
        self.start = time.monotonic()
        self.next_draw = self.start
        self.drawn_lines = 0
        self.redraws = RedrawMeter()
        self.node.create_subscription(String, "step", self._on_step, RECORD_QOS)
        self.node.create_subscription(String, "episode/event", self._on_event, EVENTS_QOS)
        self.node.create_subscription(String, "intervention", self._on_intervention, EVENTS_QOS)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.state.on_diagnostics, 50)
        self.node.create_subscription(Bool, "help/request", self._on_help_request, LATCHED_QOS)
        self.node.create_subscription(String, "episode/state", self._on_episode_state, LATCHED_QOS)
        self.request_pub = self.node.create_publisher(String, "episode/request", EVENTS_QOS)
        self.keys_line = ""
        """A line of key help drawn under the view (the console's)."""
        # the newest camera frame: written to the run folder (~1 Hz), and drawn inline where the terminal can
        self.thumbnail = ThumbnailWriter(Path(run_dir) / THUMBNAIL_FILE) if run_dir is not None else None
        self.inline = inline_protocol() if interactive else None
        if self.thumbnail is not None:
            self.node.create_subscription(CompressedImage, f"camera/{camera}/image_raw/compressed", self._on_frame,
                                          SENSOR_QOS)

    def spin_for(self, seconds: float) -> None:
        """Take in messages for ``seconds``, redrawing an interactive view whenever it is due (``REFRESH_HZ``)."""
        end = time.monotonic() + seconds
        while (now := time.monotonic()) < end:
            if self.interactive and now >= self.next_draw:
                self.next_draw = max(self.next_draw + 1.0 / REFRESH_HZ, now)
                self.draw()
                continue
            until = min(end, self.next_draw) if self.interactive else end
            self.executor.spin_once(timeout_sec=max(0.0, until - now))

    def request(self, name: str) -> None:
        """Ask the episode manager for ``start``, ``success``, ``failure`` or ``reset`` (it refuses one in the wrong
        state, and says so in its log and diagnostics)."""
        self.request_pub.publish(String(data=name))

    def pause_client(self):
        """A client of the mux's ``~/pause`` service (std_srvs/SetBool)."""
        from std_srvs.srv import SetBool

        return self.node.create_client(SetBool, "/mux/pause")

    def set_paused(self, client, paused: bool) -> None:
        """Ask the mux to hold the arm (or let go of it); says so under the view when no mux answers."""
        from std_srvs.srv import SetBool

        if not client.service_is_ready():
            self.state.problems.append("no mux answers /mux/pause: is the graph running on this domain?")
            return
        client.call_async(SetBool.Request(data=paused))

    def _on_episode_state(self, msg: String) -> None:
        self.state.episode_state = msg.data

    def draw(self) -> None:
        start = time.monotonic()
        lines = render(self.state, self.title, self.target, start - self.start, self.redraws.rate())
        if self.keys_line:
            lines.append(self.keys_line)
        if self.thumbnail is not None and self.thumbnail.written:
            lines.append(f"camera: newest frame in {self.thumbnail.path}")
        if self.drawn_lines:
            print(f"\x1b[{self.drawn_lines}F\x1b[J", end="")
        print("\n".join(lines), flush=True)
        self.drawn_lines = len(lines)
        if self.inline and self.thumbnail is not None and self.thumbnail.latest:
            try:
                print(inline_image(self.thumbnail.latest, self.inline, rows=THUMBNAIL_ROWS), flush=True)
                self.drawn_lines += THUMBNAIL_ROWS
            except CameraError as err:
                self.state.problems.append(f"camera thumbnail: {err}")
        self.redraws.add(start, time.monotonic())

    def _on_frame(self, msg: CompressedImage) -> None:
        try:
            self.thumbnail.offer(bytes(msg.data))
        except OSError as err:
            text = f"cannot write the camera thumbnail {self.thumbnail.path}: {err.strerror or err}"
            if text not in self.state.problems:
                self.state.problems.append(text)

    def _on_step(self, msg: String) -> None:
        try:
            self._print_finished(self.state.on_step(StepRecord.decode(msg.data)))
        except RecordError as err:
            self.state.problems.append(f"undecodable step record: {err}")

    def _on_event(self, msg: String) -> None:
        try:
            event = EpisodeEvent.decode(msg.data)
        except RecordError as err:
            self.state.problems.append(f"undecodable episode event: {err}")
            return
        self._print_finished(self.state.on_episode_event(event))

    def _print_finished(self, episodes: list[EpisodeStats]) -> None:
        if self.interactive:
            return
        for e in episodes:
            print(f"[sim] episode {e.index + 1}: {e.outcome}, {e.steps} steps, {e.onsets} interventions "
                  f"({100 * e.intervention_rate:.0f} % of steps), policy version {self.state.policy_version}; "
                  f"learner: {_learner_line(self.state.learner)}", flush=True)

    def _on_help_request(self, msg: Bool) -> None:
        if self.state.on_help_request(msg.data):
            print("\a", end="" if self.interactive else "[sim] the policy asks for help\n", flush=True)  # terminal bell

    def _on_intervention(self, msg: String) -> None:
        try:
            self.state.on_intervention(InterventionEvent.decode(msg.data))
        except RecordError as err:
            self.state.problems.append(f"undecodable intervention event: {err}")

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

