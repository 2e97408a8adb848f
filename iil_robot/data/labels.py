"""Labelling: step records of finished episodes -> ``Transitions`` for the learners.

One code path for the live learner (episodes from :class:`iil_robot.data.episodes.EpisodeSplitter`)
and offline replay (:func:`iil_robot.data.episodes.split_episodes` over bags). The rules, for the
steps ``s_0 .. s_{n-1}`` of one episode (see also docs/data.md, "Labelling"):

**Which steps form transitions.** Step ``t`` forms ``(o_t, a_t, r_t, o_{t+1})`` when it has an
observation (the policy's input; a step without one, e.g. while the policy process is dead,
cannot), it is not a ``hold`` step (the arm was held by the mux: neither policy nor operator
behaviour; ``include_hold`` keeps them), and the next step ``s_{t+1}`` exists, has an
observation of the same size and directly follows it (``tick + 1``; a gap means lost records).
The last step of an episode that ended in a terminal outcome (``terminal_outcomes``: success,
failure) forms a terminal transition whose ``next_observation`` is its own observation (a
placeholder: terminals are not bootstrapped). ``a_t`` is the *executed* action (after the mux's
limits), in the learner's action space (``action_space``, ``iil_robot.data.actions``) and frame
(``action_frame``: in ``tool``, rotated into the end effector's frame by the orientation in the step's
own observation, ``iil_robot.data.tool_frame``; a step whose orientation is no rotation forms no
transition and no sample).

**RLIF rewards** (Luo et al. 2023): ``r_t = -1`` when ``s_{t+1}`` is an intervention onset
(``onset``), else 0. An onset on the first step, or after a step that forms no transition (no
observation, a hold, a tick gap), penalises nothing; :class:`LabelStats` counts those.
**Operator-controlled steps** enter the RLIF data like any other transition: the operator's
executed action, reward 0, ``interventions = True`` (RLIF adds the intervention data to its
buffer with the expert's executed actions).

**Flags.** ``terminals``: the terminal transition above. ``truncations``: any other transition
after which the chain of transitions is cut (the episode ended without a terminal outcome:
timeout, reset, unfinished; or the next step forms no transition): bootstrap from
``next_observations``.

**Goal reached** (ThriftyDAgger's Q_G): ``successes`` marks the terminal transition of an episode whose
outcome is ``success`` (the goal reward r_G = 1), in both the RLIF and the HG-DAgger rows.

**Novice actions and onsets** (PVP, HACO): every row carries the policy's proposal at its step
(``policy_action``, NaN where the step had none), so an operator step holds both the operator's
action and the novice action it overrode; ``onsets`` marks the first step of each intervention.

**HG-DAgger samples** (Kelly et al. 2019): the steps the operator controlled (``source ==
"human"``) that have an observation, labelled with the operator's command (``human_action``,
the operator's intent before the mux's limits; the executed action if it is missing). Their
``next_observations``/flags follow the rules above where a transition exists, else the own
observation with ``truncations = True``; rewards are 0.

**DAgger samples** (Ross et al. 2011, ``label_every_step``): every visited step (policy or
operator in control, not a hold) that has an observation and an operator command
(``human_action``), labelled with that command. Only meaningful where an operator gives a command
at every step (the simulated operator of the DAgger loop): with a SpaceMouse, the policy's steps
carry the cap at rest, which is not a label.

**Classes** (Sirius, Liu et al. 2023), per step: ``DEMO`` for every operator step of an episode
the operator drove end to end (no policy step); otherwise ``INTERVENTION`` for operator steps,
``PRE_INTERVENTION`` for policy steps within ``pre_intervention_window`` steps before an onset,
``ROBOT`` for the other policy steps, and ``NO_CLASS`` (-1) for hold steps.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from iil_robot.data.actions import ACTION_FRAMES, DEFAULT_ACTION_SPACE, action_space
from iil_robot.data.episodes import Episode, EpisodeSplitter
from iil_robot.data.records import EpisodeEvent, StepRecord
from iil_robot.data.tool_frame import rotation_at, to_tool
from iil_robot.data.transitions import StepClass, Transitions

NO_CLASS = -1
"""Class of a hold step (the mux held the arm)."""


class LabelError(ValueError):
    """Step records cannot be labelled (e.g. observations of different sizes in one dataset)."""


@dataclass(frozen=True)
class LabelConfig:
    """How step records become training data."""

    pre_intervention_window: int = 15
    """Policy steps before an onset labelled PRE_INTERVENTION (Sirius uses 15 at 20 Hz)."""
    terminal_outcomes: tuple[str, ...] = ("success", "failure")
    """Episode outcomes whose last step is terminal; the others (timeout, reset, unfinished) truncate."""
    action_space: str = DEFAULT_ACTION_SPACE
    """The learner's action space (``iil_robot.data.actions``); the learner node sets it from its ``action.space``."""
    action_frame: str = "base"
    """The learner's action frame (``action.frame``): ``tool`` rotates the actions into the end effector's frame."""
    orientation: tuple[int, ...] = ()
    """``action_frame`` tool: positions of the end effector's quaternion (x y z w) in the observation
    (``tool_frame.orientation_indices``; the learner finds them in the observation layout)."""
    include_hold: bool = False
    """Also make transitions from hold steps (executed action: zero)."""
    label_every_step: bool = False
    """DAgger: every visited step with an operator command is a sample labelled with it, not only the operator's steps.
    Only where an operator labels every step (the simulated operator); a SpaceMouse at rest is no label."""

    def __post_init__(self) -> None:
        if self.pre_intervention_window < 0:
            raise ValueError(f"pre_intervention_window {self.pre_intervention_window} must be >= 0")
        action_space(self.action_space)
        if self.action_frame not in ACTION_FRAMES:
            raise ValueError(f"action_frame {self.action_frame!r} is unknown; choose one of {list(ACTION_FRAMES)}")
        if len(self.orientation) not in (0, 4):
            raise ValueError(f"orientation {list(self.orientation)} must be the 4 positions of a quaternion (x y z w)")

    @property
    def action_indices(self) -> tuple[int, ...]:
        """Indices of the 7-value record action kept for the learner."""
        return action_space(self.action_space).indices


