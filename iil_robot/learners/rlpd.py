"""RLPD (Ball et al. 2023, "Efficient Online RL with Offline Data"): SAC with a LayerNorm critic
ensemble, REDQ-style target over a random subset of critics, a high update-to-data ratio and
symmetric sampling of prior and online data. For RLIF (Luo et al. 2023) the rewards are the
intervention labels: -1 on the transition that led to an intervention, 0 otherwise.

Reads like ikostrikov/rlpd's ``SACLearner``: ``update_critic`` and ``update_actor`` each take a
batch and return a dict of metrics; ``update`` is the UTD loop (``utd_ratio`` critic updates on
minibatches, then one actor and temperature update). Metrics are detached tensors, so a step
never waits on the device; call ``.item()`` only when logging.
"""
from __future__ import annotations

import copy
import math
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from iil_robot.learners.buffers import ActionBox, Batch, ReplayBuffer, sample_symmetric
from iil_robot.learners.cpu import cpu_info
from iil_robot.learners.fusion import WarmUp
from iil_robot.learners.networks import (
    EnsembleCritic,
    LoopEnsembleCritic,
    Policy,
    PolicyShape,
    adam,
    behaviour_cloning_step,
    random_shift,
)


def native_bfloat16(device: torch.device) -> str | None:
    """Why ``device`` would not multiply bfloat16 natively (so ``mixed_precision`` would slow it down), or None."""
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return None if major >= 8 else (f"the GPU has no bfloat16 tensor cores (compute capability {major}.{minor}; "
                                        "Ampere, 8.0, and newer have them)")
    if device.type != "cpu":
        return f"bfloat16 matmuls are checked on CPUs and CUDA GPUs only, not {device.type!r}"
    try:
        _, flags = cpu_info()
    except OSError:
        return "/proc/cpuinfo cannot be read to check the CPU for AVX-512 BF16 or AMX"
    return None if flags & {"avx512_bf16", "amx_bf16"} else ("this CPU has neither AVX-512 BF16 nor AMX: it would "
                                                            "emulate bfloat16, slower than float32")


BFLOAT16 = "bfloat16 matmuls"


def matmul_precision(config: "RLPDConfig", device: torch.device) -> str:
    """What ``config``'s losses multiply in on ``device``: ``BFLOAT16``, or ``float32``, with why where
    ``mixed_precision`` asked for bfloat16 and ``device`` does not multiply it natively."""
    if not config.mixed_precision:
        return "float32"
    unsupported = native_bfloat16(device)
    return BFLOAT16 if unsupported is None else f"float32: mixed_precision is off because {unsupported}"


def compiler() -> str:
    """The C++ compiler ``torch.compile`` (inductor) builds its kernels with on Linux: ``$CXX``, else g++."""
    return os.environ.get("CXX", "g++")


