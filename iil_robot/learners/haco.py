"""HACO (Li et al., ICLR 2022, "Efficient Learning of Safe Driving Policy via Human-AI Copilot
Optimization"): reward-free SAC from interventions, with a learned cost of being taken over.

- **Proxy value**: twin critics trained with entropy-regularised TD (reward 0) on every step, plus
  the conservative term Q(s, a_n) - Q(s, a_h) on the operator's steps, which values the operator's
  action above the novice action it overrode (``Batch.novice_actions``).
- **Intervention cost**: c = 1 - cos(a_n, a_h) on the step where the operator takes over (the more
  the operator disagreed, the dearer), 0 elsewhere, learned by its own Q-function Q^I by TD at the
  novice's action (the action that was overridden; the executed one where there is no proposal).
- **Actor**: maximises Q(s, a) - alpha log pi(a|s) - Q^I(s, a), a ~ pi, with SAC's temperature.
The human buffer (prior) and the novice buffer (online) are sampled half and half.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from iil_robot.learners.buffers import ActionBox, Batch, ReplayBuffer, sample_symmetric
from iil_robot.learners.networks import EnsembleCritic, Policy, PolicyShape, adam, behaviour_cloning_step


@dataclass(frozen=True)
class HACOConfig:
    """HACO hyperparameters; defaults follow the paper's SAC setting (Li et al. 2022, Appendix) unless noted."""

    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "actor_lr": (1e-7, 1.0), "critic_lr": (1e-7, 1.0), "temp_lr": (1e-7, 1.0), "hidden": (1, 4096), "discount": (0.0, 1.0),
        "tau": (0.0, 1.0), "conservative_weight": (0.0, 1000.0), "init_temperature": (1e-6, 100.0),
        "batch_size": (2, 65536), "seed": (0, 2**31 - 1),
    }
    """Valid range of each numeric field (node parameters are declared with them)."""

    actor_lr: float = 1e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 1e-4
    """Adam learning rate of the proxy-value critics and of the cost critic."""
    temp_lr: float = 1e-4
    """Adam learning rate of the SAC temperature."""
    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer sizes of actor and critics."""
    discount: float = 0.99
    """Discount of the proxy-value and the cost backups."""
    tau: float = 0.005
    """Polyak rate of the target critics."""
    conservative_weight: float = 1.0
    """Weight of the conservative term Q(s, a_n) - Q(s, a_h) on intervention steps."""
    init_temperature: float = 1.0
    """Initial SAC temperature alpha."""
    target_entropy: float | None = None
    """Target entropy; None means -|A| (SAC)."""
    batch_size: int = 256
    """Transitions per update (half human buffer, half novice buffer)."""
    seed: int = 0
    """Seed of the network initialisation and of the learner's own sampling."""

    def __post_init__(self) -> None:
        if self.batch_size < 2 or self.conservative_weight < 0 or self.init_temperature <= 0:
            raise ValueError("batch_size must be >= 2, conservative_weight >= 0 and init_temperature > 0")


def intervention_cost(novice_actions: Tensor, human_actions: Tensor, onsets: Tensor) -> Tensor:
    """HACO's cost: 1 - cos(a_n, a_h) on takeover steps that have a novice action, else 0. [B, A], [B, A], [B] -> [B]."""
    has_novice = torch.isfinite(novice_actions).all(-1)
    novice = torch.where(has_novice[:, None], novice_actions, torch.zeros_like(novice_actions))
    cost = 1.0 - F.cosine_similarity(novice, human_actions, dim=-1, eps=1e-6)
    return torch.where(onsets & has_novice, cost, torch.zeros_like(cost))


def conservative_loss(q_human: Tensor, q_novice: Tensor, mask: Tensor) -> Tensor:
    """Mean over the batch of 1[mask] (Q(s, a_n) - Q(s, a_h)): lower where the novice was overridden. [E, B] -> []."""
    return (mask.float() * (q_novice - q_human)).mean()


