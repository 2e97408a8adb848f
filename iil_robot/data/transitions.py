"""Training data as the learners consume it: flat arrays of transitions, labelled once.

The labelling module turns step records into ``Transitions``; the learners (RLPD for RLIF,
HG-DAgger, and the others) read only this. The same path serves the live learner and offline
replay from bags.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from enum import IntEnum

import numpy as np


class StepClass(IntEnum):
    """Per-step classes for reweighting (Sirius, Liu et al. 2023; IWR, Mandlekar et al. 2020)."""

    DEMO = 0
    """An operator drove a whole demonstration episode."""
    ROBOT = 1
    """The policy acted and no intervention followed soon."""
    PRE_INTERVENTION = 2
    """The policy acted in the steps just before an operator took over."""
    INTERVENTION = 3
    """The operator acted, correcting the policy."""


@dataclass(frozen=True)
class Transitions:
    """N transitions ``(o, a, r, o', terminal, truncated)`` with their labels."""

    observations: np.ndarray
    """[N, obs_dim] float32."""
    actions: np.ndarray
    """[N, act_dim] float32: the executed action, in the learner's action space."""
    rewards: np.ndarray
    """[N] float32 (RLIF: -1 on the transition that led to an intervention onset, else 0)."""
    next_observations: np.ndarray
    """[N, obs_dim] float32."""
    terminals: np.ndarray
    """[N] bool: the episode truly ended here (no bootstrapping)."""
    truncations: np.ndarray
    """[N] bool: the episode was cut here (time limit): bootstrap from ``next_observations``."""
    interventions: np.ndarray
    """[N] bool: the operator controlled this step."""
    classes: np.ndarray
    """[N] int8 ``StepClass`` values."""
    images: np.ndarray | None = None
    """[N, C, H, W] uint8 camera images seen with ``observations``, or None (state-only data)."""
    next_images: np.ndarray | None = None
    """[N, C, H, W] uint8 camera images seen with ``next_observations``."""
    novice_actions: np.ndarray | None = None
    """[N, act_dim] float32: the policy's proposal at the step (PVP's and HACO's novice action, also on the
    operator's steps), NaN where there was none. Left out (None): all NaN."""
    onsets: np.ndarray | None = None
    """[N] bool: the operator took over at this step (first step of an intervention). Left out: all False."""
    successes: np.ndarray | None = None
    """[N] bool: this transition reached the goal (the last step of an episode whose outcome is ``success``);
    the goal reward of ThriftyDAgger's Q_G. Left out: all False."""
    image_stamps: np.ndarray | None = None
    """[N] objects: the capture stamps of the camera frames the steps' policy acted on, a dict camera name -> stamp
    (None: no frame), from the step records' ``image_stamps``; None when not labelled from step records. The learner
    pairs images by them."""
    next_image_stamps: np.ndarray | None = None
    """[N] objects: the same for ``next_observations``."""

    def __post_init__(self) -> None:
        n = len(self.observations)
        # the optional label columns always exist once built (NaN / False where a producer has none)
        if self.novice_actions is None:
            object.__setattr__(self, "novice_actions", np.full(self.actions.shape, np.nan, np.float32))
        if self.onsets is None:
            object.__setattr__(self, "onsets", np.zeros(n, bool))
        if self.successes is None:
            object.__setattr__(self, "successes", np.zeros(n, bool))
        if self.novice_actions.shape != self.actions.shape:
            raise ValueError(f"novice_actions {self.novice_actions.shape} must be shaped like actions {self.actions.shape}")
        if (self.images is None) != (self.next_images is None):
            raise ValueError("images and next_images come together (both arrays or both None)")
        if self.images is not None and (self.images.ndim != 4 or len(self.images) != n
                                        or self.next_images.shape != self.images.shape or self.images.dtype != np.uint8):
            raise ValueError(f"images {self.images.shape} and next_images {self.next_images.shape} "
                             f"must be uint8 [N={n}, C, H, W] alike")
        if self.observations.ndim != 2 or self.next_observations.shape != self.observations.shape:
            raise ValueError(
                f"observations {self.observations.shape} and next_observations {self.next_observations.shape} "
                "must be [N, obs_dim] alike"
            )
        if self.actions.ndim != 2 or len(self.actions) != n:
            raise ValueError(f"actions {self.actions.shape} must be [N={n}, act_dim]")
        if (self.image_stamps is None) != (self.next_image_stamps is None):
            raise ValueError("image_stamps and next_image_stamps come together (both arrays or both None)")
        for f in ("rewards", "terminals", "truncations", "interventions", "classes", "onsets", "successes", "image_stamps",
                  "next_image_stamps"):
            value = getattr(self, f)
            if value is not None and value.shape != (n,):
                raise ValueError(f"{f} has shape {value.shape}, expected ({n},)")

    def __len__(self) -> int:
        return len(self.observations)

    @classmethod
    def empty(cls, obs_dim: int, act_dim: int) -> "Transitions":
        return cls(
            observations=np.zeros((0, obs_dim), np.float32),
            actions=np.zeros((0, act_dim), np.float32),
            rewards=np.zeros(0, np.float32),
            next_observations=np.zeros((0, obs_dim), np.float32),
            terminals=np.zeros(0, bool),
            truncations=np.zeros(0, bool),
            interventions=np.zeros(0, bool),
            classes=np.zeros(0, np.int8),
        )

    def take(self, index: np.ndarray) -> "Transitions":
        """The rows ``index`` selects (a boolean mask or integer indices)."""
        return Transitions(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[index]
                              for f in fields(self)})

    @classmethod
    def concatenate(cls, parts: "list[Transitions]") -> "Transitions":
        if not parts:
            raise ValueError("nothing to concatenate")
        if len({p.images is None for p in parts}) > 1:
            raise ValueError("cannot concatenate transitions with and without images")
        # stamps are optional bookkeeping: kept only when every part has them
        return cls(**{f.name: None if any(getattr(p, f.name) is None for p in parts)
                              else np.concatenate([getattr(p, f.name) for p in parts])
                      for f in fields(cls)})
