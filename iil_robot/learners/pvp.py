"""PVP (Peng et al., NeurIPS 2023, "Learning from Active Human Involvement through Proxy Value
Propagation"): reward-free learning from interventions with a TD3 actor-critic.

On the operator's steps the proxy Q-function is pulled to +1 at the operator's action and to -1
at the novice action it overrode (the policy's proposal, ``Batch.novice_actions``); TD learning
with reward 0 propagates these proxy values to the states the policy visits. The human buffer
(demos and interventions: the trainer's prior buffer) and the novice buffer (the policy's steps:
the online buffer) are sampled half and half. The actor is TD3's: deterministic (the tanh of the
mean of the exported ``TanhGaussianActor``), trained every ``policy_delay`` critic updates to
maximise the first critic, with smoothed target actions.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from iil_robot.learners.buffers import ActionBox, Batch, ReplayBuffer, sample_symmetric
from iil_robot.learners.networks import EnsembleCritic, Policy, PolicyShape, adam, behaviour_cloning_step


@dataclass(frozen=True)
class PVPConfig:
    """PVP hyperparameters; defaults are the paper's TD3 setting (Peng et al. 2023, Appendix) unless noted."""

    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "actor_lr": (1e-7, 1.0), "critic_lr": (1e-7, 1.0), "hidden": (1, 4096), "discount": (0.0, 1.0), "tau": (0.0, 1.0),
        "q_bound": (1e-6, 1000.0), "policy_delay": (1, 100), "target_policy_noise": (0.0, 10.0),
        "target_noise_clip": (0.0, 10.0), "batch_size": (2, 65536), "seed": (0, 2**31 - 1),
    }
    """Valid range of each numeric field (node parameters are declared with them)."""

    actor_lr: float = 1e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 1e-4
    """Adam learning rate of the twin critics."""
    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer sizes of actor and critics."""
    discount: float = 0.99
    """Discount factor gamma of the reward-free TD backup."""
    tau: float = 0.005
    """Polyak rate of the target networks."""
    q_bound: float = 1.0
    """Proxy values: Q(s, a_h) -> +q_bound, Q(s, a_n) -> -q_bound on intervention steps."""
    td_on_all_steps: bool = True
    """TD on every sampled transition (the paper: B_n and B_h); False: only on steps without intervention."""
    policy_delay: int = 2
    """Critic updates per actor and target update (TD3)."""
    target_policy_noise: float = 0.2
    """Std of the smoothing noise on the target action (TD3, unit box)."""
    target_noise_clip: float = 0.5
    """Clip of that noise (TD3)."""
    batch_size: int = 256
    """Transitions per update (half human buffer, half novice buffer). The paper uses 1024 on a GPU."""
    seed: int = 0
    """Seed of the network initialisation and of the learner's own sampling."""

    def __post_init__(self) -> None:
        if self.policy_delay < 1 or self.batch_size < 2 or self.q_bound <= 0:
            raise ValueError("policy_delay must be >= 1, batch_size >= 2 and q_bound > 0")


def proxy_value_loss(q_human: Tensor, q_novice: Tensor, interventions: Tensor, has_novice: Tensor, bound: float) -> Tensor:
    """PVP's proxy value objective, per critic: mean over the batch of
    1[intervention] (Q(s, a_h) - bound)^2 + 1[intervention and a novice action] (Q(s, a_n) + bound)^2.
    ``q_*`` [E, B], masks [B] -> [] (a demo step has no novice action: only its +bound term counts)."""
    human = interventions.float()
    novice = (interventions & has_novice).float()
    return (human * (q_human - bound) ** 2 + novice * (q_novice + bound) ** 2).mean()


def td_targets(next_q: Tensor, masks: Tensor, discount: float, rewards: Tensor | float = 0.0) -> Tensor:
    """The backup r + gamma * mask * Q'(s', a'); PVP's reward is 0. [B] -> [B]."""
    return rewards + discount * masks * next_q


