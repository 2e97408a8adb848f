"""HG-DAgger (Kelly et al. 2019): behaviour cloning on the aggregated human data (the initial
demonstrations plus every human-gated correction), with an ensemble whose disagreement, the
"doubt", estimates where the policy is unreliable; the policy node publishes it as the
proposal's ``uncertainty``.

The paper learns a doubt threshold from the doubt at the moments the operator took over: the
mean over the last quarter of the interventions (``doubt_threshold_fraction``). With
``learn_doubt_threshold`` the learner computes it and the weights carry it.

Each member trains on its own bootstrap minibatch (independent indices), all members in one
batched computation (stacked weights).

The same supervised learner runs the rest of the interactive-imitation family, by parameter:

- ``weighting`` chooses the data and how it is sampled. ``none``: the operator-labelled rows only
  (HG-DAgger; DAgger when every step is labelled, see ``LabelConfig.label_every_step``), uniformly.
  ``iwr`` (Mandlekar et al. 2020) and ``sirius`` (Liu et al. 2023) also learn from the robot's own
  steps (the executed action: the operator let them happen): IWR draws exactly
  ``iwr_intervention_fraction`` (half) of every minibatch from the intervention rows and the rest
  from all others; Sirius draws each row with probability proportional to its class weight
  (``StepClass``: demo, robot, pre-intervention, intervention), pre-intervention down-weighted.
- ``head``: ``l2`` (a deterministic action, mean squared error) or ``mixture`` (a Gaussian mixture
  per member, negative log-likelihood; acts with the mean of the most likely component), so a
  multimodal operator is not averaged.

With ``goal_critic`` it also trains ThriftyDAgger's goal-probability critic Q_G(s, a) (Hoque et al.
2021), the risk signal of robot-gated help requests (risk = 1 - Q_G(s, pi(s))). TD on all the
aggregated transitions (operator rows and the robot's own), drawn uniformly from both buffers:
target ``r_G + gamma (1 - end) Q_G'(s', pi(s'))`` with r_G = 1 on the transition that reached the goal
(``Transitions.successes``), ``end`` where the chain stops (a terminal, or the episode ended without
the goal: Q_G is the probability of reaching the goal *in this episode*, so a timeout counts 0), pi(s')
the ensemble's action, Q_G' a Polyak-averaged target copy (our choice, the usual stabiliser of TD),
the sigmoid outputs of two members regressed on the target by mean squared error (ThriftyDAgger
regresses its Q on the backup with MSE; gamma 0.9999 as there). Off by default: the plain learner's
update is unchanged.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from iil_robot.data.transitions import StepClass
from iil_robot.learners.buffers import ActionBox, ReplayBuffer
from iil_robot.learners.networks import HEADS, Policy, PolicyShape, doubt, random_shift

WEIGHTINGS = ("none", "iwr", "sirius")
"""Sampling schemes of the supervised learner (``HGDAggerConfig.weighting``)."""


@dataclass(frozen=True)
class HGDAggerConfig:
    """HG-DAgger hyperparameters."""

    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "lr": (1e-7, 1.0), "hidden": (1, 4096), "ensemble": (2, 32), "batch_size": (1, 65536), "weight_decay": (0.0, 1.0),
        "doubt_threshold_fraction": (0.01, 1.0), "seed": (0, 2**31 - 1), "mixture_components": (1, 32),
        "mixture_min_std": (1e-6, 1.0), "iwr_intervention_fraction": (0.01, 0.99), "sirius_demo_weight": (0.0, 1000.0),
        "sirius_robot_weight": (0.0, 1000.0), "sirius_pre_intervention_weight": (0.0, 1000.0),
        "sirius_intervention_weight": (0.0, 1000.0), "goal_discount": (0.5, 1.0), "goal_lr": (1e-7, 1.0), "goal_tau": (1e-4, 1.0),
    }
    """Valid range of each numeric field (node parameters are declared with them)."""

    lr: float = 1e-3
    """Adam learning rate."""
    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer sizes of each member."""
    ensemble: int = 5
    """Members of the ensemble (the paper's doubt needs at least 2)."""
    batch_size: int = 256
    """Transitions per member per update."""
    weight_decay: float = 0.0
    """Adam weight decay."""
    learn_doubt_threshold: bool = False
    """Learn the paper's doubt threshold from the doubt at intervention onsets."""
    doubt_threshold_fraction: float = 0.25
    """The threshold is the mean doubt over this last fraction of the onsets (the paper: the last 25%)."""
    image_features: int = 50
    """Camera policies: size of the image encoder's output (DrQ: 50)."""
    image_pad: int = 4
    """Camera policies: DrQ random-shift augmentation of up to this many pixels (0 = none)."""
    freeze_encoder: bool = False
    """Camera policies: keep the image encoder at its seeded random initialisation (fixed features)."""
    seed: int = 0
    """Seed of the initialisation and the learner's sampling."""
    head: str = "l2"
    """Action head: ``l2`` (deterministic, mean squared error) or ``mixture`` (Gaussian mixture, NLL)."""
    mixture_components: int = 5
    """Gaussian components per member of the ``mixture`` head (robomimic's GMM default)."""
    mixture_min_std: float = 0.01
    """Smallest standard deviation of a mixture component, in the unit action box."""
    weighting: str = "none"
    """``none`` (operator-labelled rows, uniform: HG-DAgger, DAgger, BC), ``iwr`` or ``sirius`` (also the robot's rows)."""
    iwr_intervention_fraction: float = 0.5
    """IWR: share of every minibatch drawn from the intervention rows (the paper balances 50/50)."""
    sirius_demo_weight: float = 1.0
    """Sirius: sampling weight of a demonstration row."""
    sirius_robot_weight: float = 1.0
    """Sirius: sampling weight of a robot row no intervention followed."""
    sirius_pre_intervention_weight: float = 0.1
    """Sirius: sampling weight of a robot row in the window before an intervention (down-weighted)."""
    sirius_intervention_weight: float = 2.0
    """Sirius: sampling weight of an intervention row (up-weighted)."""
    goal_critic: bool = False
    """Also train ThriftyDAgger's goal-probability critic Q_G (risk of help requests); it travels in the weights."""
    goal_discount: float = 0.9999
    """gamma of Q_G's backup (ThriftyDAgger: 0.9999, so Q_G is about the probability of success)."""
    goal_lr: float = 1e-3
    """Adam learning rate of Q_G."""
    goal_tau: float = 0.005
    """Polyak rate of Q_G's target copy."""

    def __post_init__(self) -> None:
        if self.ensemble < 2:
            raise ValueError(f"ensemble={self.ensemble}: HG-DAgger's doubt needs at least 2 members")
        if not 0.0 < self.doubt_threshold_fraction <= 1.0:
            raise ValueError("doubt_threshold_fraction must be in (0, 1]")
        if self.head not in HEADS:
            raise ValueError(f"head {self.head!r} must be one of {HEADS}")
        if self.mixture_components < 1 or self.mixture_min_std <= 0:
            raise ValueError("mixture_components must be >= 1 and mixture_min_std > 0")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting {self.weighting!r} must be one of {WEIGHTINGS}")
        if not 0.0 < self.iwr_intervention_fraction < 1.0:
            raise ValueError(f"iwr_intervention_fraction {self.iwr_intervention_fraction} must be in (0, 1)")
        if not 0.0 < self.goal_discount <= 1.0 or not 0.0 < self.goal_tau <= 1.0 or self.goal_lr <= 0:
            raise ValueError(f"goal_discount {self.goal_discount} and goal_tau {self.goal_tau} must be in (0, 1], goal_lr > 0")
        weights = self.class_weights
        if min(weights.values()) < 0 or max(weights.values()) <= 0:
            raise ValueError(f"Sirius class weights {weights} must be >= 0, at least one > 0")

    @property
    def class_weights(self) -> dict[StepClass, float]:
        """Sirius's sampling weight per ``StepClass``."""
        return {StepClass.DEMO: self.sirius_demo_weight, StepClass.ROBOT: self.sirius_robot_weight,
                StepClass.PRE_INTERVENTION: self.sirius_pre_intervention_weight,
                StepClass.INTERVENTION: self.sirius_intervention_weight}


