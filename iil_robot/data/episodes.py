"""Episodes: which step records belong together, and the summary the recorder writes for each.

Step records carry no episode id. Episodes are cut from the stream of step records by episode
events (``iil_robot.episode_event``: the gate's buttons, the sim, the recorder's services),
**by stamp**: an event at time T ends or starts an episode at T; a step with ``stamp < T``
belongs before the boundary, a step with ``stamp >= T`` after it. The rules:

- ``start`` opens an episode at T. If an episode was open: one opened by a ``start`` closes as
  ``unfinished`` (no outcome was given); one opened implicitly (below) is dropped, its steps
  counted as *between episodes* (the reset phase before the sim's next ``start``).
- ``success``, ``failure``, ``timeout``, ``reset`` close the open episode at T with that
  outcome. With no episode open they are ignored (e.g. the sim's ``timeout`` right after the
  operator pressed ``success``).
- A step that arrives while no episode is open opens one implicitly, so hand-driven sessions
  without ``start`` events still split at each outcome button.
- At the end of the data, an open episode closes as ``unfinished``; but once a ``start`` has
  been seen, one opened implicitly is the reset phase after the last episode and is dropped as
  between episodes (the episode manager's graph), never labelled. Episodes without steps are
  dropped.

:class:`EpisodeSplitter` applies these rules incrementally for the live learner and the recorder
(an event is applied once a step at or after its stamp arrives, so a step in flight when the
event was published still lands on the right side); :func:`split_episodes` runs the same code
over a whole recording for offline replay.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from iil_robot.data.records import EpisodeEvent, RecordError, StepRecord, _dump, _field, _float, _integer, _load

EPISODE_FORMAT = "iil_robot.episode"
EPISODE_VERSION = 1
OUTCOMES: tuple[str, ...] = ("success", "failure", "timeout", "reset", "unfinished")


@dataclass(frozen=True)
class Episode:
    """The step records of one episode and how it ended."""

    index: int
    """Position in the recording (0-based, in order of ending)."""
    steps: tuple[StepRecord, ...]
    """Step records in tick order."""
    start: float
    """Stamp of its ``start`` event, or of its first step."""
    end: float
    """Stamp of the event that ended it, or of its last step."""
    outcome: str
    """One of ``OUTCOMES``."""
    origin: str = ""
    """Who ended it (``operator``, ``sim``, ``service``), empty for ``unfinished``."""


@dataclass
class _Open:
    start: float
    explicit: bool
    steps: list[StepRecord] = field(default_factory=list)


class EpisodeSplitter:
    """Incremental episode splitting; the same rules online and offline (module docstring)."""

    def __init__(self) -> None:
        self._open: _Open | None = None
        self._pending: list[EpisodeEvent] = []
        self._count = 0
        self.between_steps = 0
        """Steps dropped as between episodes."""
        self.ignored_events = 0
        """Outcome events that arrived with no episode open."""
        self._started = False  # a start event was applied: steps outside an episode are between episodes

    @property
    def open_steps(self) -> tuple[StepRecord, ...]:
        """Steps of the episode in progress (a learner may label them early)."""
        return tuple(self._open.steps) if self._open else ()

    @property
    def open_first(self) -> StepRecord | None:
        """First step of the episode in progress (identifies it cheaply), None when none is open."""
        return self._open.steps[0] if self._open and self._open.steps else None

    @property
    def open_explicit(self) -> bool:
        """The episode in progress was opened by a ``start`` event (a later ``start`` cannot drop its steps)."""
        return self._open is not None and self._open.explicit

    def add_event(self, event: EpisodeEvent) -> list[Episode]:
        """Queue an event; it takes effect when a step at or after its stamp arrives."""
        self._pending.append(event)
        self._pending.sort(key=lambda e: e.stamp)
        # A late event (older than steps already placed) splits the open episode now.
        if self._open and self._open.steps and self._open.steps[-1].stamp >= event.stamp:
            return self._apply_due(self._open.steps[-1].stamp)
        return []

    def add_step(self, step: StepRecord) -> list[Episode]:
        """Add a step record (in tick order); returns the episodes this completed."""
        done = self._apply_due(step.stamp)
        if self._open is None:
            self._open = _Open(step.stamp, explicit=False)
        self._open.steps.append(step)
        return done

    def flush(self) -> list[Episode]:
        """End of data: apply every queued event and close the open episode as ``unfinished``."""
        done = self._apply_due(float("inf"))
        if self._open is not None and not self._open.explicit and self._started:
            self.between_steps += len(self._open.steps)
            self._open = None
        if self._open is not None:
            done += self._close(self._open.steps[-1].stamp if self._open.steps else self._open.start, "unfinished", "")
        return done

    def _apply_due(self, stamp: float) -> list[Episode]:
        done: list[Episode] = []
        while self._pending and self._pending[0].stamp <= stamp:
            done += self._apply(self._pending.pop(0))
        return done

    def _apply(self, event: EpisodeEvent) -> list[Episode]:
        # Steps already placed at or after the boundary move to the other side of it.
        carried: list[StepRecord] = []
        if self._open is not None:
            carried = [s for s in self._open.steps if s.stamp >= event.stamp]
            self._open.steps = [s for s in self._open.steps if s.stamp < event.stamp]
        done: list[Episode] = []
        if event.event == "start":
            self._started = True
            if self._open is not None:
                if self._open.explicit:
                    done += self._close(event.stamp, "unfinished", "")
                else:
                    self.between_steps += len(self._open.steps)
                    self._open = None
            self._open = _Open(event.stamp, explicit=True)
        elif self._open is not None and (self._open.steps or self._open.explicit):
            done += self._close(event.stamp, event.event, event.origin)
        else:
            self.ignored_events += 1
        for step in carried:
            if self._open is None:
                self._open = _Open(step.stamp, explicit=False)
            self._open.steps.append(step)
        return done

    def _close(self, end: float, outcome: str, origin: str) -> list[Episode]:
        assert self._open is not None
        opened, self._open = self._open, None
        if not opened.steps:
            return []
        episode = Episode(self._count, tuple(opened.steps), opened.start, end, outcome, origin)
        self._count += 1
        return [episode]


def split_episodes(steps: Iterable[StepRecord], events: Iterable[EpisodeEvent]) -> list[Episode]:
    """All episodes of a recording (steps in any order; sorted by stamp, ties by tick)."""
    splitter = EpisodeSplitter()
    for event in sorted(events, key=lambda e: e.stamp):
        splitter.add_event(event)
    done: list[Episode] = []
    for step in sorted(steps, key=lambda s: (s.stamp, s.tick)):
        done += splitter.add_step(step)
    return done + splitter.flush()


class TickGaps:
    """Mux ticks that no step record holds, counted from the records' ``tick`` as they come (in stamp order).

    The mux numbers its ticks from 0 when it starts, so a record's ``tick`` also tells how many came before it: a
    first record with tick 40 means 40 ticks were published before this stream began (before the recorder
    subscribed, or into an earlier recording). A ``tick`` lower than the last one means the mux restarted."""

    def __init__(self) -> None:
        self.before_first = 0
        """Ticks before the first record of each mux run."""
        self.between = 0
        """Ticks missing between consecutive records (lost on the way)."""
        self._last: int | None = None

    def add(self, tick: int) -> int:
        """Count one record's tick; returns the ticks missing right before it."""
        last, self._last = self._last, tick
        if last is None or tick < last:
            self.before_first += tick
            return tick
        missing = max(0, tick - last - 1)  # a repeated tick (the same record read twice) misses nothing
        self.between += missing
        return missing


