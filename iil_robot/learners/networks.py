"""Networks of the learners: MLPs, a tanh-Gaussian actor, and ensembles with stacked weights.

An ensemble keeps the weights of its E members stacked (``[E, in, out]``) and runs all of them
in one batched matmul (``torch.baddbmm``) instead of a Python loop over E modules; LayerNorm is
applied per member with stacked affine parameters. ``LoopEnsembleCritic`` is the same critic
as E separate modules, kept only so the benchmark can compare the two in one run.

``Policy`` is what travels to the policy node: the acting part of a learner (the actor for
RLPD, the BC ensemble for HG-DAgger) with the observation normaliser and the action scaling,
so an exported state dict is self-contained.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from iil_robot.learners.methods import algorithm

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # as in ikostrikov/rlpd's TanhNormal actor
HEADS = ("l2", "mixture")
"""Action heads of the supervised learners (``PolicyShape.head``)."""
GOAL_MEMBERS = 2
"""Members of the goal critic Q_G (two, averaged: a little less noise than one)."""


class EnsembleLinear(nn.Module):
    """E independent linear layers: ``[E, B, in] -> [E, B, out]`` in one batched matmul."""

    def __init__(self, members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)  # nn.Linear's default init, per member
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, out_features).uniform_(-bound, bound))

    def forward(self, x: Tensor, members: Tensor | None = None) -> Tensor:
        weight, bias = (self.weight, self.bias) if members is None else (self.weight[members], self.bias[members])
        if weight.shape[-1] == 1:
            # a value head: one dot product per row; multiply-and-sum is several times faster on a CPU than a
            # batched GEMM with a single output column
            return (x * weight.mT).sum(-1, keepdim=True) + bias
        if x.dim() == 2:  # the same input for every member: broadcast it (a stride-0 view, no copy)
            x = x.expand(weight.shape[0], *x.shape)
        # the output comes out contiguous [E, B, out]: a [B, E*out] GEMM would need a transposing copy of the
        # widest activation forwards and backwards, which on CPU costs more than the GEMM it saves
        return torch.baddbmm(bias, x, weight)


LAYER_NORM_EPS = 1e-5  # nn.LayerNorm's


class _LayerNormReLU(torch.autograd.Function):
    """relu(bias + weight * layer_norm(x)) with per-member affine parameters ``[E, 1, F]``, as one autograd node.

    Composed from autograd's pieces the same layer costs about twice a shared-affine ``nn.LayerNorm`` on a CPU, and
    the critic update runs four of them: PyTorch's CPU LayerNorm is twice as slow without a weight (``weight=None``
    takes a scalar path), and ``addcmul``'s backward multiplies the gradient by each operand in full. Here the
    normalisation gets a unit weight, and the backward does each product once."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        x = x.float()  # a bfloat16 matmul's output under autocast: normalise in float32 (autograd casts the grad back)
        features = x.shape[-1:]
        unit = torch.ones(features, dtype=x.dtype, device=x.device)
        normalized, mean, rstd = torch.native_layer_norm(x, features, unit, None, LAYER_NORM_EPS)
        y = torch.addcmul(bias, normalized, weight).relu_()
        ctx.save_for_backward(x, weight, normalized, y, mean, rstd)
        return y

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        x, weight, normalized, y, mean, rstd = ctx.saved_tensors
        grad = torch.ops.aten.threshold_backward(grad, y, 0)
        grad_weight = (grad * normalized).sum(-2, keepdim=True) if ctx.needs_input_grad[1] else None
        grad_bias = grad.sum(-2, keepdim=True) if ctx.needs_input_grad[2] else None
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_normalized = grad.mul_(weight)  # threshold_backward's output is ours to overwrite
            grad_x = torch.ops.aten.native_layer_norm_backward(grad_normalized, x, x.shape[-1:], mean, rstd, None, None,
                                                               [True, False, False])[0]
        return grad_x, grad_weight, grad_bias