def sample_rows(classes: np.ndarray, config: HGDAggerConfig, rng: np.random.Generator) -> np.ndarray:
    """Row indices [ensemble, batch_size] into rows of ``classes`` (``StepClass`` values), by ``config.weighting``.

    ``none``: uniform. ``iwr``: exactly ``round(iwr_intervention_fraction · batch)`` rows of every
    member's minibatch from the INTERVENTION rows, the rest from the others (all from one group
    while the other is empty). ``sirius``: row i with probability ∝ the weight of its class.
    """
    shape, n = (config.ensemble, config.batch_size), len(classes)
    if n == 0:
        raise ValueError("no rows to sample")
    if config.weighting == "none":
        return rng.integers(0, n, shape)
    if config.weighting == "iwr":
        intervention = np.flatnonzero(classes == StepClass.INTERVENTION)
        rest = np.flatnonzero(classes != StepClass.INTERVENTION)
        if len(intervention) == 0 or len(rest) == 0:
            return rng.integers(0, n, shape)
        k = int(round(config.iwr_intervention_fraction * config.batch_size))
        return np.concatenate([intervention[rng.integers(0, len(intervention), (config.ensemble, k))],
                               rest[rng.integers(0, len(rest), (config.ensemble, config.batch_size - k))]], axis=1)
    weights = np.zeros(n)
    for step_class, weight in config.class_weights.items():
        weights[classes == step_class] = weight
    if weights.sum() <= 0:
        raise ValueError(f"every row has Sirius weight 0 (classes present: {sorted(set(classes.tolist()))})")
    return rng.choice(n, size=shape, p=weights / weights.sum())


