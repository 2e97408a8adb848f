"""Replay buffers over ``Transitions``, and RLPD's symmetric sampling of prior and online data.

A buffer is a fixed-capacity ring of numpy arrays. Actions are stored in the learner's unit box
[-1, 1] (see ``ActionBox``), so the critic sees buffer actions and actor actions alike.
``sample`` returns a ``Batch`` of torch tensors on the learner's device.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor

from iil_robot.data.actions import ActionConfig
from iil_robot.data.transitions import Transitions

_DEFAULT_LOW, _DEFAULT_HIGH = ActionConfig().bounds()


@dataclass(frozen=True)
class ActionBox:
    """The learner's action box in physical units (``ActionConfig.bounds``: the mux's speed limits and the gripper's
    [0, 1]); actions are learned in [-1, 1]. The default is the default action space at the default limits."""

    low: tuple[float, ...] = _DEFAULT_LOW
    """Lower bounds, one per value of the action space (m/s, rad/s; gripper closure)."""
    high: tuple[float, ...] = _DEFAULT_HIGH
    """Upper bounds."""

    @classmethod
    def of(cls, action: ActionConfig) -> "ActionBox":
        return cls(*action.bounds())

    def to_unit(self, actions: np.ndarray) -> np.ndarray:
        low, high = np.asarray(self.low, np.float32), np.asarray(self.high, np.float32)
        if actions.shape[-1] != len(low):
            raise ValueError(f"actions have {actions.shape[-1]} values, the action box {len(low)}")
        return np.clip(2.0 * (actions - low) / (high - low) - 1.0, -1.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class Batch:
    observations: Tensor
    """[B, obs_dim]"""
    actions: Tensor
    """[B, act_dim] in [-1, 1]"""
    rewards: Tensor
    """[B]"""
    next_observations: Tensor
    """[B, obs_dim]"""
    masks: Tensor
    """[B] 0.0 where the episode truly ended (no bootstrap), else 1.0"""
    images: Tensor | None = None
    """[B, C, H, W] uint8 camera images with ``observations`` (None: state only)"""
    next_images: Tensor | None = None
    """[B, C, H, W] uint8 camera images with ``next_observations``"""
    novice_actions: Tensor | None = None
    """[B, act_dim] the policy's proposal in [-1, 1] (PVP/HACO's novice action), NaN where there was none"""
    interventions: Tensor | None = None
    """[B] bool: the operator controlled the step (``actions`` is then the operator's)"""
    onsets: Tensor | None = None
    """[B] bool: the operator took over at the step"""

    def split(self, parts: int) -> list["Batch"]:
        """Cut into ``parts`` minibatches (RLPD's UTD loop takes one per critic update)."""
        chunks = [torch.chunk(getattr(self, f.name), parts) if getattr(self, f.name) is not None else (None,) * parts
                  for f in fields(self)]
        return [Batch(*c) for c in zip(*chunks)]


class ReplayBuffer:
    """A ring of transitions; the oldest are overwritten once ``capacity`` is reached."""

    def __init__(self, obs_dim: int, act_dim: int, capacity: int, image: tuple[int, ...] = ()) -> None:
        if capacity < 1:
            raise ValueError(f"capacity {capacity} must be at least 1")
        self.capacity, self.obs_dim, self.act_dim, self.image = capacity, obs_dim, act_dim, tuple(image)
        # camera images stay uint8 (4x smaller than float32); the learner converts a sampled batch
        self.images = np.zeros((capacity, *image), np.uint8) if image else None
        self.next_images = np.zeros((capacity, *image), np.uint8) if image else None
        self.observations = np.zeros((capacity, obs_dim), np.float32)
        self.actions = np.zeros((capacity, act_dim), np.float32)
        self.rewards = np.zeros(capacity, np.float32)
        self.next_observations = np.zeros((capacity, obs_dim), np.float32)
        self.masks = np.zeros(capacity, np.float32)
        self.interventions = np.zeros(capacity, bool)
        self.classes = np.zeros(capacity, np.int8)
        self.novice_actions = np.full((capacity, act_dim), np.nan, np.float32)
        self.onsets = np.zeros(capacity, bool)
        self.successes = np.zeros(capacity, bool)  # the goal-probability critic's columns (HG-DAgger's Q_G), not in batches
        self.truncations = np.zeros(capacity, bool)
        self.size = 0
        self.cursor = 0
        self.added = 0

    def __len__(self) -> int:
        return self.size

    def add(self, data: Transitions, unit_actions: np.ndarray, unit_novice_actions: np.ndarray | None = None) -> None:
        """Append ``data`` with its actions (and novice actions, NaN where absent) already mapped to the unit box."""
        n = len(data)
        if unit_novice_actions is None:
            unit_novice_actions = np.full((n, self.act_dim), np.nan, np.float32)
        if data.observations.shape[1:] != (self.obs_dim,) or unit_actions.shape != (n, self.act_dim):
            raise ValueError(
                f"transitions of obs {data.observations.shape[1:]}, actions {unit_actions.shape[1:]} do not fit a buffer "
                f"of obs ({self.obs_dim},), actions ({self.act_dim},)"
            )
        if self.image and (data.images is None or data.images.shape[1:] != self.image):
            got = None if data.images is None else data.images.shape[1:]
            raise ValueError(f"transitions with images {got} do not fit a buffer of images {self.image}")
        if n > self.capacity:  # only the newest fit
            data = data.take(np.arange(n - self.capacity, n))
            unit_actions, unit_novice_actions, n = (unit_actions[-self.capacity:], unit_novice_actions[-self.capacity:],
                                                    self.capacity)
        idx = (self.cursor + np.arange(n)) % self.capacity
        self.observations[idx] = data.observations
        self.actions[idx] = unit_actions
        self.rewards[idx] = data.rewards
        self.next_observations[idx] = data.next_observations
        self.masks[idx] = 1.0 - data.terminals.astype(np.float32)
        self.interventions[idx] = data.interventions
        self.classes[idx] = data.classes
        self.novice_actions[idx] = unit_novice_actions
        self.onsets[idx] = data.onsets
        self.successes[idx], self.truncations[idx] = data.successes, data.truncations
        if self.images is not None:
            self.images[idx], self.next_images[idx] = data.images, data.next_images
        self.cursor = int((self.cursor + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)
        self.added += n

    def sample_indices(self, count: int, rng: np.random.Generator) -> np.ndarray:
        if self.size == 0:
            raise ValueError("cannot sample from an empty buffer")
        return rng.integers(0, self.size, count)

    def gather(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        arrays = {
            "observations": self.observations[idx], "actions": self.actions[idx], "rewards": self.rewards[idx],
            "next_observations": self.next_observations[idx], "masks": self.masks[idx],
            "novice_actions": self.novice_actions[idx], "interventions": self.interventions[idx], "onsets": self.onsets[idx],
        }
        if self.images is not None:
            arrays |= {"images": self.images[idx], "next_images": self.next_images[idx]}
        return arrays

    def sample(self, count: int, rng: np.random.Generator, device: torch.device | str = "cpu") -> Batch:
        return to_batch(self.gather(self.sample_indices(count, rng)), device)

    def rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Observations, unit actions, ``StepClass`` values and images (None without a camera) of every
        stored row (views, unordered)."""
        images = None if self.images is None else self.images[: self.size]
        return self.observations[: self.size], self.actions[: self.size], self.classes[: self.size], images

    def state(self) -> dict[str, np.ndarray]:
        """Arrays for a checkpoint (ordered oldest first)."""
        order = np.arange(self.size) if self.size < self.capacity else (self.cursor + np.arange(self.size)) % self.capacity
        return {
            "observations": self.observations[order], "actions": self.actions[order], "rewards": self.rewards[order],
            "next_observations": self.next_observations[order], "masks": self.masks[order],
            "interventions": self.interventions[order], "classes": self.classes[order],
            "novice_actions": self.novice_actions[order], "onsets": self.onsets[order],
            "successes": self.successes[order], "truncations": self.truncations[order],
        } | ({"images": self.images[order], "next_images": self.next_images[order]} if self.images is not None else {})

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        n = len(arrays["observations"])
        data = Transitions(
            observations=arrays["observations"], actions=arrays["actions"], rewards=arrays["rewards"],
            next_observations=arrays["next_observations"], terminals=arrays["masks"] == 0.0,
            truncations=arrays["truncations"].astype(bool) if "truncations" in arrays else np.zeros(n, bool),
            interventions=arrays["interventions"].astype(bool),
            classes=arrays["classes"].astype(np.int8), images=arrays.get("images"), next_images=arrays.get("next_images"),
            onsets=arrays["onsets"].astype(bool) if "onsets" in arrays else None,  # absent in older checkpoints
            successes=arrays["successes"].astype(bool) if "successes" in arrays else None,
        )
        novice = arrays.get("novice_actions")
        self.add(data, arrays["actions"].astype(np.float32), None if novice is None else novice.astype(np.float32))


def to_batch(arrays: dict[str, np.ndarray], device: torch.device | str) -> Batch:
    return Batch(**{k: torch.from_numpy(np.ascontiguousarray(v)).to(device, non_blocking=True) for k, v in arrays.items()})


def sample_symmetric(prior: ReplayBuffer, online: ReplayBuffer, count: int, rng: np.random.Generator,
                     device: torch.device | str = "cpu") -> Batch:
    """RLPD's symmetric sampling: half of the batch from the prior data, half from the online data.

    The rows alternate prior, online, prior, ... (ikostrikov/rlpd's ``combine``), so every
    contiguous minibatch that ``Batch.split`` cuts for the UTD loop is itself half and half; the
    actor, which takes the last minibatch, learns on both. While one of the two is still empty
    the whole batch comes from the other.
    """
    if len(prior) == 0 or len(online) == 0:
        only = prior if len(online) == 0 else online
        return only.sample(count, rng, device)
    half = count // 2
    a = prior.gather(prior.sample_indices(half, rng))
    b = online.gather(online.sample_indices(count - half, rng))
    # prior rows at even places, online rows at odd places (an odd count ends with an online row)
    order = np.argsort(np.concatenate([2 * np.arange(half), 2 * np.arange(count - half) + 1]), kind="stable")
    return to_batch({k: np.concatenate([a[k], b[k]])[order] for k in a}, device)
