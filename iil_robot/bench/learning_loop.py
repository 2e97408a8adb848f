"""Interactive imitation learning without ROS: one policy, one simulated operator, one learner.

The nodes' core code in a single process on a simulated clock. Each tick, as in ``./iil sim``:
the acting side (``PolicyRunner``, mean action) proposes; the ``SimOperator`` judges the
proposal and, while in control, engages the human source of the arbitration ``Mux`` with its
command; the mux picks, limits and records a ``StepRecord``; the ``FetchTaskEnv`` executes the
mux's command. Step records and episode events go to the learner's ``Trainer`` (live labelling
→ buffers → updates), whose exported weights the runner installs every ``refresh_every`` env
steps, after ``budget × refresh_every`` learner updates (the method's budget unless ``updates_per_step`` is set).

Camera policies (``image_size`` > 0): each tick the sim camera renders the scene at that size; the
runner acts on the frame (its stamp goes into the proposal and the step record) and the trainer
pairs the frames with the records by that stamp, the nodes' path.

Methods: ``rlif`` (RLPD on the intervention rewards), ``hgdagger`` (BC ensemble on demos and
interventions), ``bc`` (the HG-DAgger learner on the initial demos only: trained before the loop,
then frozen; it still acts under the operator so its intervention rate is measured alike).
The rest of the interactive-imitation family is the same supervised learner, configured:
``dagger`` (the operator labels every tick and drives it with probability β_i, round i =
``refresh_every`` steps; ``dagger_schedule``), ``iwr`` and ``sirius`` (HG-DAgger's loop, learning
from the robot's steps too, sampled by ``hgdagger.weighting``), ``dart`` (HG-DAgger's loop with
``dart_noise`` executed on top of the operator's commands, demos included, the clean commands as
labels: the mux records the clean command, the noise is applied to the arm). ``thrifty``
(ThriftyDAgger, Hoque et al. 2021) is robot-gated: HG-DAgger with the goal critic Q_G, a
``HelpRequester`` fed with each proposal's novelty and risk and each step record (the operator's
command and its risk, for the hand-back), and the operator in its "robot_gated" model, which steps
in only when the policy asks, says whether the request was needed, and drives until the requester
hands back (or ``operator.answer_max_steps``).

All methods start from the same ``demo_episodes`` demos of the operator at its level (its
"demo" mode) and the same ``pretrain_updates`` warm start on them before acting
(``Trainer.warm_start``: HG-DAgger and BC train; RLIF fits its critics and clones the actor,
whose RL updates then start from the operator's behaviour). Success is evaluated
with the policy alone (operator "never") every ``eval_every`` env steps on fixed env seeds.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import torch

from iil_robot.acting.cameras import CameraFrame, RecentFrames
from iil_robot.acting.policy import HelpConfig, HelpRequester, PolicyConfig, PolicyRunner
from iil_robot.command.mux import Mux, MuxConfig, SourceConfig
from iil_robot.data.records import EpisodeEvent, Observation, StepRecord
from iil_robot.learners.configs import LearnerConfigs
from iil_robot.learners.methods import METHODS, method
from iil_robot.learners.trainer import Trainer, TrainerConfig
from iil_robot.sim.operator import SimOperator, SimOperatorConfig
from iil_robot.sim.tasks import FetchTaskConfig, FetchTaskEnv

__all__ = ["Checkpoint", "LoopConfig", "LoopResult", "dagger_beta", "run_loop"]

DAGGER_SCHEDULES: tuple[str, ...] = ("decay", "first", "linear")
HUMAN, POLICY = "spacemouse", "policy"
CAMERA = TrainerConfig().cameras  # the sim camera, under the learner's default (one) camera name


@dataclass(frozen=True)
class LoopConfig:
    """One (task, operator level, method, seed) run of the interactive loop."""

    task: str = "push"
    """Sim task: reach, push or pick_and_place."""
    level: float = 0.6
    """Operator quality in [0, 1] (demos and interventions)."""
    method: str = "rlif"
    """A method of ``learners/methods.py``: its learner, labelling and weighting, and how the operator takes part."""
    seed: int = 0
    """Seeds the env episodes, the operator, the networks and the sampling."""
    env_steps: int = 5000
    """Interactive env steps (the budget, equal for all methods; demos not counted)."""
    demo_episodes: int = 5
    """Initial demos: episodes the operator drives end to end."""
    pretrain_updates: int = 300
    """Warm-start updates on the demos before the policy first acts (``Trainer.warm_start``)."""
    refresh_every: int = 50
    """Env steps between learner rounds (then the acting policy is refreshed)."""
    updates_per_step: float | None = None
    """Learner updates per env step (an RLPD update is ``utd_ratio`` critic updates and one actor update); None: the
    method's budget (``Method.updates_per_step``, which the learner node holds itself to live)."""
    eval_every: int = 500
    """Env steps between evaluations of the policy alone."""
    eval_episodes: int = 10
    """Episodes per evaluation (env seeds fixed across evaluations and methods)."""
    operator: SimOperatorConfig = field(default_factory=SimOperatorConfig)
    """The operator (its ``level`` is replaced by ``level``)."""
    learners: LearnerConfigs = field(default_factory=LearnerConfigs)
    """Every learner's config (their seeds are replaced by ``seed``)."""
    dagger_schedule: str = "decay"
    """DAgger's β_i: ``decay`` p^(i-1), ``first`` 1 in round 1 else 0, ``linear`` 1 - (i-1)/dagger_rounds."""
    dagger_p: float = 0.5
    """DAgger ``decay``: p."""
    dagger_rounds: int = 10
    """DAgger ``linear``: rounds until β reaches 0."""
    dart_noise: float = 0.05
    """DART: σ (m/s per axis) of the noise on the operator's commands (``dart`` method)."""
    help: HelpConfig = field(default_factory=lambda: HelpConfig(enabled=True))
    """ThriftyDAgger's help requests (``thrifty`` method): signals, target rate alpha, hand-back."""
    image_size: int = 0
    """Camera policies: side (px) of the sim camera's image rendered every tick, which the policy acts on and the
    learner pairs with the step records by stamp (as the nodes do); 0 = state only. Not for pvp and haco."""

    @property
    def budget(self) -> float:
        """Learner updates per env step in this run."""
        return method(self.method).updates_per_step if self.updates_per_step is None else self.updates_per_step

    def __post_init__(self) -> None:
        if self.image_size and (self.image_size < 17 or not method(self.method).images):
            raise ValueError(f"image_size {self.image_size}: camera policies need a side >= 17 px and one of "
                             f"{[m.name for m in METHODS.values() if m.images]}")
        if self.env_steps < 1 or self.refresh_every < 1 or self.eval_every < 1 or self.eval_episodes < 1:
            raise ValueError("env_steps, refresh_every, eval_every and eval_episodes must be >= 1")
        if (self.updates_per_step or 0) < 0 or self.pretrain_updates < 0 or self.demo_episodes < 1:
            raise ValueError("updates_per_step and pretrain_updates must be >= 0, demo_episodes >= 1")
        if self.dagger_schedule not in DAGGER_SCHEDULES or not 0.0 <= self.dagger_p <= 1.0 or self.dagger_rounds < 1:
            raise ValueError(f"dagger_schedule must be one of {DAGGER_SCHEDULES}, dagger_p in [0, 1], dagger_rounds >= 1")
        if self.dart_noise < 0:
            raise ValueError("dart_noise must be >= 0")