@dataclass
class LabelStats:
    """What labelling kept and why it dropped the rest."""

    episodes: int = 0
    steps: int = 0
    transitions: int = 0
    dagger_samples: int = 0
    no_observation: int = 0
    """Steps without an observation (no transition)."""
    hold: int = 0
    """Hold steps (no transition unless include_hold)."""
    cut: int = 0
    """Steps whose successor is missing, lost or has no observation (no transition)."""
    onsets: int = 0
    penalised_onsets: int = 0
    """Onsets whose preceding transition got reward -1."""
    unlabelled: int = 0
    """``label_every_step``: visited steps with an observation but no operator command (no DAgger sample)."""
    no_orientation: int = 0
    """``action_frame`` tool: steps whose observation holds no rotation (zero quaternion): no transition, no sample."""

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Labelled:
    """Training data from a set of episodes."""

    rlif: Transitions
    """All transitions with RLIF rewards (RLPD's online + intervention data)."""
    dagger: Transitions
    """Operator-controlled steps labelled with the operator's action (HG-DAgger)."""
    stats: LabelStats = field(default_factory=LabelStats)
    rlif_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    """[len(rlif)] index, within its episode, of the step each ``rlif`` row comes from."""
    dagger_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    """[len(dagger)] index, within its episode, of the step each ``dagger`` row comes from."""

    def steps_in(self, first: int, end: float = float("inf")) -> "Labelled":
        """The rows of the steps ``first`` to ``end`` (excluded) of the episode."""
        keep_rlif = (self.rlif_steps >= first) & (self.rlif_steps < end)
        keep_dagger = (self.dagger_steps >= first) & (self.dagger_steps < end)
        return Labelled(self.rlif.take(keep_rlif), self.dagger.take(keep_dagger), self.stats,
                        self.rlif_steps[keep_rlif], self.dagger_steps[keep_dagger])


