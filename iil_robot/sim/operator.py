"""The simulated operator: a scripted expert of some quality that watches a policy and takes over.

Per tick the mux (or a rollout loop) calls ``act(obs, policy_action)`` and gets an
`OperatorDecision`: whether the operator is in control, the command it gives, whether this
tick is an intervention onset or a hand-back, and which model stepped in and why.

Models (``SimOperatorConfig.model``):
- "value":  RLIF's value-based model (see `iil_robot.sim.intervention`);
- "random": RLIF's random model, a fixed per-tick probability;
- "demo":   the operator drives every tick of the episode;
- "never":  the operator never steps in (pure policy rollouts);
- "dagger": DAgger's β-mixing (Ross et al. 2011): the operator gives its command at every tick
  (``label``: a label for every visited state) and drives the tick with probability ``mixing``
  (β; the learning loop sets it round by round). Only a simulated operator labels every step.

Help requests (ThriftyDAgger, Hoque et al. 2021): ``act(..., help_requested=True)`` tells the operator that
the policy asks for help. With ``answers_requests`` (always for the "robot_gated" model, which steps in
*only* when asked: ThriftyDAgger's setting) it takes over at once, judges whether the request was needed
(``needed``: would its value model have judged the policy's proposal bad in the state it sees now?), and
drives until the request is withdrawn (the policy's hand-back rule) or ``answer_max_steps`` ticks have
passed (then it lets go; the requester treats that as the operator handing back).

DART (Laskey et al. 2017): with ``dart_noise`` > 0, every tick the operator drives also carries
``dart_noise``, Gaussian noise (σ m/s per axis) that the arm executes on top of the clean command
while the clean command stays the label.

A "value" or "random" intervention lasts ``takeover_steps`` ticks; with ``release_on_track``
it ends earlier, as soon as the state is back on track: its time-to-go (see
`iil_robot.sim.progress`) is at least one tick below that of the state in which the policy
went wrong. With a ``reaction_delay`` the operator judges the policy's proposal from that many
ticks ago, so it steps in that many ticks after the action it reacts to. It judges only
proposals that were executed, and not in the tick it hands back. It judges from what it
perceives (its aim errors included), so a poorer operator also judges worse.

All randomness comes from the generator passed in; the same seed and inputs give the same
decisions.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from iil_robot.sim.expert import ExpertConfig, expert_action
from iil_robot.sim.intervention import Trigger, judge_value, random_trigger, value_trigger
from iil_robot.sim.perception import Percept, Perception
from iil_robot.sim.progress import time_to_go
from iil_robot.sim.skill import OperatorSkill, degrade_action, skill_for_level
from iil_robot.sim.spec import TaskSpec
from iil_robot.sim.state import TaskState

__all__ = ["MODELS", "OperatorDecision", "SimOperator", "SimOperatorConfig"]

MODELS: tuple[str, ...] = ("value", "random", "demo", "never", "dagger", "robot_gated")


@dataclass(frozen=True)
class SimOperatorConfig:
    """How the simulated operator behaves."""

    model: str = "value"
    """Intervention model: "value", "random", "demo", "never", "dagger" or "robot_gated" (only when asked)."""
    level: float = 1.0
    """Quality in [0, 1]: driving whole episodes it succeeds ≈ level × the scripted optimum
    (sets the knobs through `skill_for_level`; ignored when ``skill`` is given)."""
    skill: OperatorSkill | None = None
    """Explicit suboptimality knobs instead of ``level``."""
    takeover_steps: int = 10
    """k: ticks an intervention lasts (at most, with ``release_on_track``)."""
    release_on_track: bool = False
    """Hand back as soon as the state is back on track instead of after k ticks."""
    random_prob: float = 0.05
    """"random" model: probability of stepping in per tick the policy is in control."""
    beta: float = 0.95
    """"value" model: probability of stepping in when the policy action is judged bad."""
    alpha: float = 0.97
    """"value" model: bad means Q(s, a_policy) < alpha · Q(s, a_ref)."""
    discount: float = 0.95
    """"value" model: γ of the progress value V = γ^(ticks to go); with alpha it sets how many
    ticks of lost progress count as bad: log(alpha) / log(discount) (0.59 by default)."""
    expert: ExpertConfig = field(default_factory=ExpertConfig)
    """The scripted optimum the operator degrades, and the reference action."""
    mixing: float = 1.0
    """"dagger" model: β, the probability that the operator drives a tick (it labels every tick)."""
    dart_noise: float = 0.0
    """DART: σ (m/s) of the Gaussian noise executed on top of the operator's command while it drives (0 = off)."""
    answers_requests: bool = False
    """"value"/"random": also take over when the policy asks for help ("robot_gated" always does)."""
    answer_max_steps: int = 100
    """Ticks the operator drives at most in answer to one request (then it lets go even if still asked)."""

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"unknown operator model {self.model!r}; choose one of {', '.join(MODELS)}")
        if not 0.0 <= self.level <= 1.0:
            raise ValueError(f"level must be in [0, 1], got {self.level}")
        if self.takeover_steps < 1 or self.answer_max_steps < 1:
            raise ValueError("takeover_steps and answer_max_steps must be >= 1, "
                             f"got {self.takeover_steps}, {self.answer_max_steps}")
        if self.dart_noise < 0:
            raise ValueError(f"dart_noise must be >= 0 m/s, got {self.dart_noise}")
        for name in ("random_prob", "beta", "alpha", "mixing"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 < self.discount < 1.0:
            raise ValueError(f"discount must be in (0, 1), got {self.discount}")


@dataclass(frozen=True)
class OperatorDecision:
    """What the operator does in one tick."""

    in_control: bool
    """Whether the operator's command replaces the policy's this tick."""
    action: np.ndarray | None
    """The operator's command ``[vx, vy, vz, closure]`` while in control, else None."""
    onset: bool
    """This tick starts an intervention."""
    offset: bool
    """This tick the operator hands control back (it is no longer in control)."""
    model: str
    """The intervention model: "random", "value", "demo" or "never"."""
    reason: str
    """Why the operator is in control (the trigger of this intervention), or why it let go."""
    wrong_move: bool = False
    """The command is a deliberate wrong move (a suboptimality knob)."""
    q_policy: float | None = None
    """"value" model, onset tick: Q(s, a_policy)."""
    q_reference: float | None = None
    """"value" model, onset tick: Q(s, a_ref)."""
    label: np.ndarray | None = None
    """"dagger" model: the operator's command ``[vx, vy, vz, closure]`` at every tick, driving or not."""
    dart_noise: np.ndarray | None = None
    """DART: ``[dvx, dvy, dvz]`` the arm executes on top of ``action`` (the clean command stays the label)."""
    needed: bool | None = None
    """Onset of an answered help request: whether the operator judged the policy's proposal bad there."""


class SimOperator:
    """A scripted operator that watches the policy and steps in (see the module docstring)."""

    def __init__(self, config: SimOperatorConfig, task: TaskSpec, rng: np.random.Generator) -> None:
        self.config = config
        self.task = task
        self.skill = config.skill if config.skill is not None else skill_for_level(task.name, config.level)
        self._rng = rng
        self._perception = Perception(self.skill, rng)
        self.reset()

    def reset(self) -> None:
        """Start a new episode: new aim errors, nothing remembered, not in control."""
        self._perception.reset()
        self._remaining = 0
        self._trigger: Trigger | None = None
        self._release_below = -np.inf
        self._ticks = 0
        self._drove = False  # "dagger": whether the operator drove the previous tick
        self._answering = 0  # ticks driven in answer to the current help request (0: not answering)

    @property
    def in_control(self) -> bool:
        return self._remaining > 0 or self._answering > 0

    @property
    def answers_requests(self) -> bool:
        return self.config.model == "robot_gated" or (self.config.answers_requests and self.config.model in ("value", "random"))

    def act(self, obs: np.ndarray | TaskState, policy_action: np.ndarray | None = None,
            help_requested: bool = False) -> OperatorDecision:
        """Decide this tick from the observation (or a `TaskState` built from published poses)
        and the policy's proposal ``[vx, vy, vz, closure]`` (None: the policy proposes nothing);
        ``help_requested``: the policy asks for help this tick (see the module docstring).

        Raises:
            ValueError: if the observation does not fit the task.
        """
        state = obs if isinstance(obs, TaskState) else TaskState.from_obs(obs, self.task)
        percept = self._perception.observe(state, None if policy_action is None else np.asarray(policy_action))
        first_tick = self._ticks == 0
        self._ticks += 1
        model = self.config.model
        if model == "never":
            return OperatorDecision(False, None, False, False, model, "")
        seen = self._perception.seen
        if model == "demo":
            return self._command(seen, onset=first_tick, reason="demo: the operator drives every tick")
        if model == "dagger":
            drives = bool(self._rng.random() < self.config.mixing)
            command = self._command(seen, onset=drives and not self._drove,
                                    reason=f"dagger: driving with probability {self.config.mixing:g}")
            self._drove, offset = drives, self._drove and not drives
            if drives:
                return replace(command, label=command.action)
            return OperatorDecision(False, None, False, offset, model, "dagger: labelling the policy's tick",
                                    label=command.action)
        if self._answering:
            if not help_requested:
                return self._let_go("handed back: the policy no longer asks for help")
            if self._answering >= self.config.answer_max_steps:
                return self._let_go(f"released after {self._answering} ticks answering a help request")
            self._answering += 1
            return self._command(seen, onset=False, reason="answering the policy's help request")
        if self.in_control:
            self._remaining -= 1
            if self._remaining == 0:
                return self._let_go(f"released after {self.config.takeover_steps} ticks")
            if self.config.release_on_track and time_to_go(seen, self.task, self.config.expert) <= self._release_below:
                self._remaining = 0
                return self._let_go("released: back on track")
            return self._command(seen, onset=False, reason=self._trigger.reason)
        if help_requested and self.answers_requests:
            return self._answer(seen, policy_action)
        if model == "robot_gated":
            return OperatorDecision(False, None, False, False, model, "")
        trigger = self._judge(percept)
        if trigger is None:
            return OperatorDecision(False, None, False, False, model, "")
        self._trigger = trigger
        self._remaining = self.config.takeover_steps
        self._release_below = time_to_go(percept.state, self.task, self.config.expert) - 1.0
        return self._command(seen, onset=True, reason=trigger.reason, trigger=trigger)

    # --- pieces ---
    def _answer(self, seen: TaskState, policy_action: np.ndarray | None) -> OperatorDecision:
        """Take over on a help request, judging (from the current perceived state) whether it was needed."""
        self._answering = 1
        if policy_action is None:
            return replace(self._command(seen, onset=True, reason="help requested (no proposal to judge)"), needed=None)
        c = self.config
        needed, q_policy, q_reference = judge_value(self._perception.latest.state, np.asarray(policy_action, float), self.task,
                                                    alpha=c.alpha, discount=c.discount, expert=c.expert)
        command = self._command(seen, onset=True, reason=f"help requested ({'needed' if needed else 'not needed'}: "
                                                         f"Q(s,a_policy)={q_policy:.3f} vs "
                                                         f"{c.alpha:g}·Q(s,a_ref)={q_reference:.3f})")
        return replace(command, needed=needed, q_policy=q_policy, q_reference=q_reference)

    def _judge(self, percept: Percept | None) -> Trigger | None:
        if percept is None or not percept.policy_executed:
            return None
        if self.config.model == "random":
            return random_trigger(self.config.random_prob, self._rng)
        if percept.policy_action is None:
            return None
        config = self.config
        return value_trigger(
            percept.state, percept.policy_action, self.task, self._rng,
            beta=config.beta, alpha=config.alpha, discount=config.discount, expert=config.expert,
        )

    def _command(self, seen: TaskState, *, onset: bool, reason: str, trigger: Trigger | None = None) -> OperatorDecision:
        self._perception.latest.policy_executed = False
        action, wrong = degrade_action(expert_action(seen, self.task, self.config.expert), self.skill, self._rng)
        action[:3] = np.clip(action[:3], -self.task.max_speed, self.task.max_speed)
        action[3] = np.clip(action[3], 0.0, 1.0)
        noise = self._rng.normal(0.0, self.config.dart_noise, 3) if self.config.dart_noise > 0 else None
        return OperatorDecision(
            in_control=True, action=action, onset=onset, offset=False, model=self.config.model, reason=reason,
            wrong_move=wrong,
            q_policy=None if trigger is None else trigger.q_policy,
            q_reference=None if trigger is None else trigger.q_reference,
            dart_noise=noise,
        )

    def _let_go(self, reason: str) -> OperatorDecision:
        self._trigger, self._answering = None, 0
        return OperatorDecision(False, None, False, True, self.config.model, reason)
