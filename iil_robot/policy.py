"""The acting side of the policy node, without ROS: weights in, proposals out.

``PolicyRunner`` keeps the active policy, validates every weights message off the control
thread (``prepare``) and installs a validated one between ticks (``install``), so the tick
never sees a half-swapped policy; a refused message leaves the old policy acting. ``act`` turns
the latest observation into a proposal, or into nothing when the observation is stale or does
not fit the policy (the mux then holds the arm).

``HelpRequester`` is the optional robot-gated help request (``help_requests.HelpGate``) on the
ensemble's doubt: the EnsembleDAgger case of ThriftyDAgger (novelty only; risk needs a
goal-probability critic Q_G, which no learner trains yet).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .camera import CameraError
from .frames import frame_chw
from .help_requests import HelpDecision, HelpGate, HelpRequestConfig, Thresholds, fit_thresholds
from .learners.networks import Policy
from .learners.weights import ALGORITHMS, Expected, WeightsError, WeightsMeta, decode_policy
from .records import ACTION_SIZE, Observation, Proposal, StepRecord
from .transitions import TRANSLATION_GRIPPER

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
    algorithms: str = "rlpd,hgdagger,pvp,haco"
    """Comma-separated algorithms whose weights this node accepts."""
    fallback: str = "hold"
    """Before any weights: ``hold`` (propose zero velocity) or ``weights`` (act with ``fallback_weights``, e.g. cloned from demos)."""
    fallback_weights: str = ""
    """Safetensors weights file for ``fallback: weights``."""
    fallback_gripper: float = 0.0
    """Gripper closure proposed while holding."""
    num_threads: int = 1
    """Torch CPU threads for inference."""
    camera_timeout: float = 0.0
    """A camera frame (``camera/image_raw``) older than this (s, by its stamp) makes the observation stale: no
    proposal, the mux holds. 0 = no camera needed (a camera policy's weights then use ``observation_timeout``)."""

    def __post_init__(self) -> None:
        if self.fallback not in FALLBACKS:
            raise ValueError(f"fallback {self.fallback!r} must be one of {FALLBACKS}")
        if self.fallback == "weights" and not self.fallback_weights:
            raise ValueError("fallback 'weights' needs fallback_weights: a .safetensors file (e.g. cloned from demos)")
        unknown = set(self.accepted_algorithms) - set(ALGORITHMS)
        if unknown:
            raise ValueError(f"algorithms {sorted(unknown)} are unknown; choose from {ALGORITHMS}")

    @property
    def accepted_algorithms(self) -> tuple[str, ...]:
        return tuple(a.strip() for a in self.algorithms.split(",") if a.strip())


@dataclass(frozen=True)
class CameraFrame:
    """The newest camera image as the policy takes it."""

    rgb: np.ndarray
    """(height, width, 3) uint8."""
    stamp: float
    """Capture time (s), node clock."""


@dataclass(frozen=True)
class Active:
    meta: WeightsMeta | None
    policy: Policy | None
    version: int


class PolicyRunner:
    def __init__(self, config: PolicyConfig) -> None:
        self.config = config
        self.active = Active(None, None, 0)
        self.observation_spec: str | None = config.observation_spec or None
        self.obs_dim: int | None = None  # learned from the observations of that spec
        if config.fallback == "weights":
            meta, policy = decode_policy(Path(config.fallback_weights).read_bytes(), self._expected())
            self.active = Active(meta, policy, 0)  # version 0: the fallback, before any learned weights

    def _expected(self) -> Expected:
        return Expected(observation_spec=self.observation_spec, obs_dim=self.obs_dim, algorithms=self.config.accepted_algorithms)

    @property
    def version(self) -> int:
        return self.active.version

    def prepare(self, data: bytes) -> Active:
        """Validate a weights message and build its policy (any thread). Raises WeightsError."""
        meta, policy = decode_policy(data, self._expected())
        if meta.policy_version <= self.active.version:
            raise WeightsError(f"weights version {meta.policy_version} is not newer than the active version {self.active.version}")
        return Active(meta, policy, meta.policy_version)

    def install(self, candidate: Active) -> None:
        """Make a prepared policy the active one (call between ticks)."""
        if candidate.version <= self.active.version:
            raise WeightsError(f"weights version {candidate.version} is not newer than the active version {self.active.version}")
        self.active = candidate

    def act(self, observation: Observation | None, now: float, frame: CameraFrame | None = None) -> tuple[Proposal | None, str]:
        """A proposal for the latest observation (and camera frame), or (None, why not)."""
        if observation is None:
            return None, "no observation yet"
        age = now - observation.stamp
        if age > self.config.observation_timeout:
            return None, f"observation is stale ({age:.3f} s old > {self.config.observation_timeout} s)"
        active = self.active  # one read: a swap between ticks never mixes two policies
        image = active.meta.image if active.meta is not None else ()
        timeout = self.config.camera_timeout or self.config.observation_timeout
        fresh = frame is not None and now - frame.stamp <= timeout
        if self.config.camera_timeout > 0 or image:
            if frame is None:
                return None, "no camera frame yet: the observation is stale (is the camera node running?)"
            if not fresh:
                return None, f"camera frame is stale ({now - frame.stamp:.3f} s old > {timeout} s): holding"
        # the frame's stamp goes into the proposal (and the step record): the learner pairs images by it
        image_stamp = frame.stamp if fresh else None
        if self.observation_spec is None:
            self.observation_spec = observation.spec
        if self.obs_dim is None and observation.spec == self.observation_spec:
            self.obs_dim = len(observation.values)
        if active.policy is None:
            action = (0.0,) * (ACTION_SIZE - 1) + (self.config.fallback_gripper,)
            return Proposal(action, observation.values, 0, observation.stamp, now, image_stamp=image_stamp), ""
        meta = active.meta
        if observation.spec != meta.observation_spec or len(observation.values) != meta.obs_dim:
            return None, (f"observation spec {observation.spec!r} ({len(observation.values)} values) does not match the "
                          f"policy's {meta.observation_spec!r} ({meta.obs_dim})")
        try:
            chw = frame_chw(frame.rgb, image) if image else None
        except CameraError as err:
            return None, f"camera frame unusable: {err}"
        with torch.inference_mode():
            pixels = torch.from_numpy(chw)[None] if image else None
            action, uncertainty = active.policy(torch.tensor([observation.values], dtype=torch.float32), pixels)
        values = action[0].tolist()
        if not all(math.isfinite(v) for v in values):
            return None, "the policy produced a non-finite action"
        return Proposal(to_record_action(values), observation.values, active.version, observation.stamp, now,
                        None if uncertainty is None else float(uncertainty[0]), image_stamp), ""


def to_record_action(values: list[float]) -> tuple[float, ...]:
    """Learner action (vx, vy, vz, gripper) -> record action (vx, vy, vz, 0, 0, 0, gripper in [0, 1])."""
    action = [0.0] * ACTION_SIZE
    for index, value in zip(TRANSLATION_GRIPPER, values):
        action[index] = value
    action[-1] = min(1.0, max(0.0, action[-1]))
    return tuple(action)


@dataclass(frozen=True)
class HelpConfig:
    """Robot-gated help requests (parameters ``help.*``): the policy asks for the operator when its
    ensemble disagrees (EnsembleDAgger; ThriftyDAgger without risk)."""

    enabled: bool = False
    """Publish ``help/request``. Needs weights with an ensemble (HG-DAgger): others give no uncertainty."""
    novelty_threshold: float = 0.0
    """Request help when the proposal's uncertainty (the ensemble's doubt) exceeds this; 0 = fit it to ``target_rate``."""
    target_rate: float = 0.1
    """With ``novelty_threshold`` 0: share of the robot's recent ticks on which it may ask (the operator's budget)."""
    recent: int = 2000
    """Recent ticks the fitted thresholds are computed on."""
    min_ticks: int = 100
    """Robot ticks with an uncertainty before a fitted threshold is used (no request before)."""
    handback_disagreement: float = 0.01
    """Hand back when ||pi(s) - a_h||^2 (translation m/s and gripper) is at most this; fitted mode: until the
    operator has driven, after that the mean disagreement on their recent steps (ThriftyDAgger's delta_r)."""
    publish_period: float = 1.0
    """Period (s) of the repeated ``help/request`` and its diagnostics (also sent on every change)."""

    def __post_init__(self) -> None:
        if self.novelty_threshold < 0 or self.handback_disagreement < 0:
            raise ValueError("help.novelty_threshold and help.handback_disagreement must be >= 0")
        if self.novelty_threshold == 0:
            HelpRequestConfig(target_rate=self.target_rate, recent=self.recent, use_risk=False)  # checks target_rate


class HelpRequester:
    """Feeds ``HelpGate`` from the policy's proposals (novelty) and the mux's step records (the operator's action)."""

    def __init__(self, config: HelpConfig) -> None:
        self.config = config
        self.novelties: deque[float] = deque(maxlen=config.recent)  # at robot-driven ticks
        self.disagreements: deque[float] = deque(maxlen=config.recent)  # at the operator's ticks
        self.disagreement: float | None = None  # on the latest step record, None unless the operator drove
        self.novelty: float | None = None
        self.reason = ""
        fixed = config.novelty_threshold > 0
        self.gate = HelpGate(Thresholds(config.novelty_threshold, math.inf, config.handback_disagreement, math.inf)) \
            if fixed else None

    @property
    def requesting(self) -> bool:
        return self.gate is not None and self.gate.requesting

    def on_step(self, record: StepRecord) -> None:
        """Each mux tick: while the operator drives, how far the policy's proposal is from their command."""
        self.disagreement = None
        if record.intervention and record.policy_action is not None and record.human_action is not None:
            self.disagreement = sum((record.policy_action[i] - record.human_action[i]) ** 2 for i in TRANSLATION_GRIPPER)
            self.disagreements.append(self.disagreement)

    def on_proposal(self, proposal: Proposal) -> HelpDecision | None:
        """One control tick; None while undecided (no uncertainty, or too few ticks to fit a threshold)."""
        if proposal.uncertainty is None or not math.isfinite(proposal.uncertainty):
            return None
        self.novelty = proposal.uncertainty
        if not self.requesting:
            self.novelties.append(self.novelty)
        if self.config.novelty_threshold == 0:
            if len(self.novelties) < self.config.min_ticks:
                return None
            fitted = fit_thresholds(self.novelties, [], self.disagreements or [self.config.handback_disagreement],
                                    HelpRequestConfig(self.config.target_rate, self.config.recent, use_risk=False))
            if self.gate is None:
                self.gate = HelpGate(fitted)
            self.gate.thresholds = fitted
        disagreement, self.disagreement = self.disagreement, None  # one operator command answers one tick
        decision = self.gate.step(self.novelty, 0.0, disagreement, None if disagreement is None else 0.0)
        if decision.changed:
            self.reason = decision.reason
        return decision
