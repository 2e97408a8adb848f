"""Episodes on an arm, without ROS: their states, time limit, success detection and reset drive.

States: ``ready`` -> ``running`` -> ``ended`` (success, failure, timeout, abort) -> ``resetting``
-> ``ready`` -> ... While not ``running`` the policy does not drive the arm (the node holds the
mux's episode lock); while ``resetting`` the manager drives the end effector to the reset pose
(optionally randomised within ranges, as hil-serl's ``RANDOM_RESET``) at a safe speed through the
mux's reset source, under the same limits and locks as every other source. A reset that cannot
reach its pose within ``reset_timeout`` is aborted: the arm holds and the operator is told.

Starts and ends are episode events (``iil_robot.episode_event``: start, and success, failure,
timeout, or reset for an aborted episode), the events the recorder, the learner and the reports
split episodes by; steps between an end and the next start (the reset) belong to no episode, so
they are recorded but never labelled (``iil_robot.data.episodes``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from iil_robot.data.records import EpisodeEvent, Observation

__all__ = ["OUTCOMES", "STATES", "EpisodeConfig", "EpisodeError", "EpisodeManager"]

STATES = ("ready", "running", "ended", "resetting")
OUTCOMES = ("success", "failure", "timeout", "abort")
EVENT_OF = {"success": "success", "failure": "failure", "timeout": "timeout", "abort": "reset"}
"""Outcome -> the episode event that ends the episode (an aborted episode is truncated: ``reset``)."""


class EpisodeError(ValueError):
    """A request that does not fit the episode's state, or a wrong configuration."""


@dataclass(frozen=True)
class EpisodeConfig:
    time_limit: float = 5.0
    """Seconds an episode may run before it ends as a timeout; 0 = no limit."""
    success_fields: tuple[str, ...] = ()
    """Success detector: two observation fields (e.g. ``object``, ``goal``) whose x, y, z must come within
    ``success_distance`` of each other; empty: success only from the operator."""
    success_distance: float = 0.05
    """Metres between the two ``success_fields`` that count as success."""
    auto_start: bool = True
    """Start the next episode as soon as the reset is done; False: wait for the operator's start."""
    reset_field: str = "ee"
    """Observation field holding the end effector's x, y, z (the reset drives it)."""
    reset_pose: tuple[float, ...] = ()
    """x, y, z (m, command frame) the end effector is driven to between episodes; empty: no reset drive."""
    reset_ranges: tuple[float, ...] = (0.0, 0.0, 0.0)
    """Half-widths (m) of the uniform randomisation of the reset pose per episode."""
    reset_speed: float = 0.1
    """Speed (m/s) of the reset drive (the mux's limits apply too)."""
    reset_tolerance: float = 0.01
    """Metres from the reset pose that count as reached."""
    reset_timeout: float = 10.0
    """Seconds the reset drive may take before it is aborted (the arm holds)."""
    workspace_min: tuple[float, ...] = ()
    """Lower corner (x, y, z) a reset pose must lie in; empty: unchecked."""
    workspace_max: tuple[float, ...] = ()
    """Upper corner (x, y, z) a reset pose must lie in."""

    def __post_init__(self) -> None:
        if self.time_limit < 0 or not math.isfinite(self.time_limit):
            raise EpisodeError(f"time_limit {self.time_limit} must be >= 0 seconds (0: none)")
        if self.success_fields and len(self.success_fields) != 2:
            raise EpisodeError(f"success_fields {list(self.success_fields)} must name two fields, e.g. [object, goal]")
        if self.reset_pose and len(self.reset_pose) != 3 or len(self.reset_ranges) != 3:
            raise EpisodeError("reset_pose must be empty or x, y, z; reset_ranges three half-widths")
        if not (self.reset_speed > 0 and self.reset_tolerance > 0 and self.reset_timeout > 0):
            raise EpisodeError("reset_speed, reset_tolerance and reset_timeout must be > 0")
        if self.reset_pose and self.workspace_min and len(self.workspace_min) == len(self.workspace_max) == 3:
            low = np.subtract(self.reset_pose, self.reset_ranges)
            high = np.add(self.reset_pose, self.reset_ranges)
            if (low < self.workspace_min).any() or (high > self.workspace_max).any():
                raise EpisodeError(f"reset pose {list(self.reset_pose)} ± {list(self.reset_ranges)} leaves the workspace "
                                   f"{list(self.workspace_min)}..{list(self.workspace_max)}: move it inside")