@dataclass(frozen=True)
class EpisodeSummary:
    """``iil_robot.episode`` v1: what the recorder writes into the bag when an episode ends."""

    index: int
    """Episode number in its recording."""
    start: float
    """Start stamp (s, node clock)."""
    end: float
    """End stamp (s)."""
    outcome: str
    """One of ``OUTCOMES``."""
    origin: str
    """Who ended it: ``operator``, ``sim``, ``service`` (empty when unfinished)."""
    steps: int
    """Step records in it."""
    interventions: int
    """Intervention onsets in it."""
    intervention_steps: int
    """Steps the operator controlled."""
    policy_versions: tuple[int, ...]
    """Distinct policy weight versions behind its proposals."""
    lost_ticks: int
    """Ticks missing between its records (gaps in ``tick``)."""
    operator: str = ""
    """Operator name (recorder parameter)."""
    task: str = ""
    """Task name (recorder parameter)."""

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)

    @property
    def intervention_rate(self) -> float:
        """Fraction of steps under operator control."""
        return self.intervention_steps / self.steps if self.steps else 0.0

    @classmethod
    def of(cls, episode: Episode, operator: str = "", task: str = "") -> "EpisodeSummary":
        steps = episode.steps
        lost = sum(max(0, b.tick - a.tick - 1) for a, b in zip(steps, steps[1:]) if b.tick > a.tick)
        return cls(
            index=episode.index, start=episode.start, end=episode.end, outcome=episode.outcome,
            origin=episode.origin, steps=len(steps),
            interventions=sum(s.onset for s in steps),
            intervention_steps=sum(s.source == "human" for s in steps),
            policy_versions=tuple(sorted({s.policy_version for s in steps if s.policy_version is not None})),
            lost_ticks=lost, operator=operator, task=task,
        )

    def to_dict(self) -> dict:
        return {
            "index": self.index, "start": self.start, "end": self.end, "duration": self.duration,
            "outcome": self.outcome, "origin": self.origin, "steps": self.steps,
            "interventions": self.interventions, "intervention_steps": self.intervention_steps,
            "intervention_rate": self.intervention_rate, "policy_versions": list(self.policy_versions),
            "lost_ticks": self.lost_ticks, "operator": self.operator, "task": self.task,
        }

    def encode(self) -> str:
        return _dump(self.to_dict(), EPISODE_FORMAT, EPISODE_VERSION)

    @classmethod
    def decode(cls, text: str) -> "EpisodeSummary":
        data = _load(text, EPISODE_FORMAT, EPISODE_VERSION)
        outcome = _field(data, "outcome", str, "episode")
        if outcome not in OUTCOMES:
            raise RecordError(f"episode outcome {outcome!r} must be one of {OUTCOMES}")
        versions = [_integer({"policy_versions": v}, "policy_versions", "episode")
                    for v in _field(data, "policy_versions", list, "episode")]
        return cls(
            index=_integer(data, "index", "episode"),  # type: ignore[arg-type]
            start=_float(data, "start", "episode"),
            end=_float(data, "end", "episode"),
            outcome=outcome,
            origin=_field(data, "origin", str, "episode"),
            steps=_integer(data, "steps", "episode"),  # type: ignore[arg-type]
            interventions=_integer(data, "interventions", "episode"),  # type: ignore[arg-type]
            intervention_steps=_integer(data, "intervention_steps", "episode"),  # type: ignore[arg-type]
            policy_versions=tuple(versions),
            lost_ticks=_integer(data, "lost_ticks", "episode"),  # type: ignore[arg-type]
            operator=_field(data, "operator", str, "episode"),
            task=_field(data, "task", str, "episode"),
        )
