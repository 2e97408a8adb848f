"""Robot-gated help requests (ThriftyDAgger, Hoque et al., CoRL 2021): the policy asks for the
operator instead of waiting to be taken over.

- **Novelty**: disagreement of the policy's ensemble, the mean over action dimensions of the
  members' variance (the state is unlike the training data).
- **Risk**: ``1 - Q_G(s, pi(s))`` with ``Q_G`` the learned probability of reaching the goal from s
  when acting a = pi(s) (the policy is likely to fail from here).
- **Switching**: while the robot drives, request help when novelty > ``novelty`` or risk >
  ``risk``; while the operator drives, hand back when the policy agrees with the operator
  (``||pi(s) - a_h||^2 <= handback_disagreement``) and the operator's action is low-risk
  (``1 - Q_G(s, a_h) <= handback_risk``).
- **Thresholds from a budget**: :func:`fit_thresholds` sets novelty and risk thresholds to quantiles
  of recent robot-driven states so that each alone would fire on ``target_rate / 2`` of them (together
  at most ``target_rate``: the operator's budget); the hand-back disagreement is the mean
  disagreement on the operator's recent steps (ThriftyDAgger's δ_r) and the hand-back risk the
  request risk threshold.

Special cases (``HelpRequestConfig.use_novelty`` / ``use_risk``): EnsembleDAgger asks on novelty
(ensemble variance) alone; SafeDAgger asks on a learned risk alone (its "safety" classifier predicts
that the policy will deviate from the operator; feed that prediction as ``risk``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["HelpDecision", "HelpGate", "HelpRequestConfig", "Thresholds", "fit_thresholds", "novelty"]


@dataclass(frozen=True)
class HelpRequestConfig:
    """Robot-gated help requests; defaults follow ThriftyDAgger where it gives one."""

    target_rate: float = 0.1
    """alpha: share of robot-driven steps on which the policy may ask for help (the operator's budget)."""
    recent: int = 2000
    """Recent steps the thresholds are fitted on."""
    use_novelty: bool = True
    """Ask when the ensemble disagrees (False: SafeDAgger-style, risk only)."""
    use_risk: bool = True
    """Ask when the goal looks unlikely (False: EnsembleDAgger-style, novelty only)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.target_rate < 1.0:
            raise ValueError(f"target_rate {self.target_rate} must be in (0, 1)")
        if self.recent < 1:
            raise ValueError(f"recent {self.recent} must be >= 1")
        if not (self.use_novelty or self.use_risk):
            raise ValueError("use_novelty and use_risk are both off: the policy could never ask for help")


@dataclass(frozen=True)
class Thresholds:
    novelty: float
    """delta_h: request help above this ensemble disagreement."""
    risk: float
    """beta_h: request help above this risk 1 - Q_G(s, pi(s))."""
    handback_disagreement: float
    """delta_r: hand back only when ||pi(s) - a_h||^2 is at most this."""
    handback_risk: float
    """Hand back only when the operator's action has risk 1 - Q_G(s, a_h) at most this."""


@dataclass(frozen=True)
class HelpDecision:
    requesting: bool
    """Whether help is requested (the operator is asked to drive) after this step."""
    changed: bool
    """True on the step the request was raised or withdrawn."""
    reason: str
    """``novelty``, ``risk``, ``novelty+risk``, ``handback``, ``operator`` (the operator let go) or empty."""


def novelty(member_actions: np.ndarray) -> np.ndarray:
    """ThriftyDAgger's novelty: the mean over action dimensions of the ensemble members' variance.
    [E, B, A] (or [E, A]) -> [B] (or a scalar)."""
    member_actions = np.asarray(member_actions, np.float64)
    if member_actions.ndim < 2 or member_actions.shape[0] < 2:
        raise ValueError(f"novelty needs at least 2 ensemble members on axis 0, got shape {member_actions.shape}")
    return member_actions.var(axis=0).mean(axis=-1)


def fit_thresholds(novelties: np.ndarray, risks: np.ndarray, handback_disagreements: np.ndarray,
                   config: HelpRequestConfig = HelpRequestConfig()) -> Thresholds:
    """Thresholds from recent data (the last ``config.recent`` values of each).

    ``novelties`` and ``risks``: at the robot-driven states; ``handback_disagreements``: ||pi(s) - a_h||^2 on
    the operator's steps. Raises ValueError when a needed array is empty."""
    share = config.target_rate / (2 if config.use_novelty and config.use_risk else 1)
    novelties, risks = np.asarray(novelties, float)[-config.recent:], np.asarray(risks, float)[-config.recent:]
    handback = np.asarray(handback_disagreements, float)[-config.recent:]
    for name, values, needed in (("novelties", novelties, config.use_novelty), ("risks", risks, config.use_risk),
                                 ("handback_disagreements", handback, True)):
        if needed and len(values) == 0:
            raise ValueError(f"no recent {name} to fit the help-request thresholds on: collect some steps first")
    risk = float(np.quantile(risks, 1.0 - share)) if config.use_risk else float("inf")
    return Thresholds(
        novelty=float(np.quantile(novelties, 1.0 - share)) if config.use_novelty else float("inf"),
        risk=risk,
        handback_disagreement=float(handback.mean()),
        handback_risk=risk if config.use_risk else float("inf"),
    )


class HelpGate:
    """ThriftyDAgger's switch between robot mode and "help requested", one call per control tick."""

    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds
        self.requesting = False
        self.raised = 0
        """Requests raised so far."""
        self.needed = 0
        """Requests after which the operator judged the state bad (``judge``)."""

    def step(self, novelty: float, risk: float, disagreement: float | None = None,
             human_risk: float | None = None) -> HelpDecision:
        """Robot mode: ``novelty`` and ``risk`` at (s, pi(s)). Help requested: ``disagreement`` = ||pi(s) - a_h||^2
        and ``human_risk`` = 1 - Q_G(s, a_h) (None while the operator gives no command: keep asking)."""
        t = self.thresholds
        if not self.requesting:
            reasons = [name for name, value, limit in (("novelty", novelty, t.novelty), ("risk", risk, t.risk)) if value > limit]
            if not reasons:
                return HelpDecision(False, False, "")
            self.requesting = True
            self.raised += 1
            return HelpDecision(True, True, "+".join(reasons))
        if disagreement is not None and human_risk is not None \
                and disagreement <= t.handback_disagreement and human_risk <= t.handback_risk:
            self.requesting = False
            return HelpDecision(False, True, "handback")
        return HelpDecision(True, False, "")

    def withdraw(self) -> HelpDecision | None:
        """The operator let go while help was requested: back to robot mode (the human always decides; it is
        also the cap on how long a request can keep them). None when nothing was requested."""
        if not self.requesting:
            return None
        self.requesting = False
        return HelpDecision(False, True, "operator")

    def judge(self, needed: bool) -> None:
        """The operator's verdict on the last request: was the state really bad (would they have taken over)?"""
        self.needed += bool(needed)