class EnsembleLayerNormReLU(nn.Module):
    """LayerNorm over the features of each member, with per-member affine parameters, followed by ReLU
    (the critics' hidden layer: Dense -> LayerNorm -> ReLU)."""

    def __init__(self, members: int, features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(members, 1, features))
        self.bias = nn.Parameter(torch.zeros(members, 1, features))

    def forward(self, x: Tensor, members: Tensor | None = None) -> Tensor:
        weight, bias = (self.weight, self.bias) if members is None else (self.weight[members], self.bias[members])
        return _LayerNormReLU.apply(x, weight, bias)


class EnsembleMLP(nn.Module):
    """E MLPs with stacked weights: hidden layers (optionally LayerNorm) with ReLU, linear output."""

    def __init__(self, members: int, in_features: int, hidden: tuple[int, ...], out_features: int, layer_norm: bool) -> None:
        super().__init__()
        self.members = members
        sizes = (in_features, *hidden)
        self.linears = nn.ModuleList(EnsembleLinear(members, a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.norms = nn.ModuleList(EnsembleLayerNormReLU(members, b) for b in hidden) if layer_norm else None
        self.out = EnsembleLinear(members, sizes[-1], out_features)

    def forward(self, x: Tensor, members: Tensor | None = None) -> Tensor:
        """``x`` [B, in] (shared) or [E, B, in] -> [E, B, out]; ``members`` picks a subset."""
        for i, linear in enumerate(self.linears):
            x = linear(x, members)
            # in place: the bias add keeps no output for backward
            x = F.relu(x, inplace=True) if self.norms is None else self.norms[i](x, members)
        return self.out(x, members)


class EnsembleCritic(nn.Module):
    """E Q-functions Q(s, a) with stacked weights (RLPD: LayerNorm critics). Output [E, B]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], members: int, layer_norm: bool) -> None:
        super().__init__()
        self.members = members
        self.net = EnsembleMLP(members, obs_dim + act_dim, hidden, 1, layer_norm)

    def forward(self, obs: Tensor, act: Tensor, members: Tensor | None = None) -> Tensor:
        return self.net(torch.cat([obs, act], dim=-1), members).squeeze(-1).float()  # float32 values under autocast too


def mlp(in_features: int, hidden: tuple[int, ...], out_features: int, layer_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for size in hidden:
        layers += [nn.Linear(in_features, size)] + ([nn.LayerNorm(size)] if layer_norm else []) + [nn.ReLU()]
        in_features = size
    return nn.Sequential(*layers, nn.Linear(in_features, out_features))


class LoopEnsembleCritic(nn.Module):
    """The same ensemble as E separate modules run in a Python loop (benchmark baseline only)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], members: int, layer_norm: bool) -> None:
        super().__init__()
        self.members = members
        self.critics = nn.ModuleList(mlp(obs_dim + act_dim, hidden, 1, layer_norm) for _ in range(members))

    def forward(self, obs: Tensor, act: Tensor, members: Tensor | None = None) -> Tensor:
        x = torch.cat([obs, act], dim=-1)
        chosen = range(self.members) if members is None else members.tolist()
        return torch.stack([self.critics[i](x).squeeze(-1) for i in chosen]).float()  # float32 under autocast too


class TanhGaussianActor(nn.Module):
    """SAC actor: a tanh-squashed Gaussian with state-dependent std, actions in [-1, 1]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.trunk = (mlp(obs_dim, hidden[:-1], hidden[-1], layer_norm=False) if len(hidden) > 1
                      else nn.Linear(obs_dim, hidden[-1]))
        self.head = nn.Linear(hidden[-1], 2 * act_dim)

    def _mean_log_std(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_std = self.head(F.relu(self.trunk(obs))).float().chunk(2, dim=-1)  # float32 under autocast too
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """Reparameterised action in [-1, 1] and its log-probability [B]."""
        mean, log_std = self._mean_log_std(obs)
        u = mean + log_std.exp() * torch.randn_like(mean)
        log_prob = (-0.5 * ((u - mean) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        # log|d tanh(u)/du| = 2 (log 2 - u - softplus(-2u)), the stable form of log(1 - tanh(u)^2)
        log_prob = log_prob - (2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(-1)
        return torch.tanh(u), log_prob

    def forward(self, obs: Tensor) -> Tensor:
        """Deterministic action: tanh of the mean."""
        return torch.tanh(self._mean_log_std(obs)[0])


class EnsembleActor(nn.Module):
    """HG-DAgger: E deterministic policies with stacked weights, actions in [-1, 1]. Output [E, B, A]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], members: int, layer_norm: bool = False) -> None:
        super().__init__()
        self.members = members
        self.net = EnsembleMLP(members, obs_dim, hidden, act_dim, layer_norm)

    def forward(self, obs: Tensor) -> Tensor:
        return torch.tanh(self.net(obs))