@dataclass(frozen=True)
class RLPDConfig:
    """RLPD hyperparameters; defaults are the paper's (Ball et al. 2023, Table 3) unless noted."""

    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "actor_lr": (1e-7, 1.0), "critic_lr": (1e-7, 1.0), "temp_lr": (1e-7, 1.0), "hidden": (1, 4096), "discount": (0.0, 1.0),
        "tau": (0.0, 1.0), "num_qs": (1, 64), "num_min_qs": (1, 64), "init_temperature": (1e-6, 100.0),
        "batch_size": (2, 65536), "utd_ratio": (1, 1000), "seed": (0, 2**31 - 1), "bc_weight": (0.0, 1000.0),
        "cql_alpha": (0.0, 1000.0),
    }
    """Valid range of each numeric field (node parameters are declared with them)."""

    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics."""
    temp_lr: float = 3e-4
    """Adam learning rate of the SAC temperature."""
    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer sizes of actor and critics."""
    discount: float = 0.99
    """Discount factor gamma."""
    tau: float = 0.005
    """Polyak rate of the target critics."""
    num_qs: int = 10
    """Critics in the ensemble."""
    num_min_qs: int = 2
    """Critics in the random subset whose minimum forms the target (REDQ)."""
    critic_layer_norm: bool = True
    """LayerNorm after each hidden layer of the critics (RLPD's key design choice)."""
    init_temperature: float = 1.0
    """Initial SAC temperature alpha."""
    target_entropy: float | None = None
    """Target entropy; None means -|A|/2."""
    backup_entropy: bool = True
    """Subtract the entropy term in the critic target (soft Q backup)."""
    batch_size: int = 256
    """Transitions per critic update (half prior, half online)."""
    utd_ratio: int = 4
    """Critic updates per actor update. The paper uses 20 with a fast GPU; 4 here because the learner
    shares 2 CPU cores with the control loop (one niced thread, ~25 critic updates/s): the arm adds
    20 transitions/s, so the real update-to-data ratio is set by throughput, and 4 keeps the actor
    improving several times per second. Raise it to 20 on a GPU."""
    critic_impl: str = "batched"
    """``batched`` (stacked weights, one matmul per layer) or ``loop`` (benchmark baseline)."""
    image_features: int = 50
    """Camera policies: size of the image encoder's output (DrQ: 50)."""
    image_pad: int = 4
    """Camera policies: DrQ random-shift augmentation of up to this many pixels (0 = none)."""
    freeze_encoder: bool = False
    """Camera policies: keep the image encoder at its (seeded, random) initialisation: fixed features shared by actor
    and critics, as HIL-SERL does with its frozen pretrained encoder. False: the critic loss trains it (DrQ)."""
    bc_weight: float = 0.0
    """Weight of a behaviour-cloning term in the actor loss: the squared distance of the actor's mean action to
    the operator's action on the batch's operator-driven steps (TD3+BC-style; 0 = RLPD as published)."""
    cql_alpha: float = 0.0
    """Weight of a conservative penalty in the critic loss (after CQL, Kumar et al. 2020, restricted to the operator's
    states): the mean over the ensemble and the batch's operator-driven rows of max(0, Q(s, a ~ pi) - Q(s, a_operator)).
    In those states only the operator's actions are ever executed, so nothing else in the data holds the critics' values
    of the actor's actions down, and the actor climbs that extrapolation (see docs/experiments/2026-12-01-rlif-on-push.md).
    The hinge stops at the operator's value: CQL's plain difference has no floor there and drove every value down
    without bound. 0 = RLPD as published; the shipped learner.yaml and the learning bench use 1."""
    compile: bool = False
    """Fuse the losses' elementwise work around the matmuls with ``torch.compile`` where a C++ compiler is present
    (``compiler()``). With the batched critics a child process compiles them first (tens of seconds to minutes on a
    CPU; ``iil_robot.learners.fusion``) while the updates go on eagerly, and the learner then compiles in place from
    its caches (seconds): the first weights never wait for the compiler (``fusion`` says where it stands). Without a
    compiler, or when the compile fails, the learner stays eager and says why. With ``critic_impl`` loop each critic is
    compiled in place (the first updates wait)."""
    mixed_precision: bool = False
    """Run the networks' matrix multiplies in bfloat16 inside the losses (``torch.autocast``; weights, optimiser state,
    TD targets, log-probabilities and losses stay float32) where the hardware multiplies bfloat16 natively: a CPU with
    AVX-512 BF16 or AMX (2.4x the float32 matmul on the 2-core EPYC of docs/benchmarks.md), an Ampere or newer GPU.
    Elsewhere it would be slower, and the learner stays in float32 and says why (``precision``). Not in the paper;
    docs/learners.md has its effect on learning."""
    seed: int = 0
    """Seed of the network initialisation and of the learner's own sampling."""

    def __post_init__(self) -> None:
        if not 1 <= self.num_min_qs <= self.num_qs:
            raise ValueError(f"num_min_qs={self.num_min_qs} must be in [1, num_qs={self.num_qs}]")
        if self.critic_impl not in ("batched", "loop"):
            raise ValueError(f"critic_impl {self.critic_impl!r} must be 'batched' or 'loop'")
        if self.utd_ratio < 1 or self.batch_size < 2:
            raise ValueError("utd_ratio must be >= 1 and batch_size >= 2")
        if self.bc_weight < 0 or self.cql_alpha < 0:
            raise ValueError(f"bc_weight {self.bc_weight} and cql_alpha {self.cql_alpha} must be >= 0")