def step_classes(steps: Sequence[StepRecord], window: int = 15) -> np.ndarray:
    """Per-step ``StepClass`` values (``NO_CLASS`` for hold steps), int8 [n]."""
    n = len(steps)
    classes = np.full(n, NO_CLASS, np.int8)
    demo = any(s.source == "human" for s in steps) and not any(s.source == "policy" for s in steps)
    onsets = [t for t, s in enumerate(steps) if s.onset]
    for t, s in enumerate(steps):
        if s.source == "human":
            classes[t] = StepClass.DEMO if demo else StepClass.INTERVENTION
        elif s.source == "policy":
            pre = any(0 < o - t <= window for o in onsets)
            classes[t] = StepClass.PRE_INTERVENTION if pre else StepClass.ROBOT
    return classes


def _follows(a: StepRecord, b: StepRecord) -> bool:
    return (b.observation is not None and a.observation is not None and b.tick == a.tick + 1
            and len(b.observation) == len(a.observation))


def _usable(step: StepRecord, config: LabelConfig) -> bool:
    return step.observation is not None and (step.source != "hold" or config.include_hold)


def label_episode(episode: Episode, config: LabelConfig = LabelConfig(), stats: LabelStats | None = None) -> Labelled:
    """Label one finished episode (rules in the module docstring)."""
    stats = stats if stats is not None else LabelStats()
    steps = episode.steps
    n = len(steps)
    terminal_episode = episode.outcome in config.terminal_outcomes
    classes = step_classes(steps, config.pre_intervention_window)
    idx = list(config.action_indices)
    rotations = _rotations(steps, config)

    # forms[t]: step t makes a transition; nxt[t]: index of its next observation.
    forms = [False] * n
    nxt = list(range(n))
    terminal = [False] * n
    for t, s in enumerate(steps):
        stats.onsets += s.onset
        if s.observation is None:
            stats.no_observation += 1
            continue
        if not _usable(s, config):
            stats.hold += 1
            continue
        if rotations is not None and rotations[t] is None:
            stats.no_orientation += 1
            continue
        if t + 1 < n and _follows(s, steps[t + 1]):
            forms[t], nxt[t] = True, t + 1
        elif t == n - 1 and terminal_episode:
            forms[t], terminal[t] = True, True
        else:
            stats.cut += 1

    rows = [t for t in range(n) if forms[t]]
    rewards = [-1.0 if (nxt[t] != t and steps[nxt[t]].onset) else 0.0 for t in rows]
    stats.penalised_onsets += sum(r < 0 for r in rewards)
    truncated = [not terminal[t] and not (nxt[t] != t and forms[nxt[t]]) for t in rows]
    reached = [terminal[t] and episode.outcome == "success" for t in range(n)]
    rlif = _transitions(
        steps, rows, [nxt[t] for t in rows], [list(steps[t].executed_action) for t in rows], rewards,
        [terminal[t] for t in rows], truncated, classes, idx, [reached[t] for t in rows], rotations,
    )

    human = [t for t, s in enumerate(steps) if s.source == "human" and s.observation is not None]
    if config.label_every_step:  # DAgger: the operator's command at every visited state
        visited = [t for t, s in enumerate(steps) if s.observation is not None and s.source != "hold"]
        human = [t for t in visited if steps[t].human_action is not None]
        stats.unlabelled += len(visited) - len(human)
    if rotations is not None:
        human = [t for t in human if rotations[t] is not None]
    dagger = _transitions(
        steps, human, [nxt[t] if forms[t] else t for t in human],
        [list(steps[t].human_action or steps[t].executed_action) for t in human], [0.0] * len(human),
        [terminal[t] for t in human],
        [not terminal[t] and not (forms[t] and nxt[t] != t and forms[nxt[t]]) for t in human], classes, idx,
        [reached[t] for t in human], rotations,
    )
    stats.episodes += 1
    stats.steps += n
    stats.transitions += len(rlif)
    stats.dagger_samples += len(dagger)
    return Labelled(rlif, dagger, stats, np.asarray(rows, np.int64), np.asarray(human, np.int64))