class HACOLearner:
    ALGORITHM = "haco"

    def __init__(self, obs_dim: int, act_dim: int, config: HACOConfig = HACOConfig(),
                 action_box: ActionBox | None = None, device: str | torch.device = "cpu") -> None:
        self.config, self.device = config, torch.device(device)
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.action_box = action_box or ActionBox()
        self.target_entropy = -float(act_dim) if config.target_entropy is None else config.target_entropy
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        torch.manual_seed(config.seed)

        shape = PolicyShape(self.ALGORITHM, obs_dim, act_dim, config.hidden)
        self.policy = Policy(shape).scale_to(self.action_box.low, self.action_box.high).to(self.device)
        self.actor = self.policy.actor
        self.critic = EnsembleCritic(obs_dim, act_dim, config.hidden, 2, layer_norm=False).to(self.device)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.cost_critic = EnsembleCritic(obs_dim, act_dim, config.hidden, 1, layer_norm=False).to(self.device)
        self.target_cost_critic = copy.deepcopy(self.cost_critic).requires_grad_(False)
        self.log_temp = torch.tensor(math.log(config.init_temperature), device=self.device, requires_grad=True)
        self.actor_opt = adam(self.actor.parameters(), config.actor_lr)
        self.critic_opt = adam(list(self.critic.parameters()) + list(self.cost_critic.parameters()), config.critic_lr)
        self.temp_opt = adam([self.log_temp], config.temp_lr)
        self.updates = 0

    def critic_loss(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """Entropy-regularised reward-free TD + conservative proxy value, and the cost critic's TD."""
        obs = self.policy.normalize(batch.observations)
        has_novice = torch.isfinite(batch.novice_actions).all(-1)
        novice_actions = torch.where(has_novice[:, None], batch.novice_actions, batch.actions)
        cost = intervention_cost(batch.novice_actions, batch.actions, batch.onsets)
        with torch.no_grad():
            obs_next = self.policy.normalize(batch.next_observations)
            next_actions, next_log_probs = self.actor.sample(obs_next)
            next_q = self.target_critic(obs_next, next_actions).min(dim=0).values - self.log_temp.exp() * next_log_probs
            target_q = self.config.discount * batch.masks * next_q
            target_cost = cost + self.config.discount * batch.masks * self.target_cost_critic(obs_next, next_actions)[0]
        q_behaviour = self.critic(obs, batch.actions)  # on an operator step: Q(s, a_h)
        q_novice = self.critic(obs, novice_actions)
        q_cost = self.cost_critic(obs, novice_actions)
        assert q_behaviour.shape == (2, target_q.shape[0]) and q_cost.shape == (1, target_q.shape[0]), \
            (q_behaviour.shape, q_cost.shape)
        td_loss = ((q_behaviour - target_q) ** 2).mean()
        cons_loss = conservative_loss(q_behaviour, q_novice, batch.interventions & has_novice)
        cost_loss = ((q_cost - target_cost) ** 2).mean()
        loss = td_loss + self.config.conservative_weight * cons_loss + cost_loss
        return loss, {"critic_loss": loss.detach(), "td_loss": td_loss.detach(), "conservative_loss": cons_loss.detach(),
                      "cost_loss": cost_loss.detach(), "cost": cost.mean(), "q": q_behaviour.detach().mean(),
                      "target_q": target_q.mean(), "target_cost": target_cost.mean()}

    def actor_loss(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """alpha log pi(a|s) - min Q(s, a) + Q^I(s, a), a ~ pi (critics frozen)."""
        obs = self.policy.normalize(batch.observations)
        actions, log_probs = self.actor.sample(obs)
        q = self.critic(obs, actions).min(dim=0).values
        q_cost = self.cost_critic(obs, actions)[0]
        temperature = self.log_temp.exp().detach()
        loss = (temperature * log_probs - q + q_cost).mean()
        return loss, {"actor_loss": loss.detach(), "entropy": -log_probs.detach().mean(), "temperature": temperature,
                      "q_cost": q_cost.detach().mean()}

    def update(self, batch: Batch) -> dict[str, Tensor]:
        loss, info = self.critic_loss(batch)
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        with torch.no_grad():
            for target, source in ((self.target_critic, self.critic), (self.target_cost_critic, self.cost_critic)):
                torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), self.config.tau)

        for critic in (self.critic, self.cost_critic):
            critic.requires_grad_(False)
        actor_loss, actor_info = self.actor_loss(batch)
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        for critic in (self.critic, self.cost_critic):
            critic.requires_grad_(True)
        self.actor_opt.step()

        temp_loss = self.log_temp.exp() * (actor_info["entropy"] - self.target_entropy)
        self.temp_opt.zero_grad(set_to_none=True)
        temp_loss.backward()
        self.temp_opt.step()
        self.updates += 1
        return {**info, **actor_info, "temperature_loss": temp_loss.detach()}

    def train_step(self, prior: ReplayBuffer, online: ReplayBuffer, rng: np.random.Generator) -> dict[str, Tensor]:
        """One update on a batch sampled half from the human buffer (prior), half from the novice buffer (online)."""
        return self.update(sample_symmetric(prior, online, self.config.batch_size, rng, self.device))

    def warm_start_step(self, prior: ReplayBuffer, rng: np.random.Generator) -> dict[str, Tensor]:
        """One critic update on the operator's data and a behaviour-cloning step of the actor's mean towards it."""
        batch = prior.sample(self.config.batch_size, rng, self.device)
        loss, info = self.critic_loss(batch)
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        bc_loss = behaviour_cloning_step(self.actor, self.actor_opt, self.policy.normalize(batch.observations), batch.actions)
        return {**info, "bc_loss": bc_loss}

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"policy": self.policy, "critic": self.critic, "target_critic": self.target_critic,
                "cost_critic": self.cost_critic, "target_cost_critic": self.target_cost_critic}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_opt, "critic": self.critic_opt, "temperature": self.temp_opt}

    def extra_tensors(self) -> dict[str, Tensor]:
        return {"log_temp": self.log_temp}
