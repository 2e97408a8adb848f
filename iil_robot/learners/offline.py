"""Offline training from labelled data (``iil-robot replay BAGS --train``): the live learner's
``Trainer`` fed all at once, trained for a fixed number of updates, saved.

The output directory gets ``weights.safetensors`` (the weights message's bytes: the policy node
loads it as ``fallback: weights``, or it is published as is) and the ``Trainer``'s checkpoint, so a
learner node started with ``run_dir`` set to it continues from these networks (add ``bags_dir``
to rebuild its buffers from the same bags).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from iil_robot.data.actions import ActionConfig
from iil_robot.data.labels import LabelConfig, Labelled
from iil_robot.learners.configs import LearnerConfigs
from iil_robot.learners.memory import keep_freed_memory
from iil_robot.learners.trainer import Trainer, TrainerConfig

WEIGHTS_FILE = "weights.safetensors"


class OfflineTrainingError(ValueError):
    """The data cannot train the chosen learner, or the output directory is in use."""


@dataclass(frozen=True)
class OfflineResult:
    weights: Path
    """The weights file."""
    checkpoint: Path
    """The checkpoint (networks, optimisers, counters)."""
    updates: int
    prior: int
    """Transitions in the prior buffer (RLPD: operator steps; HG-DAgger: its samples)."""
    online: int
    """Policy transitions."""
    seconds: float
    missing_frames: int = 0
    """Camera learners: rows left out because a camera frame of theirs was not in the bags."""
    missing_by_camera: dict[str, int] = field(default_factory=dict)
    """Camera learners, by camera: rows that lacked its frame (a row may lack several cameras')."""


def train_offline(labelled: Labelled, config: TrainerConfig, updates: int, configs: LearnerConfigs = LearnerConfigs(),
                  labels: LabelConfig = LabelConfig(), progress: Callable[[int], None] | None = None,
                  frames: Sequence[tuple[str, float, Any]] = (), observation_fields: Sequence[str] = (),
                  action: ActionConfig = ActionConfig()) -> OfflineResult:
    """Train ``config.method`` on ``labelled`` for ``updates`` updates; write weights and a checkpoint
    to ``config.run_dir``. A camera learner (``config.image``) pairs ``frames`` ((camera, header stamp, image
    message) from the bags) with the rows by their steps' ``image_stamps``, as the live learner does. The weights
    name ``observation_fields`` as their observation layout and act in ``action`` (``labelled`` must be labelled in
    its space and frame: ``labels.action_space``, ``labels.action_frame``).

    Raises:
        OfflineTrainingError: ``run_dir`` already holds a checkpoint, or there is no data to learn from.
    """
    if updates < 1:
        raise OfflineTrainingError(f"updates {updates} must be at least 1")
    keep_freed_memory()  # a training process: no page faults per update on CPU (see memory.py)
    trainer = Trainer(replace(config, min_transitions=1, bags_dir="", frame_buffer=max(config.frame_buffer, len(frames), 1)),
                      configs, labels, action)
    if labels.action_space != action.space:
        raise OfflineTrainingError(f"the rows are labelled in action space {labels.action_space!r}, the learner learns "
                                   f"{action.space!r}: label them in {action.space!r}")
    if labels.action_frame != action.frame:
        raise OfflineTrainingError(f"the rows are labelled in the {labels.action_frame} frame, the learner learns in the "
                                   f"{action.frame} frame: label them in the {action.frame} frame")
    if trainer.checkpoint_path.exists():
        raise OfflineTrainingError(f"{trainer.checkpoint_path} exists: choose another output directory or delete it")
    trainer.set_observation_layout(observation_fields)
    for camera, stamp, message in frames if config.image else ():
        trainer.add_image_message(camera, stamp, message)
    trainer.add_labelled(labelled)
    if not trainer.ready():
        raise OfflineTrainingError(
            f"nothing to train {config.method} on: the bags give {len(labelled.rlif)} transitions and "
            f"{len(labelled.dagger)} operator samples"
            + (f" ({trainer.missing_frames} rows left out: no camera frame with their image_stamps)"
               if trainer.missing_frames else "")
            + (" (HG-DAgger learns only from operator-controlled steps: record demos or interventions)"
               if not trainer.algorithm.value_based else ""))
    start = time.monotonic()
    for i in range(updates):
        trainer.update()
        if progress is not None:
            progress(i + 1)
    weights = Path(config.run_dir) / WEIGHTS_FILE
    weights.parent.mkdir(parents=True, exist_ok=True)
    weights.write_bytes(trainer.export())
    trainer.save()
    return OfflineResult(weights, trainer.checkpoint_path, trainer.learner.updates, len(trainer.prior),
                         len(trainer.online), time.monotonic() - start, trainer.missing_frames, trainer.missing_by_camera)