def _rotations(steps: Sequence[StepRecord], config: LabelConfig) -> list[np.ndarray | None] | None:
    """``action_frame`` tool: each step's end-effector orientation (None where its observation holds none); base: None."""
    if config.action_frame == "base":
        return None
    if not config.orientation:
        raise LabelError("action_frame tool needs the orientation's positions in the observation (LabelConfig.orientation, "
                         "from tool_frame.orientation_indices of the observation layout)")
    return [rotation_at(s.observation, config.orientation) for s in steps]


def _transitions(
    steps: Sequence[StepRecord], rows: list[int], next_rows: list[int], actions: list[list[float]],
    rewards: list[float], terminals: list[bool], truncations: list[bool], classes: np.ndarray, idx: list[int],
    successes: list[bool], rotations: list[np.ndarray | None] | None,
) -> Transitions:
    obs_dim = len(steps[rows[0]].observation) if rows else 0  # type: ignore[arg-type]
    if rows and any(len(steps[t].observation) != obs_dim for t in rows):  # type: ignore[arg-type]
        raise LabelError(f"observations of different sizes in one episode: {sorted({len(steps[t].observation) for t in rows})}")  # type: ignore[arg-type]
    if not rows:
        return Transitions.empty(0, len(idx))
    nan = (float("nan"),) * len(steps[rows[0]].executed_action)  # no proposal at that step
    executed, novice = np.asarray(actions, np.float64), np.asarray([steps[t].policy_action or nan for t in rows], np.float64)
    if rotations is not None:  # the tool frame: by each row's own orientation (a NaN proposal stays NaN)
        frames = np.stack([rotations[t] for t in rows])
        executed, novice = to_tool(executed, frames), to_tool(novice, frames)
    return Transitions(
        observations=np.asarray([steps[t].observation for t in rows], np.float32),
        actions=executed.astype(np.float32)[:, idx],
        rewards=np.asarray(rewards, np.float32),
        next_observations=np.asarray([steps[t].observation for t in next_rows], np.float32),
        terminals=np.asarray(terminals, bool),
        truncations=np.asarray(truncations, bool),
        interventions=np.asarray([steps[t].source == "human" for t in rows], bool),
        classes=classes[rows].astype(np.int8),
        novice_actions=novice.astype(np.float32)[:, idx],
        onsets=np.asarray([steps[t].onset for t in rows], bool),
        successes=np.asarray(successes, bool),
        image_stamps=_image_stamps(steps, rows),
        next_image_stamps=_image_stamps(steps, next_rows),
    )


def _image_stamps(steps: Sequence[StepRecord], rows: list[int]) -> np.ndarray:
    """The steps' ``image_stamps`` (camera name -> stamp, None where none): the learner pairs camera frames by them."""
    stamps = np.empty(len(rows), object)
    stamps[:] = [steps[t].image_stamps for t in rows]
    return stamps


def label_episodes(episodes: Sequence[Episode], config: LabelConfig = LabelConfig()) -> Labelled:
    """Label several episodes into one dataset. Raises LabelError on mixed observation sizes."""
    stats = LabelStats()
    parts = [label_episode(e, config, stats) for e in episodes]
    return Labelled(_concat([p.rlif for p in parts], config), _concat([p.dagger for p in parts], config), stats,
                    np.concatenate([p.rlif_steps for p in parts] or [np.zeros(0, np.int64)]),
                    np.concatenate([p.dagger_steps for p in parts] or [np.zeros(0, np.int64)]))


def _concat(parts: list[Transitions], config: LabelConfig) -> Transitions:
    parts = [p for p in parts if len(p)]
    if not parts:
        return Transitions.empty(0, len(config.action_indices))
    dims = sorted({p.observations.shape[1] for p in parts})
    if len(dims) > 1:
        raise LabelError(f"episodes have observations of different sizes {dims}: label them separately")
    return Transitions.concatenate(parts)