class MixtureEnsembleActor(nn.Module):
    """Supervised learners' expressive head: E members, each a K-component Gaussian mixture over the
    unit-box action (diagonal covariances, means squashed by tanh), so that two ways round an
    obstacle are kept as two modes instead of being averaged into a crash (robomimic's GMM head).

    ``forward`` gives each member's mode, the mean of its most likely component, ``[E, B, A]``;
    ``act`` pools the E·K components of all members (weights π/E) and returns the mean of the most
    likely one, so members that pick different sides are never averaged either.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], members: int, components: int,
                 min_std: float = 0.01) -> None:
        super().__init__()
        self.members, self.components, self.act_dim, self.min_std = members, components, act_dim, min_std
        self.net = EnsembleMLP(members, obs_dim, hidden, components * (1 + 2 * act_dim), layer_norm=False)

    def distribution(self, obs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Log mixture weights [E, B, K], means [E, B, K, A] in (-1, 1), stds [E, B, K, A]."""
        out = self.net(obs)
        k, a = self.components, self.act_dim
        logits, means, stds = out.split((k, k * a, k * a), dim=-1)
        means = torch.tanh(means.unflatten(-1, (k, a)))
        stds = F.softplus(stds.unflatten(-1, (k, a))) + self.min_std
        return F.log_softmax(logits, dim=-1), means, stds

    def log_prob(self, obs: Tensor, actions: Tensor) -> Tensor:
        """log p(a | o) of each member's mixture. ``obs`` [E, B, obs] or [B, obs], ``actions`` [E, B, A] -> [E, B]."""
        log_weights, means, stds = self.distribution(obs)
        assert actions.shape == means.shape[:2] + means.shape[3:], (actions.shape, means.shape)
        per_component = torch.distributions.Normal(means, stds).log_prob(actions.unsqueeze(-2)).sum(-1)
        return torch.logsumexp(log_weights + per_component, dim=-1)

    def forward(self, obs: Tensor) -> Tensor:
        log_weights, means, _ = self.distribution(obs)
        best = log_weights.argmax(-1)[..., None, None].expand(*means.shape[:2], 1, means.shape[-1])
        return means.gather(2, best).squeeze(2)

    def act(self, obs: Tensor) -> Tensor:
        """The mean of the most likely component over all members' components. [B, obs] -> [B, A]."""
        log_weights, means, _ = self.distribution(obs)
        pooled_weights = log_weights.permute(1, 0, 2).flatten(1)  # [B, E*K]; the 1/E factor changes no argmax
        pooled_means = means.permute(1, 0, 2, 3).flatten(1, 2)  # [B, E*K, A]
        best = pooled_weights.argmax(-1)
        return pooled_means[torch.arange(len(best), device=best.device), best]


def doubt(actions: Tensor) -> Tensor:
    """HG-DAgger's doubt: the L2 norm of the diagonal of the ensemble's action covariance. [E, B, A] -> [B]."""
    return actions.var(dim=0, unbiased=False).norm(dim=-1)


# -- images (DrQ, Kostrikov et al. 2020; Yarats et al. 2021) ------------------------------------


def random_shift(images: Tensor, pad: int, generator: torch.Generator | None = None) -> Tensor:
    """DrQ's augmentation: pad each image by ``pad`` pixels (replicating the border) and crop it
    back at a random offset in [0, 2 * pad] per image, i.e. shift it by up to ``pad`` pixels.
    [B, C, H, W] -> [B, C, H, W], same dtype."""
    if pad == 0:
        return images
    b, c, h, w = images.shape
    padded = F.pad(images.float(), (pad, pad, pad, pad), mode="replicate").to(images.dtype)
    shifts = torch.randint(0, 2 * pad + 1, (2, b), generator=generator, device=generator.device if generator else images.device)
    shifts = shifts.to(images.device)
    rows = (shifts[0, :, None] + torch.arange(h, device=images.device))[:, None, :, None]  # [B, 1, H, 1]
    cols = (shifts[1, :, None] + torch.arange(w, device=images.device))[:, None, None, :]  # [B, 1, 1, W]
    batch = torch.arange(b, device=images.device)[:, None, None, None]
    channel = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