class RLPDLearner:
    ALGORITHM = "rlpd"

    def __init__(self, obs_dim: int, act_dim: int, config: RLPDConfig = RLPDConfig(),
                 action_box: ActionBox | None = None, device: str | torch.device = "cpu", image: tuple[int, ...] = ()) -> None:
        self.config, self.device = config, torch.device(device)
        self.obs_dim, self.act_dim, self.image = obs_dim, act_dim, tuple(image)
        self.action_box = action_box or ActionBox()
        self.target_entropy = -act_dim / 2.0 if config.target_entropy is None else config.target_entropy
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        torch.manual_seed(config.seed)

        shape = PolicyShape(self.ALGORITHM, obs_dim, act_dim, config.hidden, image=self.image,
                            image_features=config.image_features)
        self.policy = Policy(shape).scale_to(self.action_box.low, self.action_box.high).to(self.device)
        self.actor = self.policy.actor
        critic_cls = EnsembleCritic if config.critic_impl == "batched" else LoopEnsembleCritic
        self.critic = critic_cls(shape.input_dim, act_dim, config.hidden, config.num_qs, config.critic_layer_norm).to(self.device)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_temp = torch.tensor(math.log(config.init_temperature), device=self.device, requires_grad=True)

        self.actor_opt = adam(self.actor.parameters(), config.actor_lr)
        # DrQ: the critic loss trains the shared image encoder; the actor sees its features detached
        encoder = self.policy.encoder
        if encoder is not None and config.freeze_encoder:
            encoder.requires_grad_(False)
        trained_encoder = [] if encoder is None or config.freeze_encoder else list(encoder.parameters())
        self.critic_opt = adam(list(self.critic.parameters()) + trained_encoder, config.critic_lr)
        self.temp_opt = adam([self.log_temp], config.temp_lr)
        self._critic_params = list(self.critic.parameters())
        self._target_params = list(self.target_critic.parameters())
        self.updates = 0
        self._critic_loss, self._actor_loss = self.critic_loss, self.actor_loss
        self.precision = matmul_precision(config, self.device)
        """What the losses multiply in, and why float32 where ``mixed_precision`` asked for bfloat16."""
        self.mixed_precision = self.precision == BFLOAT16
        self.fusion = "off"
        """``off``, ``waiting`` (for the first update), ``compiling``, ``switching``, ``on``, or ``off: WHY``."""
        self.fusion_seconds = self.fusion_wait = 0.0
        """How long the child compiled, and how long the first fused critic and actor updates took (compiling in place
        from its caches)."""
        self._warm_up: WarmUp | None = None
        self._to_switch: set[str] = set()  # the losses whose first fused update is still to come
        if config.compile and shutil.which(compiler()) is None:
            self.fusion = (f"off: torch.compile builds its kernels with a C++ compiler, and {compiler()!r} (the CXX environment "
                           "variable, else g++) is not on PATH: install one (apt-get install g++) to fuse the updates")
        elif config.compile and config.critic_impl == "batched":
            self.fusion = "waiting"
        elif config.compile:
            # the loop's target subset picks modules by value, and a compiled loss would re-specialise for every
            # subset: compile each critic instead (in place, so the state dict keeps its keys)
            for critic in (*self.critic.critics, *self.target_critic.critics):
                critic.compile(dynamic=False)
            self.fusion = "on"

    def features(self, observations: Tensor, images: Tensor | None) -> Tensor:
        """The networks' input: normalised observations, and for a camera policy the encoded,
        randomly shifted images (DrQ: a fresh shift for every use of an image)."""
        if self.policy.encoder is None:
            return self.policy.normalize(observations)
        return self.policy.features(observations, random_shift(images, self.config.image_pad, self.generator))

    # -- one critic update (runs utd_ratio times per update) ------------------------------

    def critic_loss(self, batch: Batch, subset: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Mean squared TD error of every critic against one target:
        r + gamma * mask * (min over the ``subset`` of target critics at (s', a' ~ pi) - alpha * log pi(a'|s'))."""
        obs = self.features(batch.observations, batch.images)
        with torch.no_grad():
            obs_next = self.features(batch.next_observations, batch.next_images)
            next_actions, next_log_probs = self.actor.sample(obs_next)
            next_q = self.target_critic(obs_next, next_actions, subset).min(dim=0).values
            if self.config.backup_entropy:
                next_q = next_q - self.log_temp.exp() * next_log_probs
            target_q = batch.rewards + self.config.discount * batch.masks * next_q
        qs = self.critic(obs, batch.actions)
        assert qs.shape == (self.config.num_qs, target_q.shape[0]), qs.shape
        loss = ((qs - target_q) ** 2).mean()
        info = {"critic_loss": loss.detach(), "q": qs.detach().mean(), "target_q": target_q.mean()}
        if self.config.cql_alpha > 0 and batch.interventions is not None:
            penalty = self.conservative_penalty(obs, qs, batch.interventions)
            loss = loss + self.config.cql_alpha * penalty
            info["cql_penalty"] = penalty.detach()
        return loss, info

    def conservative_penalty(self, obs: Tensor, qs: Tensor, operator_rows: Tensor) -> Tensor:
        """Mean over the ensemble and the ``operator_rows`` of max(0, Q(s, a ~ pi) - Q(s, a_operator)); ``qs`` [E, B] are
        the critics' values of the batch's (operator's) actions. A mask, not an index, so the step never waits on the device."""
        with torch.no_grad():
            actions, _ = self.actor.sample(obs)
        weights = operator_rows.float()
        gap = F.relu(self.critic(obs, actions) - qs).mean(dim=0)
        return (gap * weights).sum() / weights.sum().clamp(min=1.0)

    def update_critic(self, batch: Batch) -> dict[str, Tensor]:
        if self.fusion in ("waiting", "compiling"):
            self._fuse(batch)
        started = time.monotonic()
        subset = torch.randperm(self.config.num_qs, device=self.device, generator=self.generator)[: self.config.num_min_qs]
        with self._autocast():
            loss, info = self._critic_loss(batch, subset)
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        if "critic" in self._to_switch:
            self._switched("critic", started)
        with torch.no_grad():  # soft target update, all tensors in one fused call
            torch._foreach_lerp_(self._target_params, self._critic_params, self.config.tau)
        return info

    # -- actor and temperature (once per update) -------------------------------------------

    def actor_loss(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """alpha * log pi(a|s) - mean over the ensemble of Q(s, a), a ~ pi (critics frozen);
        plus ``bc_weight`` * the mean squared distance of pi's mean to the operator's action on operator-driven rows."""
        obs = self.features(batch.observations, batch.images).detach()
        actions, log_probs = self.actor.sample(obs)
        q = self.critic(obs, actions).mean(dim=0)
        temperature = self.log_temp.exp().detach()
        loss = (temperature * log_probs - q).mean()
        info = {"actor_loss": loss.detach(), "entropy": -log_probs.detach().mean(), "temperature": temperature}
        if self.config.bc_weight > 0 and batch.interventions is not None:
            human = batch.interventions.float()
            bc = (((self.actor(obs) - batch.actions) ** 2).sum(-1) * human).sum() / human.sum().clamp(min=1.0)
            loss = loss + self.config.bc_weight * bc
            info["bc_loss"] = bc.detach()
        return loss, info

    def update_actor(self, batch: Batch) -> dict[str, Tensor]:
        started = time.monotonic()
        self.critic.requires_grad_(False)
        with self._autocast():
            loss, info = self._actor_loss(batch)
        self.actor_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic.requires_grad_(True)
        self.actor_opt.step()

        # temperature: drive the entropy towards target_entropy
        temp_loss = self.log_temp.exp() * (info["entropy"] - self.target_entropy)
        self.temp_opt.zero_grad(set_to_none=True)
        temp_loss.backward()
        self.temp_opt.step()
        if "actor" in self._to_switch:
            self._switched("actor", started)
        return {**info, "temperature_loss": temp_loss.detach()}

    def _autocast(self) -> torch.autocast:
        """bfloat16 matrix multiplies inside the losses where ``mixed_precision`` asks for them."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.mixed_precision)

    # -- fusion (torch.compile, warmed up in a child process) ----------------------------------

    def use_compiled_losses(self) -> None:
        """Run the losses under ``torch.compile`` from the next update on (the first call compiles, or loads the
        kernels from the caches)."""
        self._critic_loss = torch.compile(self.critic_loss, dynamic=False)
        self._actor_loss = torch.compile(self.actor_loss, dynamic=False)

    def _fuse(self, batch: Batch) -> None:
        """Start the child's compile (first critic update), and switch to the compiled losses once it is done."""
        if self.fusion == "waiting":
            self._warm_up, self.fusion = WarmUp(self, batch), "compiling"
            return
        state = self._warm_up.poll()
        if state == "done":
            self.use_compiled_losses()
            self.fusion_seconds, self._to_switch, self.fusion = self._warm_up.seconds(), {"critic", "actor"}, "switching"
        elif state != "compiling":
            self.fusion = f"off: the compile failed, updates stay eager: {state.removeprefix('failed: ')}"

    def _switched(self, loss: str, started: float) -> None:
        self.fusion_wait += time.monotonic() - started
        self._to_switch.discard(loss)
        if not self._to_switch:
            self.fusion = "on"

    def wait_for_fusion(self, timeout: float | None = None) -> str:
        """Wait until the child started by an update has ended; ``fusion`` then (the next update switches)."""
        if self._warm_up is not None:
            try:
                self._warm_up.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        return self.fusion

    def close(self) -> None:
        """End the compile's child process, if it runs."""
        if self._warm_up is not None:
            self._warm_up.stop()

    # -- diagnostics -------------------------------------------------------------------------

    @torch.no_grad()
    def operator_agreement(self, batch: Batch) -> dict[str, float]:
        """How the critics rank the actor's mean action against the operator's, on ``batch``'s operator-driven rows.

        ``critic_prefers_policy``: the share of those rows where the ensemble's mean Q of the actor's action is at least
        that of the operator's; ``policy_operator_gap``: the mean distance between the two actions (unit box). A high
        share while the gap is large means the critics are optimistic about actions the operator never lets run there
        (nothing in the data penalises them) and the actor follows that optimism. NaN without operator-driven rows."""
        human = batch.interventions if batch.interventions is not None else torch.zeros(len(batch.actions), dtype=torch.bool)
        if not bool(human.any()):
            return {"critic_prefers_policy": math.nan, "policy_operator_gap": math.nan}
        obs = self.features(batch.observations, batch.images)[human]
        operator = batch.actions[human]
        policy = self.actor(obs)
        prefers = (self.critic(obs, policy).mean(0) >= self.critic(obs, operator).mean(0)).float().mean()
        return {"critic_prefers_policy": float(prefers), "policy_operator_gap": float((policy - operator).norm(dim=-1).mean())}

    # -- warm start on the prior data (before the policy first acts) -------------------------

    def warm_start_step(self, prior: ReplayBuffer, rng: np.random.Generator) -> dict[str, Tensor]:
        """One critic update on prior data and one behaviour-cloning step of the actor's mean towards
        the operator's actions. Without it the first policy is random: it stalls, the operator drives
        nearly every step, and the online buffer the critic needs to judge the actor stays empty."""
        batch = prior.sample(self.config.batch_size, rng, self.device)
        info = self.update_critic(batch)
        features = self.features(batch.observations, batch.images).detach()
        return {**info, "bc_loss": behaviour_cloning_step(self.actor, self.actor_opt, features, batch.actions)}

    # -- the UTD loop ----------------------------------------------------------------------

    def update(self, batch: Batch) -> dict[str, Tensor]:
        """``utd_ratio`` critic updates on minibatches of ``batch`` ([utd_ratio * batch_size]), then the actor."""
        minibatches = batch.split(self.config.utd_ratio)
        for minibatch in minibatches:
            critic_info = self.update_critic(minibatch)
        actor_info = self.update_actor(minibatches[-1])
        self.updates += 1
        return {**critic_info, **actor_info}

    def train_step(self, prior: ReplayBuffer, online: ReplayBuffer, rng: np.random.Generator) -> dict[str, Tensor]:
        """Sample utd_ratio minibatches, half prior (demos + interventions), half online, and update."""
        size = self.config.utd_ratio * self.config.batch_size
        return self.update(sample_symmetric(prior, online, size, rng, self.device))

    # -- checkpoints -------------------------------------------------------------------------

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"policy": self.policy, "critic": self.critic, "target_critic": self.target_critic}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_opt, "critic": self.critic_opt, "temperature": self.temp_opt}

    def extra_tensors(self) -> dict[str, Tensor]:
        return {"log_temp": self.log_temp}
