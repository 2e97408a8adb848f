"""The one registry of learning algorithms and methods.

An **algorithm** is a learner: its networks and update rule (``rlpd``, ``hgdagger``, ``pvp``,
``haco``). Its name travels in weights and checkpoints. A **method** is what a user picks: an
algorithm plus how its data is labelled, weighted and collected (RLIF is RLPD on intervention
rewards; DAgger, IWR, Sirius, DART, BC and ThriftyDAgger are the supervised learner, each
labelled, weighted or driven its own way).

Everything that lists methods or algorithms reads these tables: the trainer, the weights and the
policy, ``iil-robot sim`` and ``replay --train``, the headless learning loop and its benchmark.
Adding a learner: its module under ``learners/``, an :class:`Algorithm` here, a field of
:class:`iil_robot.learners.configs.LearnerConfigs`, and one or more :class:`Method` entries.

This module imports nothing heavy (no torch), so command lines can list the choices quickly;
learner and config classes are named by import path and loaded when used.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

__all__ = ["ACTORS", "ALGORITHMS", "METHODS", "OPERATOR_ROLES", "Algorithm", "Method", "algorithm", "method"]

ACTORS = ("tanh_gaussian", "ensemble")
"""What a policy acts with: a tanh-Gaussian actor (its mean), or a supervised ensemble (its mean or a mode)."""
OPERATOR_ROLES = ("human_gated", "dagger", "robot_gated")
"""How the operator takes part: steps in when they judge it needed; labels every step and drives with probability
β (DAgger); steps in when the policy asks for help (ThriftyDAgger)."""

UPDATES_PER_STEP = 0.5
"""Every method's budget of learner updates per env step (``Method.updates_per_step``): at 20 Hz, 10 updates/s."""


@dataclass(frozen=True)
class Algorithm:
    """A learner: its networks, update rule and config."""

    name: str
    """The name weights, checkpoints and the policy node's ``algorithms`` use."""
    learner_path: str
    """``module:Class`` of the learner (``obs_dim, act_dim, config, action_box, device`` [, ``image``])."""
    config_path: str
    """``module:Class`` of its config dataclass (a field of ``LearnerConfigs`` named after the algorithm)."""
    actor: str
    """What its policy acts with (one of ``ACTORS``)."""
    value_based: bool
    """Learns critics from rewards: learns from the policy's own steps too, its prior buffer holds the operator's
    transitions, and it warm-starts with ``warm_start_step``. Otherwise supervised: its prior buffer holds the
    operator-labelled samples, and it needs at least one before training."""
    images: bool
    """Takes camera images (a DrQ encoder) besides the state."""
    summary: str
    """One line for help texts."""

    def learner_class(self) -> type:
        return _load(self.learner_path)

    def config_class(self) -> type:
        return _load(self.config_path)


@dataclass(frozen=True)
class Method:
    """What a user picks: an algorithm plus how its data is labelled, weighted and collected."""

    name: str
    algorithm: str
    """Key of ``ALGORITHMS``."""
    summary: str
    """One line for help texts."""
    label_every_step: bool = False
    """Every visited step the operator labelled is a sample (DAgger; ``LabelConfig.label_every_step``)."""
    weighting: str = "none"
    """How the supervised learner samples its data (``HGDAggerConfig.weighting``: none, iwr, sirius)."""
    goal_critic: bool = False
    """Also learn the goal critic Q_G that ThriftyDAgger's help requests use (``HGDAggerConfig.goal_critic``)."""
    operator: str = "human_gated"
    """How the operator takes part (one of ``OPERATOR_ROLES``)."""
    operator_noise: bool = False
    """DART: noise is injected into the operator's commands (the clean commands are the labels)."""
    interactive: bool = True
    """Learns from the interactive episodes. False: trains on the demos once, then acts frozen (BC)."""
    updates_per_step: float = UPDATES_PER_STEP
    """The learner's budget: updates per env step (an RLPD update is ``utd_ratio`` critic updates and one actor update).
    The learning benchmark gives the method this many; the learner node reports its live ratio against it, and the
    console says when it falls behind."""

    @property
    def images(self) -> bool:
        """Whether the method can learn camera policies (its algorithm takes images)."""
        return ALGORITHMS[self.algorithm].images


def _load(path: str) -> type:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in (
    Algorithm("rlpd", "iil_robot.learners.rlpd:RLPDLearner", "iil_robot.learners.rlpd:RLPDConfig", "tanh_gaussian",
              value_based=True, images=True, summary="RLPD: SAC with a LayerNorm critic ensemble, 50/50 prior and online data"),
    Algorithm("hgdagger", "iil_robot.learners.hgdagger:HGDAggerLearner", "iil_robot.learners.hgdagger:HGDAggerConfig",
              "ensemble", value_based=False, images=True,
              summary="supervised ensemble on the operator's commands (its disagreement is the policy's doubt)"),
    Algorithm("pvp", "iil_robot.learners.pvp:PVPLearner", "iil_robot.learners.pvp:PVPConfig", "tanh_gaussian",
              value_based=True, images=False, summary="proxy value propagation: TD3 with ±1 proxy values on interventions"),
    Algorithm("haco", "iil_robot.learners.haco:HACOLearner", "iil_robot.learners.haco:HACOConfig", "tanh_gaussian",
              value_based=True, images=False, summary="human-AI copilot optimisation: SAC with a conservative proxy value"),
)}

METHODS: dict[str, Method] = {m.name: m for m in (
    Method("rlif", "rlpd", "RL from intervention feedback: reward -1 on the step before each takeover, RLPD"),
    Method("hgdagger", "hgdagger", "HG-DAgger: supervised learning on demos and interventions"),
    Method("bc", "hgdagger", "behaviour cloning on the initial demos, then frozen (a baseline)", interactive=False),
    Method("dagger", "hgdagger", "DAgger: the operator labels every step and drives with probability β",
           label_every_step=True, operator="dagger"),
    Method("iwr", "hgdagger", "intervention-weighted regression: interventions and robot steps, rebalanced",
           weighting="iwr"),
    Method("sirius", "hgdagger", "Sirius: every step, weighted by its class (demo, intervention, pre-intervention, robot)",
           weighting="sirius"),
    Method("dart", "hgdagger", "DART: HG-DAgger with noise injected into the operator's commands", operator_noise=True),
    Method("pvp", "pvp", "proxy value propagation (PVP)"),
    Method("haco", "haco", "human-AI copilot optimisation (HACO)"),
    Method("thrifty", "hgdagger", "ThriftyDAgger: the policy asks for help when unsure or at risk (goal critic Q_G)",
           goal_critic=True, operator="robot_gated"),
)}


def algorithm(name: str) -> Algorithm:
    """The algorithm called ``name``.

    Raises:
        ValueError: no such algorithm (the message lists them).
    """
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise ValueError(f"algorithm {name!r} is unknown; choose one of {sorted(ALGORITHMS)}") from None


def method(name: str) -> Method:
    """The method called ``name``.

    Raises:
        ValueError: no such method (the message lists them).
    """
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"method {name!r} is unknown; choose one of {list(METHODS)}") from None


def _check() -> None:
    for m in METHODS.values():
        if m.algorithm not in ALGORITHMS or m.operator not in OPERATOR_ROLES:
            raise ValueError(f"method {m.name!r}: algorithm {m.algorithm!r} or operator {m.operator!r} is unknown")
    for a in ALGORITHMS.values():
        if a.actor not in ACTORS:
            raise ValueError(f"algorithm {a.name!r}: actor {a.actor!r} is not one of {ACTORS}")


_check()