def dagger_beta(schedule: str, round_index: int, p: float = 0.5, rounds: int = 10) -> float:
    """DAgger's mixing coefficient β_i for round i = 1, 2, ... (Ross et al. 2011): the probability that
    the operator, not the policy, drives a tick; every tick is labelled with the operator's command."""
    if round_index < 1:
        raise ValueError(f"rounds count from 1, got {round_index}")
    if schedule == "decay":
        return p ** (round_index - 1)
    if schedule == "first":
        return 1.0 if round_index == 1 else 0.0
    if schedule == "linear":
        return max(0.0, 1.0 - (round_index - 1) / rounds)
    raise ValueError(f"unknown DAgger schedule {schedule!r}; choose one of {DAGGER_SCHEDULES}")


@dataclass(frozen=True)
class Checkpoint:
    """One evaluation of the policy alone."""

    env_steps: int
    """Interactive env steps done before it."""
    success: float
    """Success rate over the evaluation episodes."""


@dataclass(frozen=True)
class LoopResult:
    config: LoopConfig
    checkpoints: list[Checkpoint]
    """The learning curve (first at 0 env steps, last at the budget)."""
    step_interventions: list[bool]
    """Per interactive env step: whether the operator was in control."""
    episode_successes: list[bool]
    """Per interactive episode (with the operator): its outcome."""
    demo_success: float
    """Success rate of the initial demos."""
    updates: int
    seconds: float
    takeovers: int = 0
    """Interactive intervention onsets (human burden: how often the operator had to take over)."""
    requests_raised: int | None = None
    """Robot-gated methods: help requests the policy raised (None for the others)."""
    requests_needed: int | None = None
    """Robot-gated methods: requests after which the operator judged the policy's proposal bad."""
    critic: dict[str, float] | None = None
    """RLIF: ``RLPDLearner.operator_agreement`` at the end, on a sample of up to 1024 prior-buffer rows (None for the others)."""