class ConvEncoder(nn.Module):
    """DrQ's image encoder, trained from scratch: four 3x3 convolutions of 32 filters (the first
    with stride 2), then a linear layer to ``features`` with LayerNorm and tanh.
    uint8 [B, C, H, W] (0..255) -> [B, features]."""

    def __init__(self, image: tuple[int, ...], features: int = 50, filters: int = 32) -> None:
        super().__init__()
        channels, height, width = image
        self.convs = nn.Sequential(
            nn.Conv2d(channels, filters, 3, stride=2), nn.ReLU(),
            nn.Conv2d(filters, filters, 3, stride=1), nn.ReLU(),
            nn.Conv2d(filters, filters, 3, stride=1), nn.ReLU(),
            nn.Conv2d(filters, filters, 3, stride=1), nn.ReLU(),
        )
        out_h, out_w = (height - 3) // 2 + 1 - 6, (width - 3) // 2 + 1 - 6
        if out_h < 1 or out_w < 1:
            raise ValueError(f"image {height}x{width} is too small for the encoder (at least 17x17 pixels)")
        self.head = nn.Sequential(nn.Linear(filters * out_h * out_w, features), nn.LayerNorm(features), nn.Tanh())
        self.features = features

    def forward(self, images: Tensor) -> Tensor:
        x = images.float() / 255.0 - 0.5
        return self.head(self.convs(x).flatten(1))


@dataclass(frozen=True)
class PolicyShape:
    """Everything needed to build a ``Policy`` before loading weights into it."""

    algorithm: str
    """``rlpd``, ``pvp``, ``haco`` (TanhGaussianActor) or ``hgdagger`` (EnsembleActor)."""
    obs_dim: int
    act_dim: int
    hidden: tuple[int, ...]
    ensemble: int = 1
    """Members of the HG-DAgger ensemble (1 for RLPD)."""
    head: str = "l2"
    """Supervised learners' action head: ``l2`` (deterministic, MSE) or ``mixture`` (Gaussian mixture)."""
    components: int = 1
    """Gaussian components per member of a ``mixture`` head."""
    image: tuple[int, ...] = ()
    """Camera image (channels, height, width) the policy also sees; empty = state only."""
    image_features: int = 50
    """Size of the image encoder's output (DrQ: 50)."""
    goal_critic: bool = False
    """Carries ThriftyDAgger's goal-probability critic Q_G(s, a) (supervised learners, state-only policies)."""

    @property
    def input_dim(self) -> int:
        """Width of the actor's input: the normalised state, plus the image features."""
        return self.obs_dim + (self.image_features if self.image else 0)