class LiveLabeller:
    """Labels a live stream of step records and episode events by the offline rules.

    Steps and events go into an :class:`EpisodeSplitter`; each episode it closes is labelled by
    :func:`label_episode`, so the live learner gets exactly the rows that offline replay of the
    same recording gives (the project rule: one code path for both).

    **The open episode.** Waiting for every episode to close is always right, but the learner
    then sees nothing of an episode until its end (a long one, or a session without episode
    events, starves it). So rows of the open episode are emitted early, but only once nothing
    still to come can change them (each row's label depends on the next two steps, the onsets
    within ``pre_intervention_window`` steps after it, and whether the episode has a policy step):

    - the episode was opened by a ``start`` event (the steps of an implicitly opened one are
      dropped as *between episodes* if a ``start`` follows, e.g. the sim's reset phase);
    - the step and the ``max(2, pre_intervention_window)`` steps after it are *settled*: older
      than the newest step by ``event_delay`` seconds, the longest an episode event may arrive
      after its stamp (a later event would move them into the next episode);
    - a settled step of the episode is a policy step (otherwise it may be a demo, whose operator
      steps are ``DEMO``, not ``INTERVENTION``).

    When the episode closes, the rest of its rows follow. So episodes without a ``start`` (e.g.
    a hand-driven session ended by the operator's success/failure buttons) are learned from when
    they close. An event that arrives later than ``event_delay`` and cuts into rows already emitted
    is counted in ``late_events``: those rows were labelled as if the episode went on (wrong by
    at most a truncation flag, a reward or a class). ``event_delay = inf`` always waits.
    """

    def __init__(self, config: LabelConfig = LabelConfig(), event_delay: float = 1.0) -> None:
        if event_delay < 0:
            raise ValueError(f"event_delay {event_delay} must be >= 0 seconds")
        self.config, self.event_delay = config, event_delay
        self.splitter = EpisodeSplitter()
        self.lookahead = max(2, config.pre_intervention_window)
        self.episodes = 0
        """Episodes closed and labelled."""
        self.early_rows = 0
        """RLIF rows emitted before their episode closed."""
        self.late_events = 0
        """Events that cut into rows already emitted (arrived later than ``event_delay``)."""
        self._first: StepRecord | None = None  # first step of the open episode
        self._emitted = 0  # leading steps of the open episode whose rows were emitted

    def add_steps(self, steps: Sequence[StepRecord]) -> list[Labelled]:
        """Add step records (in tick order); returns labelled rows that became final."""
        out: list[Labelled] = []
        for step in steps:
            out += self._closed(self.splitter.add_step(step))
        early = self._early()
        return out + ([early] if early is not None else [])

    def add_event(self, event: EpisodeEvent) -> list[Labelled]:
        """Add an episode event; returns the rows of an episode a late event closed at once."""
        return self._closed(self.splitter.add_event(event))

    def flush(self) -> list[Labelled]:
        """End of data (offline only): close the open episode as ``unfinished`` and label it."""
        return self._closed(self.splitter.flush())

    def _closed(self, episodes: list[Episode]) -> list[Labelled]:
        out = []
        for episode in episodes:
            done = self._emitted if episode.steps[0] is self._first else 0
            if done and len(episode.steps) < done + self.lookahead:
                self.late_events += 1
            out.append(label_episode(episode, self.config).steps_in(done))
            self.episodes += 1
        if self.splitter.open_first is not self._first:
            self._first, self._emitted = self.splitter.open_first, 0
        return out

    def _early(self) -> Labelled | None:
        if not self.splitter.open_explicit or self.event_delay == float("inf"):
            return None
        steps = self.splitter.open_steps
        horizon = steps[-1].stamp - self.event_delay if steps else float("-inf")
        settled = next((i for i in range(len(steps) - 1, -1, -1) if steps[i].stamp <= horizon), -1) + 1
        end = settled - self.lookahead
        # Relabelling costs O(episode): do it once per `lookahead` new final steps, not per step.
        if end - self._emitted < self.lookahead or not any(s.source == "policy" for s in steps[:settled]):
            return None
        episode = Episode(-1, steps, steps[0].stamp, steps[-1].stamp, "unfinished")
        rows = label_episode(episode, self.config).steps_in(self._emitted, end)
        self._emitted = end
        self.early_rows += len(rows.rlif)
        return rows
