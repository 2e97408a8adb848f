"""Step records -> Transitions, for the live learner.

TEMPORARY SHIM: ``rlif_transitions`` is a minimal stand-in for ``iil_robot.labels`` (being
written in parallel, with the bag reader). Replace ``DEFAULT_LABEL_FN`` by the labels module's
function when it lands; the learner only depends on the ``LabelFn`` signature.

RLIF rule (Luo et al. 2023): reward -1 on the transition whose next step has ``onset`` true,
0 otherwise. A chain of consecutive records ends where ``tick`` restarts or jumps (a new mux or
lost records), where a record has no observation, where the observation size changes, or at an
episode event (``LiveLabeller.boundary``). No transition links across a chain end.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..records import StepRecord
from ..transitions import TRANSLATION_GRIPPER, StepClass, Transitions

LabelFn = Callable[[Sequence[StepRecord]], Transitions]
PRE_INTERVENTION_STEPS = 10
"""Policy steps before an onset that get the PRE_INTERVENTION class (within one call)."""


def _chains(records: Sequence[StepRecord]) -> list[list[StepRecord]]:
    chains: list[list[StepRecord]] = []
    current: list[StepRecord] = []
    for record in records:
        linked = (current and record.observation is not None and record.tick == current[-1].tick + 1
                  and len(record.observation) == len(current[-1].observation or ()))
        if not linked:
            if len(current) > 1:
                chains.append(current)
            current = []
        if record.observation is not None:
            current.append(record)
    if len(current) > 1:
        chains.append(current)
    return chains


def rlif_transitions(records: Sequence[StepRecord]) -> Transitions:
    """Label consecutive step records with the RLIF reward. See the module docstring."""
    chains = _chains(records)
    if not chains:
        return Transitions.empty(len(next((r.observation for r in records if r.observation), ())), len(TRANSLATION_GRIPPER))
    obs_dim = len(chains[0][0].observation)
    parts = []
    for chain in chains:
        if len(chain[0].observation) != obs_dim:
            continue  # another observation layout: its own call labels it
        obs = np.asarray([r.observation for r in chain], np.float32)
        n = len(chain) - 1
        onset_next = np.array([r.onset for r in chain[1:]])
        interventions = np.array([r.intervention for r in chain[:-1]])
        classes = np.full(n, StepClass.ROBOT, np.int8)
        for i in np.flatnonzero(onset_next):
            classes[max(0, i + 1 - PRE_INTERVENTION_STEPS):i + 1] = StepClass.PRE_INTERVENTION
        classes[interventions] = StepClass.INTERVENTION
        if interventions.all():
            classes[:] = StepClass.DEMO
        truncations = np.zeros(n, bool)
        truncations[-1] = True
        parts.append(Transitions(
            observations=obs[:-1],
            actions=np.asarray([[r.executed_action[i] for i in TRANSLATION_GRIPPER] for r in chain[:-1]], np.float32),
            rewards=np.where(onset_next, -1.0, 0.0).astype(np.float32),
            next_observations=obs[1:],
            terminals=np.zeros(n, bool),
            truncations=truncations,
            interventions=interventions,
            classes=classes,
        ))
    return Transitions.concatenate(parts)


DEFAULT_LABEL_FN: LabelFn = rlif_transitions


class LiveLabeller:
    """Labels step records as they arrive, linking each batch to the last record of the one before."""

    def __init__(self, label_fn: LabelFn = DEFAULT_LABEL_FN) -> None:
        self.label_fn = label_fn
        self.carry: StepRecord | None = None

    def boundary(self) -> None:
        """An episode ended (episode event): the next record starts a new chain."""
        self.carry = None

    def add(self, records: Sequence[StepRecord]) -> Transitions | None:
        if not records:
            return None
        sequence = ([self.carry] if self.carry is not None else []) + list(records)
        self.carry = records[-1]
        out = self.label_fn(sequence)
        return out if len(out) else None