def run_loop(config: LoopConfig, progress: Callable[[str], None] | None = None) -> LoopResult:
    """Run the loop described in the module docstring."""
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    env = FetchTaskEnv(FetchTaskConfig(task=config.task))
    try:
        session = _Session(config, env)
        demo_success = session.demos()
        session.warm_start(config.pretrain_updates)
        session.refresh()
        curve = [Checkpoint(0, session.evaluate())]
        episode = 0
        while session.steps < config.env_steps:
            session.episode(seed=config.seed * 100_000 + 10_000 + episode)
            episode += 1
            if session.steps // config.eval_every > curve[-1].env_steps // config.eval_every or session.steps >= config.env_steps:
                curve.append(Checkpoint(session.steps, session.evaluate()))
                if progress:
                    progress(f"{config.task} {config.level} {config.method} seed {config.seed}: "
                             f"{session.steps} steps, success {curve[-1].success:.2f}")
        gate = session.help.gate if session.help is not None else None
        return LoopResult(config, curve, session.interventions, session.outcomes, demo_success,
                          session.trainer.status()["updates"], time.perf_counter() - start, session.takeovers,
                          None if session.help is None else (gate.raised if gate else 0),
                          None if session.help is None else (gate.needed if gate else 0),
                          session.critic_diagnostics())
    finally:
        env.close()