class Policy(nn.Module):
    """The acting network as the policy node runs it: normalise, act, scale to the action box."""

    def __init__(self, shape: PolicyShape) -> None:
        super().__init__()
        self.shape = shape
        if shape.head not in HEADS or shape.components < 1:
            raise ValueError(f"head {shape.head!r} with {shape.components} components: expected one of {HEADS}, components >= 1")
        # the image encoder belongs to the policy (it travels with the weights); the critics share it
        self.encoder = ConvEncoder(shape.image, shape.image_features) if shape.image else None
        self.acts_with = algorithm(shape.algorithm).actor
        if self.acts_with == "tanh_gaussian":
            self.actor: nn.Module = TanhGaussianActor(shape.input_dim, shape.act_dim, shape.hidden)
        elif shape.head == "mixture":
            self.actor = MixtureEnsembleActor(shape.input_dim, shape.act_dim, shape.hidden, shape.ensemble, shape.components)
        else:
            self.actor = EnsembleActor(shape.input_dim, shape.act_dim, shape.hidden, shape.ensemble)
        self.goal_critic: EnsembleCritic | None = None
        if shape.goal_critic:
            if self.acts_with != "ensemble" or shape.image:
                raise ValueError(f"a goal critic (Q_G) is for state-only supervised policies, not {shape.algorithm!r}"
                                 f"{' with a camera' if shape.image else ''}")
            self.goal_critic = EnsembleCritic(shape.obs_dim, shape.act_dim, shape.hidden, GOAL_MEMBERS, layer_norm=False)
        self.register_buffer("obs_mean", torch.zeros(shape.obs_dim))
        self.register_buffer("obs_std", torch.ones(shape.obs_dim))
        self.register_buffer("action_low", -torch.ones(shape.act_dim))
        self.register_buffer("action_high", torch.ones(shape.act_dim))

    def normalize(self, obs: Tensor) -> Tensor:
        return (obs - self.obs_mean) / self.obs_std

    def to_unit(self, actions: Tensor) -> Tensor:
        """Actions in the action box -> the unit box [-1, 1] the networks work in (clipped)."""
        return (2.0 * (actions - self.action_low) / (self.action_high - self.action_low) - 1.0).clamp(-1.0, 1.0)

    def goal_probability(self, obs: Tensor, actions: Tensor) -> Tensor:
        """ThriftyDAgger's Q_G(s, a), the learned probability of reaching the goal from s taking a: the mean of
        the members' sigmoid outputs. Observations [B, obs_dim], actions [B, act_dim] in the action box -> [B]."""
        if self.goal_critic is None:
            raise ValueError("this policy has no goal critic (Q_G): train it with hgdagger.goal_critic")
        return torch.sigmoid(self.goal_critic(self.normalize(obs), self.to_unit(actions))).mean(0)

    @torch.no_grad()
    def scale_to(self, low: tuple[float, ...], high: tuple[float, ...]) -> "Policy":
        """Act in the box [low, high] (physical units, e.g. ``ActionBox``); returns the policy."""
        self.action_low.copy_(torch.tensor(low))
        self.action_high.copy_(torch.tensor(high))
        return self

    @torch.no_grad()
    def fit_normalization(self, observations: Tensor, min_std: float) -> None:
        """Per-feature mean and std of ``observations`` [N, obs_dim], std floored at ``min_std``.

        Arm observations are absolute positions (about 1 m) whose task-relevant differences are a few
        centimetres; standardising makes those differences order 1 for the networks. The floor keeps a
        feature that was constant in the data (a closed gripper) from blowing up when it later moves."""
        self.obs_mean.copy_(observations.mean(0))
        self.obs_std.copy_(observations.std(0, unbiased=False).clamp_min(min_std))

    def features(self, obs: Tensor, images: Tensor | None = None) -> Tensor:
        """The actor's input: normalised observations [B, obs_dim], with the encoded images [B, C, H, W]
        appended when the policy sees a camera. -> [B, input_dim]"""
        x = self.normalize(obs)
        if self.encoder is None:
            return x
        if images is None:
            raise ValueError(f"this policy needs camera images of shape {self.shape.image}")
        return torch.cat([x, self.encoder(images)], dim=-1)

    def forward(self, obs: Tensor, images: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Observations [B, obs_dim] (and images [B, C, H, W] uint8 for a camera policy) ->
        (actions [B, act_dim] in the action box, doubt [B] or None)."""
        x = self.features(obs, images)
        if self.acts_with == "tanh_gaussian":
            unit, uncertainty = self.actor(x), None
        elif self.shape.head == "mixture":
            unit, uncertainty = self.actor.act(x), doubt(self.actor(x))  # a mode, never an average of modes
        else:
            members = self.actor(x)
            unit, uncertainty = members.mean(0), doubt(members)
        return self.action_low + (unit + 1.0) * 0.5 * (self.action_high - self.action_low), uncertainty


def adam(params, lr: float) -> torch.optim.Adam:
    """The learners' optimiser: fused Adam, one kernel per step instead of one per tensor (CPU and CUDA)."""
    return torch.optim.Adam(params, lr=lr, fused=True)


def behaviour_cloning_step(actor: nn.Module, optimizer: torch.optim.Optimizer, inputs: Tensor, actions: Tensor) -> Tensor:
    """One step of the actor's deterministic action towards ``actions`` (unit box, mean squared error);
    the learners' warm start on the operator's data. Returns the loss (detached)."""
    loss = ((actor(inputs) - actions) ** 2).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()