def goal_td_target(successes: Tensor, ends: Tensor, next_goal_probability: Tensor, discount: float) -> Tensor:
    """ThriftyDAgger's backup for Q_G: ``r_G + gamma (1 - end) Q_G'(s', pi(s'))``, r_G = 1 where the goal was
    reached. All [B] floats (0/1 for ``successes`` and ``ends``)."""
    assert successes.shape == ends.shape == next_goal_probability.shape, \
        (successes.shape, ends.shape, next_goal_probability.shape)
    return successes + discount * (1.0 - ends) * next_goal_probability


class HGDAggerLearner:
    ALGORITHM = "hgdagger"

    def __init__(self, obs_dim: int, act_dim: int, config: HGDAggerConfig = HGDAggerConfig(),
                 action_box: ActionBox | None = None, device: str | torch.device = "cpu", image: tuple[int, ...] = ()) -> None:
        self.config, self.device = config, torch.device(device)
        self.obs_dim, self.act_dim, self.image = obs_dim, act_dim, tuple(image)
        self.action_box = action_box or ActionBox()
        torch.manual_seed(config.seed)
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        components = config.mixture_components if config.head == "mixture" else 1
        shape = PolicyShape(self.ALGORITHM, obs_dim, act_dim, config.hidden, config.ensemble, head=config.head,
                            components=components, image=self.image, image_features=config.image_features,
                            goal_critic=config.goal_critic)
        self.policy = Policy(shape).scale_to(self.action_box.low, self.action_box.high).to(self.device)
        if config.head == "mixture":
            self.policy.actor.min_std = config.mixture_min_std
        self.ensemble = self.policy.actor
        params = list(self.ensemble.parameters())
        if self.policy.encoder is not None:  # one encoder shared by the members, trained by their BC loss
            if config.freeze_encoder:
                self.policy.encoder.requires_grad_(False)
            else:
                params += list(self.policy.encoder.parameters())
        self.optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, fused=True)
        self.doubt_threshold: float | None = None
        self.updates = 0
        self.goal_target: torch.nn.Module | None = None
        self.goal_optimizer: torch.optim.Optimizer | None = None
        if config.goal_critic:
            self.goal_target = copy.deepcopy(self.policy.goal_critic).requires_grad_(False)
            self.goal_optimizer = torch.optim.Adam(self.policy.goal_critic.parameters(), lr=config.goal_lr, fused=True)

    def loss(self, observations: Tensor, actions: Tensor, images: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Each member on its own minibatch: mean squared error (``l2``) or negative log-likelihood
        (``mixture``). Inputs [E, B, obs], [E, B, A] (unit box), for a camera policy images
        [E, B, C, H, W] uint8 (randomly shifted, DrQ)."""
        x = self.policy.normalize(observations)
        if self.policy.encoder is not None:
            members, batch = images.shape[:2]
            shifted = random_shift(images.flatten(0, 1), self.config.image_pad, self.generator)
            x = torch.cat([x, self.policy.encoder(shifted).view(members, batch, -1)], dim=-1)
        if self.config.head == "mixture":
            loss = -self.ensemble.log_prob(x, actions).mean()
            with torch.no_grad():
                predicted = self.ensemble(x)
        else:
            predicted = self.ensemble(x)
            assert predicted.shape == actions.shape, (predicted.shape, actions.shape)
            loss = ((predicted - actions) ** 2).mean()
        return loss, {"bc_loss": loss.detach(), "doubt": doubt(predicted.detach()).mean()}

    def update(self, observations: Tensor, actions: Tensor, images: Tensor | None = None) -> dict[str, Tensor]:
        loss, info = self.loss(observations, actions, images)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.updates += 1
        return info

    def train_step(self, prior: ReplayBuffer, online: ReplayBuffer, rng: np.random.Generator) -> dict[str, Tensor]:
        """One update on bootstrap minibatches of ``training_rows`` drawn by ``sample_rows``."""
        observations, actions, classes, images = self.training_rows(prior, online)
        if len(observations) == 0:
            raise ValueError("HG-DAgger has no operator-labelled data yet (demos or interventions)")
        idx = sample_rows(classes, self.config, rng)
        as_tensor = lambda a: torch.from_numpy(a[idx]).to(self.device, non_blocking=True)  # noqa: E731
        info = self.update(as_tensor(observations), as_tensor(actions), None if images is None else as_tensor(images))
        if self.config.goal_critic:
            info |= self.goal_update(*self.goal_rows(prior, online, rng))
        return info

    # -- the goal-probability critic Q_G (ThriftyDAgger) --------------------------------------

    def goal_rows(self, prior: ReplayBuffer, online: ReplayBuffer, rng: np.random.Generator) -> tuple[Tensor, ...]:
        """``batch_size`` transitions drawn uniformly from both buffers: observations, unit actions, next
        observations, successes and ends (terminal or truncated) as tensors."""
        sizes = (len(prior), len(online))
        picks = rng.integers(0, sum(sizes), self.config.batch_size)
        columns: list[list[np.ndarray]] = [[], [], [], [], []]
        for buffer, idx in ((prior, picks[picks < sizes[0]]), (online, picks[picks >= sizes[0]] - sizes[0])):
            for column, values in zip(columns, (buffer.observations[idx], buffer.actions[idx], buffer.next_observations[idx],
                                                buffer.successes[idx], buffer.truncations[idx] | (buffer.masks[idx] == 0.0))):
                column.append(values)
        return tuple(torch.from_numpy(np.concatenate(c).astype(np.float32)).to(self.device) for c in columns)

    def goal_target_values(self, next_observations: Tensor, successes: Tensor, ends: Tensor) -> Tensor:
        """The TD target of Q_G at a batch: the target copy at (s', pi(s')), pi the ensemble's action. -> [B]"""
        with torch.no_grad():
            x = self.policy.normalize(next_observations)
            next_action = self.ensemble.act(x) if self.config.head == "mixture" else self.ensemble(x).mean(0)
            next_probability = torch.sigmoid(self.goal_target(x, next_action)).mean(0)
            return goal_td_target(successes, ends, next_probability, self.config.goal_discount)

    def goal_update(self, observations: Tensor, actions: Tensor, next_observations: Tensor, successes: Tensor,
                    ends: Tensor) -> dict[str, Tensor]:
        """One TD step of Q_G (each member's sigmoid output towards the target, MSE) and the Polyak update."""
        target = self.goal_target_values(next_observations, successes, ends)
        probability = torch.sigmoid(self.policy.goal_critic(self.policy.normalize(observations), actions))
        assert probability.shape == (self.policy.goal_critic.members, len(target)), (probability.shape, target.shape)
        loss = ((probability - target) ** 2).mean()
        self.goal_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.goal_optimizer.step()
        with torch.no_grad():
            for p, p_target in zip(self.policy.goal_critic.parameters(), self.goal_target.parameters()):
                p_target.lerp_(p, self.config.goal_tau)
        return {"goal_loss": loss.detach(), "goal_probability": probability.detach().mean()}

    def training_rows(self, prior: ReplayBuffer,
                      online: ReplayBuffer) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Observations, unit actions, classes and images (None without a camera) to learn from: the
        operator-labelled rows (``prior``), and for IWR and Sirius also the robot's own steps with their
        executed actions (``online``)."""
        if self.config.weighting == "none":
            return prior.rows()  # views: no copy of the buffer per update
        robot = online.rows()
        keep = robot[2] >= 0  # hold rows (include_hold) have no class
        parts = [prior.rows(), tuple(None if a is None else a[keep] for a in robot)]
        return tuple(None if column[0] is None else np.concatenate(column) for column in zip(*parts))  # type: ignore[return-value]

    def fit_doubt_threshold(self, onset_observations: np.ndarray) -> float | None:
        """The paper's threshold: mean doubt over the last ``doubt_threshold_fraction`` of the onsets."""
        if not self.config.learn_doubt_threshold or len(onset_observations) == 0 or self.policy.encoder is not None:
            # (camera policies: the onsets' images are not kept, so the threshold is not learned)
            return self.doubt_threshold
        count = max(1, int(np.ceil(len(onset_observations) * self.config.doubt_threshold_fraction)))
        with torch.no_grad():
            obs = torch.as_tensor(onset_observations[-count:], dtype=torch.float32, device=self.device)
            self.doubt_threshold = float(doubt(self.ensemble(self.policy.normalize(obs))).mean())
        return self.doubt_threshold

    # -- checkpoints -------------------------------------------------------------------------

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"policy": self.policy} | ({"goal_target": self.goal_target} if self.goal_target is not None else {})

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"ensemble": self.optimizer} | ({"goal": self.goal_optimizer} if self.goal_optimizer is not None else {})

    def extra_tensors(self) -> dict[str, Tensor]:
        return {}
