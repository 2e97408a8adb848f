"""The acting side of the policy node, without ROS: weights in, proposals out.

``PolicyRunner`` keeps the active policy, validates every weights message off the control
thread (``prepare``) and installs a validated one between ticks (``install``), so the tick
never sees a half-swapped policy; a refused message leaves the old policy acting. ``act`` turns
the latest observation into a proposal, or into nothing when the observation is stale or does
not fit the policy (the mux then holds the arm). With ``action.frame: tool`` the policy's action is in
the end effector's frame and ``act`` rotates it into the command frame by the orientation in the same
observation (``iil_robot.data.tool_frame``); an observation without that orientation gets no proposal.

``HelpRequester`` is the optional robot-gated help request (``help_requests.HelpGate``,
ThriftyDAgger): on the ensemble's doubt (novelty) and, with weights that carry the goal-probability
critic Q_G (HG-DAgger's ``goal_critic``), on the risk 1 - Q_G(s, pi(s)); without Q_G it is the
EnsembleDAgger case (novelty only).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from iil_robot.acting.cameras import RecentFrames, pair_frames
from iil_robot.acting.help_requests import HelpDecision, HelpGate, HelpRequestConfig, Thresholds, fit_thresholds
from iil_robot.data.actions import ActionConfig, ActionSpace
from iil_robot.data.camera import CameraError
from iil_robot.data.frames import camera_names, frame_chw
from iil_robot.data.records import ACTION_SIZE, Observation, Proposal, StepRecord, layout_difference
from iil_robot.data.tool_frame import from_tool, orientation_indices, rotation_at, to_tool
from iil_robot.learners.methods import ALGORITHMS
from iil_robot.learners.networks import Policy
from iil_robot.learners.weights import (
    MAX_PARAMETERS,
    Expected,
    WeightsError,
    WeightsMeta,
    decode_policy,
    read_meta,
    screen,
    warm_up,
)

FALLBACKS = ("hold", "weights")


@dataclass(frozen=True)
class PolicyConfig:
    """The policy node: control rate, staleness, what acts before any weights."""

    rate: float = 20.0
    """Control rate (Hz): one proposal per tick."""
    act_on_observation: bool = False
    """Propose once per new observation instead of at ``rate`` (lockstep simulation: the loop runs
    as fast as the graph answers)."""
    observation_timeout: float = 0.2
    """An observation older than this (s, by its stamp) produces no proposal."""
    observation_spec: str = ""
    """Observation spec this arm publishes; weights for another are refused. Empty = take it from the observations."""
    algorithms: str = ",".join(ALGORITHMS)
    """Comma-separated algorithms whose weights this node accepts."""
    fallback: str = "hold"
    """Before any weights: ``hold`` (propose zero velocity) or ``weights`` (act with ``fallback_weights``, e.g. cloned
    from demos)."""
    fallback_weights: str = ""
    """Safetensors weights file for ``fallback: weights``."""
    fallback_gripper: float = 0.0
    """Gripper closure proposed while holding."""
    num_threads: int = 1
    """Torch CPU threads for inference."""
    cameras: str = ""
    """Comma-separated names of the cameras whose frames this policy takes (``camera/<name>/image_raw``, as the camera
    node publishes them); weights for another camera set are refused. Empty = none."""
    camera_timeout: float = 0.0
    """A camera whose frame paired with the observation is older than it by more than this (s, by stamps) makes the
    observation stale: no proposal, the mux holds. 0 = no camera needed (camera weights then use
    ``observation_timeout``)."""
    camera_tolerance: float = 0.02
    """A frame up to this much (s) newer than the observation still pairs with it (clock offsets, capture delay)."""
    max_parameters: int = MAX_PARAMETERS
    """Largest network (parameters, all tensors) accepted in a weights message; one that claims more is refused at once."""

    def __post_init__(self) -> None:
        if self.fallback not in FALLBACKS:
            raise ValueError(f"fallback {self.fallback!r} must be one of {FALLBACKS}")
        if self.fallback == "weights" and not self.fallback_weights:
            raise ValueError("fallback 'weights' needs fallback_weights: a .safetensors file (e.g. cloned from demos)")
        camera_names(self.cameras)  # raises on a camera named twice
        unknown = set(self.accepted_algorithms) - set(ALGORITHMS)
        if unknown:
            raise ValueError(f"algorithms {sorted(unknown)} are unknown; choose from {sorted(ALGORITHMS)}")

    @property
    def accepted_algorithms(self) -> tuple[str, ...]:
        return tuple(a.strip() for a in self.algorithms.split(",") if a.strip())

    @property
    def camera_names(self) -> tuple[str, ...]:
        return camera_names(self.cameras)


@dataclass(frozen=True)
class Active:
    meta: WeightsMeta | None
    policy: Policy | None
    version: int


class PolicyRunner:
    def __init__(self, config: PolicyConfig, action: ActionConfig = ActionConfig()) -> None:
        """``action``: the action space and frame this node acts in (weights of others are refused) and its bounds."""
        self.config, self.action = config, action
        self.orientation: tuple[int, ...] = ()  # frame tool: the quaternion's positions in the observation layout below
        self._oriented_layout: tuple[str, ...] | None = None
        self.active = Active(None, None, 0)
        self.observation_spec: str | None = config.observation_spec or None
        self.obs_dim: int | None = None  # learned from the observations of that spec
        self.observation_fields: tuple[str, ...] = ()  # their layout, when the observer names it
        warm_up()  # the size checks build networks on the meta device: its first use is slow, so not on a tick's time
        if config.fallback == "weights":
            meta, policy = decode_policy(Path(config.fallback_weights).read_bytes(), self._expected())
            self.active = Active(meta, policy, 0)  # version 0: the fallback, before any learned weights

    def _expected(self) -> Expected:
        return Expected(observation_spec=self.observation_spec, obs_dim=self.obs_dim, algorithms=self.config.accepted_algorithms,
                        observation_fields=self.observation_fields, max_parameters=self.config.max_parameters,
                        cameras=self.config.camera_names, action_space=self.action.space, action_frame=self.action.frame)

    @property
    def version(self) -> int:
        return self.active.version

    def screen(self, data: bytes) -> WeightsMeta:
        """The cheap checks on arrival (no tensors read, nothing built): a message that fails them is dropped at once,
        so it cannot displace a good one waiting for the full check. Raises WeightsError."""
        meta = screen(data, self._expected())
        if meta.policy_version <= self.active.version:
            raise WeightsError(f"weights version {meta.policy_version} is not newer than the active version "
                               f"{self.active.version}")
        return meta

    def prepare(self, data: bytes) -> Active:
        """Validate a weights message and build its policy (any thread). Raises WeightsError."""
        version = read_meta(data).policy_version  # an old version is refused before anything is built
        if version <= self.active.version:
            raise WeightsError(f"weights version {version} is not newer than the active version {self.active.version}")
        meta, policy = decode_policy(data, self._expected())
        return Active(meta, policy, meta.policy_version)

    def install(self, candidate: Active) -> None:
        """Make a prepared policy the active one (call between ticks, once an observation has arrived: weights checked
        before it could not be checked against the observations' size and layout). Raises WeightsError when they do not
        fit the observations this node receives, or are not newer than the active ones."""
        if candidate.version <= self.active.version:
            raise WeightsError(f"weights version {candidate.version} is not newer than the active version {self.active.version}")
        misfit = self.misfit(candidate.meta)
        if misfit:
            raise WeightsError(misfit)
        self.active = candidate

    def misfit(self, meta: WeightsMeta | None) -> str:
        """Why weights cannot act on the observations this node receives (their spec, size and layout), or ""."""
        if meta is None or self.obs_dim is None:
            return ""
        if meta.observation_spec != self.observation_spec or meta.obs_dim != self.obs_dim:
            return (f"weights version {meta.policy_version} were trained on observation spec {meta.observation_spec!r} "
                    f"({meta.obs_dim} values), this arm publishes {self.observation_spec!r} ({self.obs_dim} values)")
        difference = layout_difference(meta.observation_fields, self.observation_fields)
        if meta.observation_fields and self.observation_fields and difference:
            return (f"weights version {meta.policy_version} were trained on another observation layout: this arm's has "
                    f"{difference}")
        return ""

    def act(self, observation: Observation | None, now: float,
            cameras: dict[str, RecentFrames] | None = None) -> tuple[Proposal | None, str]:
        """A proposal for the latest observation (and each camera's frame paired with it by stamp), or (None, why not)."""
        if observation is None:
            return None, "no observation yet"
        age = now - observation.stamp
        if age > self.config.observation_timeout:
            return None, f"observation is stale ({age:.3f} s old > {self.config.observation_timeout} s)"
        active = self.active  # one read: a swap between ticks never mixes two policies
        image = active.meta.image if active.meta is not None else ()
        c = self.config
        frames, missing = pair_frames({name: (cameras or {}).get(name, RecentFrames()) for name in c.camera_names},
                                      observation.stamp, c.camera_tolerance, c.camera_timeout or c.observation_timeout)
        if missing and (c.camera_timeout > 0 or image):
            return None, "holding: " + "; ".join(f"camera {name} {why}" for name, why in missing.items())
        # the frames' stamps go into the proposal (and the step record): the learner pairs images by them
        image_stamps = {name: frame.stamp for name, frame in frames.items()} or None
        rotation = None
        if self.action.frame == "tool":  # before the layout is taken: one without the orientation never becomes expected
            rotation, why_not = self._tool_rotation(observation)
            if rotation is None:
                return None, why_not
        if self.observation_spec is None:
            self.observation_spec = observation.spec
        if self.obs_dim is None and observation.spec == self.observation_spec:
            self.obs_dim, self.observation_fields = len(observation.values), observation.fields
        if active.policy is None:
            action = (0.0,) * (ACTION_SIZE - 1) + (self.config.fallback_gripper,)
            return Proposal(action, observation.values, 0, observation.stamp, now, image_stamps=image_stamps), ""
        meta = active.meta
        if observation.spec != meta.observation_spec or len(observation.values) != meta.obs_dim:
            return None, (f"observation spec {observation.spec!r} ({len(observation.values)} values) does not match the "
                          f"policy's {meta.observation_spec!r} ({meta.obs_dim})")
        difference = layout_difference(meta.observation_fields, observation.fields)
        if meta.observation_fields and observation.fields and difference:
            return None, f"the observation's layout differs from the policy's: it has {difference}"
        try:
            chw = np.concatenate([frame_chw(frames[name].rgb, (3, *image[1:])) for name in meta.cameras]) if image else None
        except CameraError as err:
            return None, f"camera frame unusable: {err}"
        with torch.inference_mode():
            pixels = torch.from_numpy(chw)[None] if image else None
            state = torch.tensor([observation.values], dtype=torch.float32)
            action, uncertainty = active.policy(state, pixels)
            risk = None
            if active.policy.goal_critic is not None:
                risk = 1.0 - float(active.policy.goal_probability(state, action)[0])
        values = action[0].tolist()
        if not all(math.isfinite(v) for v in values):
            return None, "the policy produced a non-finite action"
        action = to_record_action(values, meta.action_space)
        if rotation is not None:
            action = tuple(from_tool(np.asarray(action), rotation).tolist())
        return Proposal(action, observation.values, active.version, observation.stamp, now,
                        None if uncertainty is None else float(uncertainty[0]), risk, image_stamps), ""

    def _tool_rotation(self, observation: Observation) -> tuple[np.ndarray | None, str]:
        """The end effector's orientation in ``observation`` (tool -> command frame), or (None, why not)."""
        if observation.fields != self._oriented_layout:
            try:
                self.orientation = orientation_indices(observation.fields, self.action.orientation_field)
            except ValueError as err:
                return None, f"holding: {err} (on the policy node)"
            self._oriented_layout = observation.fields
        rotation = rotation_at(observation.values, self.orientation)
        if rotation is None:
            quaternion = [observation.values[i] for i in self.orientation]
            return None, f"holding: the end effector's orientation {self.action.orientation_field} {quaternion} is no rotation"
        return rotation, ""

    def risk(self, observation: tuple[float, ...] | None, action: tuple[float, ...] | None) -> float | None:
        """1 - Q_G(s, a) of a record action (e.g. the operator's command, in the command frame) under the active
        weights; None without a goal critic, or when the observation does not fit them."""
        active = self.active
        if active.policy is None or active.policy.goal_critic is None or observation is None or action is None \
                or len(observation) != active.meta.obs_dim:
            return None
        if self.action.frame == "tool":  # Q_G takes the tool frame's action
            rotation = rotation_at(observation, self.orientation)
            if rotation is None:
                return None
            action = tuple(to_tool(np.asarray(action), rotation).tolist())
        picked = [action[i] for i in active.meta.action_space.indices]
        with torch.inference_mode():
            q = active.policy.goal_probability(torch.tensor([observation], dtype=torch.float32), torch.tensor([picked]))
        return 1.0 - float(q[0])


def to_record_action(values: list[float], space: ActionSpace) -> tuple[float, ...]:
    """An action of ``space`` -> the 7-value record action (zeros for the values the space leaves out, the gripper
    in [0, 1]); e.g. translation (vx, vy, vz, gripper) -> (vx, vy, vz, 0, 0, 0, gripper)."""
    action = list(space.expand(values))
    action[-1] = min(1.0, max(0.0, action[-1]))
    return tuple(action)


def action_note(meta: WeightsMeta) -> str:
    """What a log should say about how the weights' action space was read: weights written before action spaces
    name no action fields and are read by their action spec alone; empty for current weights."""
    if meta.action_fields:
        return ""
    space = meta.action_space
    return (f"weights version {meta.policy_version} name no action fields (written before action spaces): read as action "
            f"space {space.name!r} ({', '.join(space.fields)}) from their action spec {meta.action_spec!r}")


@dataclass(frozen=True)
class HelpConfig:
    """Robot-gated help requests (parameters ``help.*``): ThriftyDAgger's switch on the proposal's novelty
    (the ensemble's doubt) and risk (1 - Q_G, with weights that carry a goal critic)."""

    enabled: bool = False
    """Publish ``help/request``. Needs weights with an ensemble (HG-DAgger): others give no uncertainty."""
    use_novelty: bool = True
    """Ask when the ensemble disagrees (off: SafeDAgger-style, risk only)."""
    use_risk: bool = True
    """Ask when the goal looks unlikely, with weights that carry Q_G (off, or weights without Q_G: EnsembleDAgger)."""
    novelty_threshold: float = 0.0
    """Request help when the proposal's uncertainty (the ensemble's doubt) exceeds this; 0 = fit it to ``target_rate``."""
    risk_threshold: float = 0.0
    """Request help when the proposal's risk 1 - Q_G(s, pi(s)) exceeds this; 0 = fit it to ``target_rate``."""
    target_rate: float = 0.1
    """Fitted thresholds: share of the robot's recent ticks on which it may ask (the operator's budget; split
    evenly between novelty and risk when both are used)."""
    recent: int = 2000
    """Recent ticks the fitted thresholds are computed on."""
    min_ticks: int = 100
    """Robot ticks with a signal before a fitted threshold is used (no request before)."""
    refit_every: int = 20
    """Refit the thresholds every this many ticks (a quantile over up to ``recent`` values: not worth every tick)."""
    handback_disagreement: float = 0.01
    """Hand back when ||pi(s) - a_h||^2 (over the action space's values: m/s, rad/s, gripper) is at most this;
    fitted mode: until the operator has driven, after that the mean disagreement on their recent steps
    (ThriftyDAgger's delta_r)."""
    publish_period: float = 1.0
    """Period (s) of the repeated ``help/request`` and its diagnostics (also sent on every change)."""

    def __post_init__(self) -> None:
        if self.novelty_threshold < 0 or self.risk_threshold < 0 or self.handback_disagreement < 0:
            raise ValueError("help.novelty_threshold, help.risk_threshold and help.handback_disagreement must be >= 0")
        if self.refit_every < 1 or self.min_ticks < 1:
            raise ValueError(f"help.refit_every {self.refit_every} and help.min_ticks {self.min_ticks} must be >= 1")
        # checks target_rate, recent, and that at least one signal is on
        HelpRequestConfig(target_rate=self.target_rate, recent=self.recent, use_novelty=self.use_novelty, use_risk=self.use_risk)


class HelpRequester:
    """Feeds ``HelpGate`` from the policy's proposals (novelty, risk) and the mux's step records (the operator's
    action and its risk, for the hand-back). One per policy node, or per headless loop."""

    def __init__(self, config: HelpConfig, action_indices: tuple[int, ...] = ActionConfig().command_indices) -> None:
        """``action_indices``: the values of the record action the policy proposes (``ActionConfig.command_indices``),
        which the operator's command is compared on for the hand-back."""
        self.config, self.action_indices = config, action_indices
        self.novelties: deque[float] = deque(maxlen=config.recent)  # at robot-driven ticks
        self.risks: deque[float] = deque(maxlen=config.recent)
        self.disagreements: deque[float] = deque(maxlen=config.recent)  # at the operator's ticks
        self.disagreement: float | None = None  # on the latest step record, None unless the operator drove
        self.human_risk: float | None = None  # 1 - Q_G(s, a_h) on that step, None without Q_G
        self.novelty: float | None = None
        self.risk: float | None = None
        self.reason = ""
        self.gate: HelpGate | None = None
        self._signals: tuple[bool, bool] | None = None  # (novelty, risk) the thresholds were fitted for
        self._since_fit = 0

    @property
    def requesting(self) -> bool:
        return self.gate is not None and self.gate.requesting

    def reset(self) -> None:
        """A new episode: no standing request, no operator command pending (the recent data stay)."""
        if self.gate is not None:
            self.gate.requesting = False
        self.disagreement = self.human_risk = None

    def on_step(self, record: StepRecord, human_risk: float | None = None) -> HelpDecision | None:
        """Each mux tick: while the operator drives, how far the policy's proposal is from their command and
        (with Q_G) the risk of their command. Returns the withdrawal when the operator let go while asked."""
        self.disagreement, self.human_risk = None, None
        if record.intervention and record.policy_action is not None and record.human_action is not None:
            self.disagreement = sum((record.policy_action[i] - record.human_action[i]) ** 2 for i in self.action_indices)
            self.disagreements.append(self.disagreement)
            self.human_risk = human_risk
        if record.offset and self.gate is not None:
            decision = self.gate.withdraw()
            if decision is not None:
                self.reason = decision.reason
            return decision
        return None

    def on_proposal(self, proposal: Proposal) -> HelpDecision | None:
        """One control tick; None while undecided (no signal, or too few ticks to fit a threshold)."""
        c = self.config
        novelty = _finite(proposal.uncertainty) if c.use_novelty else None
        risk = _finite(proposal.risk) if c.use_risk else None
        if novelty is None and risk is None:
            return None
        self.novelty, self.risk = novelty, risk
        if not self.requesting:
            if novelty is not None:
                self.novelties.append(novelty)
            if risk is not None:
                self.risks.append(risk)
        thresholds = self._thresholds(novelty is not None, risk is not None)
        if thresholds is None:
            return None
        if self.gate is None:
            self.gate = HelpGate(thresholds)
        self.gate.thresholds = thresholds
        disagreement, human_risk = self.disagreement, self.human_risk
        self.disagreement = self.human_risk = None  # one operator command answers one tick
        if disagreement is not None and risk is None:
            human_risk = 0.0  # no Q_G: the hand-back rests on agreement alone
        decision = self.gate.step(-math.inf if novelty is None else novelty, -math.inf if risk is None else risk,
                                  disagreement, human_risk)
        if decision.changed:
            self.reason = decision.reason
        return decision

    def _thresholds(self, novelty: bool, risk: bool) -> Thresholds | None:
        """Fixed thresholds where configured, the others fitted on the recent ticks (refit every ``refit_every``)."""
        c = self.config
        fixed_novelty, fixed_risk = c.novelty_threshold > 0, c.risk_threshold > 0
        fit_novelty, fit_risk = novelty and not fixed_novelty, risk and not fixed_risk
        if not (fit_novelty or fit_risk):
            return Thresholds(c.novelty_threshold if novelty else math.inf, c.risk_threshold if risk else math.inf,
                              c.handback_disagreement, c.risk_threshold if risk else math.inf)
        if (fit_novelty and len(self.novelties) < c.min_ticks) or (fit_risk and len(self.risks) < c.min_ticks):
            return None
        current = self.gate.thresholds if self.gate is not None else None
        if current is None or self._signals != (novelty, risk) or self._since_fit >= c.refit_every:
            current = fit_thresholds(self.novelties, self.risks, self.disagreements or [c.handback_disagreement],
                                     HelpRequestConfig(c.target_rate, c.recent, use_novelty=novelty, use_risk=risk))
            self._signals, self._since_fit = (novelty, risk), 0
        self._since_fit += 1
        risk_threshold = c.risk_threshold if fixed_risk else current.risk
        return Thresholds(c.novelty_threshold if fixed_novelty else current.novelty, risk_threshold,
                          current.handback_disagreement, risk_threshold if risk else math.inf)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
