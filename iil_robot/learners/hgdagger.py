"""HG-DAgger (Kelly et al. 2019): behaviour cloning on the aggregated human data (the initial
demonstrations plus every human-gated correction), with an ensemble whose disagreement, the
"doubt", estimates where the policy is unreliable; the policy node publishes it as the
proposal's ``uncertainty``.

The paper learns a doubt threshold from the doubt at the moments the operator took over: the
mean over the last quarter of the interventions (``doubt_threshold_fraction``). With
``learn_doubt_threshold`` the learner computes it and the weights carry it.

Each member trains on its own bootstrap minibatch (independent indices), all members in one
batched computation (stacked weights).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .buffers import ActionBox, ReplayBuffer
from .networks import Policy, PolicyShape, doubt


@dataclass(frozen=True)
class HGDAggerConfig:
    """HG-DAgger hyperparameters."""

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
    seed: int = 0
    """Seed of the initialisation and the learner's sampling."""

    def __post_init__(self) -> None:
        if self.ensemble < 2:
            raise ValueError(f"ensemble={self.ensemble}: HG-DAgger's doubt needs at least 2 members")
        if not 0.0 < self.doubt_threshold_fraction <= 1.0:
            raise ValueError("doubt_threshold_fraction must be in (0, 1]")


class HGDAggerLearner:
    ALGORITHM = "hgdagger"

    def __init__(self, obs_dim: int, act_dim: int, config: HGDAggerConfig = HGDAggerConfig(),
                 action_box: ActionBox | None = None, device: str | torch.device = "cpu") -> None:
        self.config, self.device = config, torch.device(device)
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.action_box = action_box or ActionBox()
        torch.manual_seed(config.seed)
        self.policy = Policy(PolicyShape(self.ALGORITHM, obs_dim, act_dim, config.hidden, config.ensemble)).to(self.device)
        self.policy.action_low.copy_(torch.tensor(self.action_box.low))
        self.policy.action_high.copy_(torch.tensor(self.action_box.high))
        self.ensemble = self.policy.actor
        self.optimizer = torch.optim.Adam(self.ensemble.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)
        self.doubt_threshold: float | None = None
        self.updates = 0

    def loss(self, observations: Tensor, actions: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Mean squared error of each member on its own minibatch. Inputs [E, B, obs], [E, B, A] (unit box)."""
        predicted = self.ensemble(self.policy.normalize(observations))
        assert predicted.shape == actions.shape, (predicted.shape, actions.shape)
        loss = ((predicted - actions) ** 2).mean()
        return loss, {"bc_loss": loss.detach(), "doubt": doubt(predicted.detach()).mean()}

    def update(self, observations: Tensor, actions: Tensor) -> dict[str, Tensor]:
        loss, info = self.loss(observations, actions)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.updates += 1
        return info

    def train_step(self, prior: ReplayBuffer, online: ReplayBuffer, rng: np.random.Generator) -> dict[str, Tensor]:
        """One update on bootstrap minibatches of the human data (demos and interventions) in ``prior``."""
        observations, actions = prior.human_data()
        if len(observations) == 0:
            raise ValueError("HG-DAgger has no human data yet (demos or interventions)")
        idx = rng.integers(0, len(observations), (self.config.ensemble, self.config.batch_size))
        as_tensor = lambda a: torch.from_numpy(a[idx]).to(self.device, non_blocking=True)  # noqa: E731
        return self.update(as_tensor(observations), as_tensor(actions))

    def fit_doubt_threshold(self, onset_observations: np.ndarray) -> float | None:
        """The paper's threshold: mean doubt over the last ``doubt_threshold_fraction`` of the onsets."""
        if not self.config.learn_doubt_threshold or len(onset_observations) == 0:
            return self.doubt_threshold
        count = max(1, int(np.ceil(len(onset_observations) * self.config.doubt_threshold_fraction)))
        with torch.no_grad():
            obs = torch.as_tensor(onset_observations[-count:], dtype=torch.float32, device=self.device)
            self.doubt_threshold = float(doubt(self.ensemble(self.policy.normalize(obs))).mean())
        return self.doubt_threshold

    # -- checkpoints -------------------------------------------------------------------------

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"policy": self.policy}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"ensemble": self.optimizer}

    def extra_tensors(self) -> dict[str, Tensor]:
        return {}
