"""The configs of every learner, travelling together, and what a method sets in them.

Every entry point (the learner node, ``replay --train``, the learning loop, the benchmarks) hands
one :class:`LearnerConfigs` to the trainer, so none can drop a learner's config or its seed.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from iil_robot.data.labels import LabelConfig
from iil_robot.learners.haco import HACOConfig
from iil_robot.learners.hgdagger import HGDAggerConfig
from iil_robot.learners.methods import ALGORITHMS, Method
from iil_robot.learners.pvp import PVPConfig
from iil_robot.learners.rlpd import RLPDConfig

__all__ = ["LearnerConfigs", "configure"]


@dataclass(frozen=True)
class LearnerConfigs:
    """One config per algorithm of ``ALGORITHMS``, each under the algorithm's name."""

    rlpd: RLPDConfig = field(default_factory=RLPDConfig)
    hgdagger: HGDAggerConfig = field(default_factory=HGDAggerConfig)
    pvp: PVPConfig = field(default_factory=PVPConfig)
    haco: HACOConfig = field(default_factory=HACOConfig)

    def of(self, algorithm: str) -> Any:
        """The config of ``algorithm``."""
        return getattr(self, algorithm)

    def updated(self, algorithm: str, **changes: Any) -> LearnerConfigs:
        """These configs with ``changes`` made to ``algorithm``'s."""
        return replace(self, **{algorithm: replace(self.of(algorithm), **changes)})

    def seeded(self, seed: int) -> LearnerConfigs:
        """Every learner's config with ``seed``."""
        return LearnerConfigs(**{f.name: replace(getattr(self, f.name), seed=seed) for f in fields(self)})

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


if {f.name for f in fields(LearnerConfigs)} != set(ALGORITHMS) or any(
        f.type != ALGORITHMS[f.name].config_path.split(":")[1] for f in fields(LearnerConfigs)):
    raise ImportError("LearnerConfigs must have one field per algorithm of learners/methods.py, typed with its config class")


def configure(method: Method, configs: LearnerConfigs, labels: LabelConfig) -> tuple[LearnerConfigs, LabelConfig]:
    """The configs and labelling that ``method`` trains with: its sampling scheme (and its goal critic, which
    ``hgdagger.goal_critic`` also turns on for any supervised method) in the supervised learner's config, its
    labelling in ``labels``.

    Raises:
        ValueError: a config sets one of these to another value than the method's (e.g. ``hgdagger.weighting``
            ``iwr`` with method ``hgdagger``): the method decides them.
    """
    wanted = {("hgdagger", "weighting"): method.weighting, ("labels", "label_every_step"): method.label_every_step}
    defaults = {"hgdagger": HGDAggerConfig(), "labels": LabelConfig()}
    given = {"hgdagger": configs.hgdagger, "labels": labels}
    for (group, name), value in wanted.items():
        have = getattr(given[group], name)
        if have != getattr(defaults[group], name) and have != value:
            raise ValueError(f"{group}.{name} {have!r} does not fit method {method.name!r}, which sets {value!r}: "
                             f"leave {group}.{name} at its default and choose the method that does what you want")
    hgdagger = replace(configs.hgdagger, weighting=method.weighting,
                       goal_critic=configs.hgdagger.goal_critic or method.goal_critic)
    return replace(configs, hgdagger=hgdagger), replace(labels, label_every_step=method.label_every_step)