class PVPLearner:
    ALGORITHM = "pvp"

    def __init__(self, obs_dim: int, act_dim: int, config: PVPConfig = PVPConfig(),
                 action_box: ActionBox | None = None, device: str | torch.device = "cpu") -> None:
        self.config, self.device = config, torch.device(device)
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.action_box = action_box or ActionBox()
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        torch.manual_seed(config.seed)

        shape = PolicyShape(self.ALGORITHM, obs_dim, act_dim, config.hidden)
        self.policy = Policy(shape).scale_to(self.action_box.low, self.action_box.high).to(self.device)
        self.actor = self.policy.actor
        self.target_actor = copy.deepcopy(self.actor).requires_grad_(False)
        # TD3's twin critics as a 2-member ensemble (no LayerNorm, as in TD3)
        self.critic = EnsembleCritic(obs_dim, act_dim, config.hidden, 2, layer_norm=False).to(self.device)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = adam(self.actor.parameters(), config.actor_lr)
        self.critic_opt = adam(self.critic.parameters(), config.critic_lr)
        self.updates = 0

    def critic_loss(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """Proxy value loss on the operator's steps + reward-free TD (TD3 target: min of the twin targets
        at the smoothed target action)."""
        obs = self.policy.normalize(batch.observations)
        has_novice = torch.isfinite(batch.novice_actions).all(-1)
        novice_actions = torch.where(has_novice[:, None], batch.novice_actions, torch.zeros_like(batch.novice_actions))
        with torch.no_grad():
            obs_next = self.policy.normalize(batch.next_observations)
            noise = (torch.randn(batch.actions.shape, generator=self.generator, device=self.device)
                     * self.config.target_policy_noise).clamp(-self.config.target_noise_clip, self.config.target_noise_clip)
            next_actions = (self.target_actor(obs_next) + noise).clamp(-1.0, 1.0)
            target_q = td_targets(self.target_critic(obs_next, next_actions).min(dim=0).values, batch.masks, self.config.discount)
        q_behaviour = self.critic(obs, batch.actions)  # on an operator step: Q(s, a_h)
        q_novice = self.critic(obs, novice_actions)
        assert q_behaviour.shape == (2, target_q.shape[0]) == q_novice.shape, (q_behaviour.shape, q_novice.shape)
        td_rows = torch.ones_like(batch.masks) if self.config.td_on_all_steps else (~batch.interventions).float()
        td_loss = (td_rows * (q_behaviour - target_q) ** 2).mean()
        pv_loss = proxy_value_loss(q_behaviour, q_novice, batch.interventions, has_novice, self.config.q_bound)
        loss = td_loss + pv_loss
        return loss, {"critic_loss": loss.detach(), "td_loss": td_loss.detach(), "proxy_value_loss": pv_loss.detach(),
                      "q": q_behaviour.detach().mean(), "target_q": target_q.mean()}

    def actor_loss(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """TD3: -Q_1(s, pi(s)) with the first critic."""
        obs = self.policy.normalize(batch.observations)
        loss = -self.critic(obs, self.actor(obs))[0].mean()
        return loss, {"actor_loss": loss.detach()}

    def update(self, batch: Batch) -> dict[str, Tensor]:
        loss, info = self.critic_loss(batch)
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        self.updates += 1
        if self.updates % self.config.policy_delay == 0:
            self.critic.requires_grad_(False)
            actor_loss, actor_info = self.actor_loss(batch)
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.critic.requires_grad_(True)
            self.actor_opt.step()
            info |= actor_info
            with torch.no_grad():
                for target, source in ((self.target_critic, self.critic), (self.target_actor, self.actor)):
                    torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), self.config.tau)
        return info

    def train_step(self, prior: ReplayBuffer, online: ReplayBuffer, rng: np.random.Generator) -> dict[str, Tensor]:
        """One update on a batch sampled half from the human buffer (prior), half from the novice buffer (online)."""
        return self.update(sample_symmetric(prior, online, self.config.batch_size, rng, self.device))

    def warm_start_step(self, prior: ReplayBuffer, rng: np.random.Generator) -> dict[str, Tensor]:
        """One critic update on the operator's data and a behaviour-cloning step of the actor towards it
        (as RLPD's warm start: a random first policy would leave the operator driving every step)."""
        batch = prior.sample(self.config.batch_size, rng, self.device)
        loss, info = self.critic_loss(batch)
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        bc_loss = behaviour_cloning_step(self.actor, self.actor_opt, self.policy.normalize(batch.observations), batch.actions)
        self.target_actor.load_state_dict(self.actor.state_dict())
        return {**info, "bc_loss": bc_loss}

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"policy": self.policy, "target_actor": self.target_actor, "critic": self.critic,
                "target_critic": self.target_critic}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_opt, "critic": self.critic_opt}

    def extra_tensors(self) -> dict[str, Tensor]:
        return {}