@dataclass
class EpisodeManager:
    """The episode state machine. Feed it observations and operator requests; publish what it returns."""

    config: EpisodeConfig
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    origin: str = "episode_manager"
    state: str = "ready"
    outcome: str = ""
    """How the last episode ended."""
    episodes: int = 0
    held: str = ""
    """Why the manager waits for the operator (a failed reset); empty: it runs on its own."""
    _since: float = 0.0
    _target: np.ndarray | None = None
    _needs_reset: bool = True

    # -- requests (keys, buttons, services) ---------------------------------------------------

    def start(self, now: float) -> list[EpisodeEvent]:
        """The operator starts an episode (or the first one). Raises EpisodeError unless ready."""
        self._needs_reset = False
        if self.state != "ready":
            raise EpisodeError(f"cannot start an episode while {self.state}: "
                               + ("end it first" if self.state == "running" else "wait until the reset is done"))
        self.state, self._since, self.outcome, self.held = "running", now, "", ""
        self.episodes += 1
        return [EpisodeEvent("start", self.origin, now)]

    def end(self, outcome: str, now: float) -> list[EpisodeEvent]:
        """The running episode ends with ``outcome``. Raises EpisodeError when none runs or the outcome is unknown."""
        if outcome not in OUTCOMES:
            raise EpisodeError(f"outcome {outcome!r} must be one of {OUTCOMES}")
        if self.state != "running":
            raise EpisodeError(f"no episode is running ({self.state}): {outcome} ignored")
        self.state, self.outcome, self._since = "ended", outcome, now
        return [EpisodeEvent(EVENT_OF[outcome], self.origin, now)]

    def reset(self, now: float) -> list[EpisodeEvent]:
        """Start the reset (after an episode, or to re-do one). Ends a running episode as an abort first."""
        events = self.end("abort", now) if self.state == "running" else []
        if self.state == "resetting":
            raise EpisodeError("already resetting")
        self.state, self._since, self.held = "resetting", now, ""
        self._target = self._draw_target()
        return events

    # -- the tick ------------------------------------------------------------------------------

    def update(self, observation: Observation, now: float) -> list[EpisodeEvent]:
        """Advance on a new observation: the success detector and the time limit while running; the reset
        while resetting (ended episodes reset at once); auto start when ready."""
        if self.held:
            return []
        if self.state == "running":
            if self._succeeded(observation):
                return self.end("success", now)
            if self.config.time_limit and now - self._since >= self.config.time_limit:
                return self.end("timeout", now)
            return []
        if self.state == "ended" or (self.state == "ready" and self._needs_reset):
            self._needs_reset = False
            return self.reset(now)
        if self.state == "resetting":
            return self._resetting(observation, now)
        if self.config.auto_start:
            return self.start(now)
        return []

    def state_age(self, now: float) -> float:
        """Seconds since the current state began."""
        return now - self._since

    def reset_distance(self, observation: Observation) -> float | None:
        """Metres the end effector still has to go to the reset pose; None while not driving to one."""
        if self.state != "resetting" or self._target is None:
            return None
        return float(np.linalg.norm(self._target - self._field(observation, self.config.reset_field)))

    def reset_velocity(self, observation: Observation) -> np.ndarray | None:
        """The reset drive's velocity (m/s, x y z) toward the reset pose; None while not driving."""
        if self.state != "resetting" or self._target is None:
            return None
        offset = self._target - self._field(observation, self.config.reset_field)
        distance = float(np.linalg.norm(offset))
        if distance <= self.config.reset_tolerance:
            return np.zeros(3)
        # slow down over the last 5 cm so the arm does not overshoot the tolerance
        speed = min(self.config.reset_speed, self.config.reset_speed * distance / 0.05)
        return offset / distance * speed

    def _resetting(self, observation: Observation, now: float) -> list[EpisodeEvent]:
        if self._target is not None:
            distance = float(np.linalg.norm(self._target - self._field(observation, self.config.reset_field)))
            if distance > self.config.reset_tolerance:
                if now - self._since > self.config.reset_timeout:
                    self.state, self._target = "ready", None
                    self.held = (f"the reset did not reach its pose within {self.config.reset_timeout:g} s "
                                 f"({distance:.3f} m away): the arm holds; drive it there, then reset or start")
                    raise EpisodeError(self.held)
                return []
        self.state, self._target = "ready", None
        return self.start(now) if self.config.auto_start else []

    def _draw_target(self) -> np.ndarray | None:
        if not self.config.reset_pose:
            return None
        ranges = np.asarray(self.config.reset_ranges)
        return np.asarray(self.config.reset_pose) + self.rng.uniform(-ranges, ranges)

    def _succeeded(self, observation: Observation) -> bool:
        if not self.config.success_fields:
            return False
        a, b = (self._field(observation, name) for name in self.config.success_fields)
        return float(np.linalg.norm(a - b)) < self.config.success_distance

    @staticmethod
    def _field(observation: Observation, name: str) -> np.ndarray:
        """x, y, z of the field ``name`` (``name.x``, ``name.y``, ``name.z`` in the observation's layout).

        Raises:
            EpisodeError: the observation has no such components.
        """
        try:
            index = [observation.fields.index(f"{name}.{axis}") for axis in "xyz"]
        except ValueError:
            raise EpisodeError(f"the observation has no {name}.x, {name}.y, {name}.z (its fields: "
                               f"{list(observation.fields)[:12]}): fix success_fields or reset_field") from None
        return np.array([observation.values[i] for i in index])


def check_fields(config: EpisodeConfig, layout: Sequence[str]) -> list[str]:
    """The fields the configuration names that ``layout`` lacks."""
    names = list(config.success_fields) + ([config.reset_field] if config.reset_pose else [])
    return [n for n in names if not all(f"{n}.{axis}" in layout for axis in "xyz")]