class _Session:
    """The wiring: env, operator, mux, policy runner and trainer on one simulated clock."""

    def __init__(self, config: LoopConfig, env: FetchTaskEnv) -> None:
        self.config, self.env = config, env
        self.spec = f"fetch_{config.task}/v1"
        self.period = 1.0 / env.config.control_rate_hz
        self.method = method(config.method)
        self.trainer = Trainer(
            TrainerConfig(method=config.method, observation_spec=self.spec, min_transitions=1, device="cpu", seed=config.seed,
                          image_width=config.image_size, image_height=config.image_size,
                          size="gpu"),  # the sizes of config.learners, on any device
            config.learners.seeded(config.seed),
        )
        self.runner = PolicyRunner(PolicyConfig(observation_spec=self.spec, algorithms=self.method.algorithm,
                                                cameras=CAMERA if config.image_size else ""))
        self.camera = RecentFrames()  # the sim camera's newest frames, paired with each observation by stamp
        self.operator_config = replace(config.operator, level=config.level)
        if self.method.operator_noise:
            self.operator_config = replace(self.operator_config, dart_noise=config.dart_noise)
        # a human-gated method keeps the configured intervention model; the others are the sim operator's models
        model = self.operator_config.model if self.method.operator == "human_gated" else self.method.operator
        interactive = replace(self.operator_config, model=model)
        self.operator = SimOperator(interactive, env.task, np.random.default_rng(config.seed))
        self.help = HelpRequester(config.help) if self.method.operator == "robot_gated" else None
        """ThriftyDAgger's requester (``thrifty``); it asks during the interactive episodes only."""
        self.rounds = 1
        """DAgger's round i: 1 + the policy refreshes of the interactive phase."""
        self.now = 0.0
        self.steps = 0
        self._since_round = 0
        self.interventions: list[bool] = []
        self.takeovers = 0
        self.outcomes: list[bool] = []

    # -- phases ------------------------------------------------------------------------------

    def demos(self) -> float:
        demo = SimOperator(replace(self.operator_config, model="demo"), self.env.task,
                           np.random.default_rng(self.config.seed + 7919))
        wins = [self._run(demo, seed=self.config.seed * 100_000 + i, learn=True)[0] for i in range(self.config.demo_episodes)]
        return sum(wins) / len(wins)

    def episode(self, seed: int) -> None:
        if self.method.operator == "dagger":
            c = self.config
            self.operator.config = replace(self.operator.config,
                                           mixing=dagger_beta(c.dagger_schedule, self.rounds, c.dagger_p, c.dagger_rounds))
        success, operated = self._run(self.operator, seed, learn=self.method.interactive, requester=self.help)
        self.outcomes.append(success)
        self.takeovers += sum(now and not before for before, now in zip([False, *operated], operated))
        for in_control in operated:
            self.interventions.append(in_control)
            self.steps += 1
            self._since_round += 1
            if self._since_round >= self.config.refresh_every:
                self._since_round = 0
                if self.method.interactive:
                    self.train(round(self.config.budget * self.config.refresh_every))
                    self.refresh()
                    self.rounds += 1

    def evaluate(self) -> float:
        never = SimOperator(replace(self.operator_config, model="never"), self.env.task, np.random.default_rng(0))
        seeds = [1_000_000 + i for i in range(self.config.eval_episodes)]  # the same for every method and checkpoint
        return sum(self._run(never, seed, learn=False)[0] for seed in seeds) / len(seeds)

    def train(self, updates: int) -> None:
        if not self.trainer.ready():
            return
        for _ in range(updates):
            self.trainer.update()

    def warm_start(self, updates: int) -> None:
        if not self.trainer.ready():
            return
        self.trainer.warm_start(updates)

    def critic_diagnostics(self) -> dict[str, float] | None:
        learner, prior = self.trainer.learner, self.trainer.prior
        if not hasattr(learner, "operator_agreement") or prior is None or len(prior) == 0:
            return None
        return learner.operator_agreement(prior.sample(min(len(prior), 1024), np.random.default_rng(0), learner.device))

    def refresh(self) -> None:
        if self.trainer.ready():
            self.runner.install(self.runner.prepare(self.trainer.export()))

    # -- one episode through the mux ---------------------------------------------------------

    def _run(self, operator: SimOperator, seed: int, learn: bool,
             requester: HelpRequester | None = None) -> tuple[bool, list[bool]]:
        """One episode; returns its success and, per tick, whether the operator was in control. With ``requester``
        the policy may ask for help (ThriftyDAgger) and the operator is told so.

        The episode's records are given to the trainer only at its end (the episode is learned
        from after it closes, as the live labeller would once its events are due): updates happen
        between episodes, so a round due mid-episode runs after it (see ``episode``)."""
        obs, _ = self.env.reset(seed=seed)
        operator.reset()
        if requester is not None:
            requester.reset()
        mux = Mux(_mux_config(self.env.config.control_rate_hz))
        self.now += 1.0  # a gap between episodes
        events = [EpisodeEvent("start", "sim", self.now - self.period / 2)]
        records: list[StepRecord] = []
        frames: list[CameraFrame] = []
        operated: list[bool] = []
        while True:
            self.now += self.period
            frame = self._frame()
            if frame is not None:
                self.camera.add(frame)
                if learn:
                    frames.append(frame)
            proposal, why = self.runner.act(Observation(tuple(map(float, obs)), self.spec, self.now), self.now,
                                            {CAMERA: self.camera} if frame is not None else None)
            if proposal is None:
                raise RuntimeError(f"the policy proposed nothing: {why}")
            policy_action = np.array([*proposal.action[:3], proposal.action[6]])
            if requester is not None:
                requester.on_proposal(proposal)
            decision = operator.act(obs, policy_action, help_requested=requester is not None and requester.requesting)
            if requester is not None and decision.onset and decision.needed is not None and requester.gate is not None:
                requester.gate.judge(decision.needed)
            mux.human_engaged(HUMAN, decision.in_control, self.now)
            if decision.in_control:
                vx, vy, vz, closure = (float(v) for v in decision.action)
                mux.human_command(HUMAN, (vx, vy, vz, 0.0, 0.0, 0.0), self.now)
                mux.human_gripper(HUMAN, closure, self.now)
            elif decision.label is not None:  # DAgger: the operator's command, recorded as human_action, not driving
                vx, vy, vz, closure = (float(v) for v in decision.label)
                mux.human_command(HUMAN, (vx, vy, vz, 0.0, 0.0, 0.0), self.now)
                mux.human_gripper(HUMAN, closure, self.now)
            mux.proposal(POLICY, proposal, self.now)
            out = mux.update(self.now, self.now, proposal_arrived=True)
            assert out.step is not None and out.command is not None, "a fresh proposal always ticks the mux"
            records.append(out.step)
            operated.append(out.step.intervention)
            if requester is not None:
                human_risk = self.runner.risk(out.step.observation, out.step.human_action) if out.step.intervention else None
                requester.on_step(out.step, human_risk)
            command = np.array([*out.command.twist[:3], out.command.gripper])
            if decision.dart_noise is not None and out.step.source == "human":
                command[:3] += decision.dart_noise  # DART: the arm executes the perturbed command, the record keeps the clean one
            obs, _, terminated, truncated, info = self.env.step(command)
            if terminated or truncated:
                success = bool(info["is_success"])
                break
        if learn:
            events.append(EpisodeEvent("success" if terminated else "timeout", "sim", self.now + self.period / 2))
            self.trainer.add_event(events[0])
            for frame in frames:  # the camera's frames first, as they reach the learner node before the steps naming them
                self.trainer.add_frame(CAMERA, frame.stamp, frame.rgb)
            self.trainer.add_records(records)
            self.trainer.add_event(events[1])
        return success, operated

    def _frame(self) -> CameraFrame | None:
        """The sim camera's view at this tick (camera policies), stamped like the observation."""
        size = self.config.image_size
        return CameraFrame(self.env.render_image(size, size), self.now) if size else None


def _mux_config(rate: float) -> MuxConfig:
    """The shipped mux parameters (``config/mux.yaml``): operator over policy, default limits."""
    return MuxConfig(sources=(
        SourceConfig(HUMAN, "human", "human/cmd", 0.1, 100, "human/engaged", "human/gripper"),
        SourceConfig(POLICY, "policy", "policy/proposal", 0.25, 10),
    ), rate=rate)
