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
from .networks import Policy, PolicyShape, doubt, random_shift


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
    image_features: int = 50
    """Camera policies: size of the image encoder's output (DrQ: 50)."""
    image_pad: int = 4
    """Camera policies: DrQ random-shift augmentation of up to this many pixels (0 = none)."""
    freeze_encoder: bool = False
    """Camera policies: keep the image encoder at its seeded random initialisation (fixed features)."""
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
                 action_box: ActionBox | None = None, device: str | torch.device = "cpu", image: tuple[int, ...] = ()) -> None:
        self.config, self.device = config, torch.device(device)
        self.obs_dim, self.act_dim, self.image = obs_dim, act_dim, tuple(image)
        self.action_box = action_box or ActionBox()
        torch.manual_seed(config.seed)
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        shape = PolicyShape(self.ALGORITHM, obs_dim, act_dim, config.hidden, config.ensemble, self.image, config.image_features)
        self.policy = Policy(shape).to(self.device)
        self.policy.action_low.copy_(torch.tensor(self.action_box.low))
        self.policy.action_high.copy_(torch.tensor(self.action_box.high))
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

    def loss(self, observations: Tensor, actions: Tensor, images: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Mean squared error of each member on its own minibatch. Inputs [E, B, obs], [E, B, A] (unit box),
        for a camera policy images [E, B, C, H, W] uint8 (randomly shifted, DrQ)."""
        x = self.policy.normalize(observations)
        if self.policy.encoder is not None:
            members, batch = images.shape[:2]
            shifted = random_shift(images.flatten(0, 1), self.config.image_pad, self.generator)
            x = torch.cat([x, self.policy.encoder(shifted).view(members, batch, -1)], dim=-1)
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
        """One update on bootstrap minibatches of the human data (demos and interventions) in ``prior``."""
        rows = prior.human_rows()
        if len(rows) == 0:
            raise ValueError("HG-DAgger has no human data yet (demos or interventions)")
        idx = rows[rng.integers(0, len(rows), (self.config.ensemble, self.config.batch_size))]
        as_tensor = lambda a: torch.from_numpy(a[idx]).to(self.device, non_blocking=True)  # noqa: E731
        images = as_tensor(prior.images) if prior.images is not None else None
        return self.update(as_tensor(prior.observations), as_tensor(prior.actions), images)

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
        return {"policy": self.policy}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"ensemble": self.optimizer}

    def extra_tensors(self) -> dict[str, Tensor]:
        return {}
