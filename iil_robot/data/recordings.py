"""Recordings: what a set of bags holds for labelling, read with the ``rosbags`` library.

Every bag under the given paths is read (a session's parts together); step records and episode
events are split into episodes by :class:`iil_robot.data.episodes.EpisodeSplitter` and labelled by
:func:`iil_robot.data.labels.label_episodes`, the code the live learner runs. ``iil-robot replay``
is the command over this module; the learner node hands :func:`read_recording` to the trainer to
rebuild its buffers; offline training starts from :func:`training_data`.
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from iil_robot.data.bags import find_bags, read_messages
from iil_robot.data.episodes import Episode, EpisodeSplitter, EpisodeSummary, TickGaps
from iil_robot.data.frames import compressed_topic, stamp_seconds
from iil_robot.data.labels import LabelConfig, Labelled, label_episodes
from iil_robot.data.records import EpisodeEvent, Observation, RecordError, StepRecord
from iil_robot.data.transitions import Transitions

__all__ = ["DATASET_FORMAT", "DATASET_VERSION", "Recording", "export_dataset", "load_dataset", "load_recording",
           "read_bags_dir", "read_recording", "summarise", "training_data"]

DATASET_FORMAT = "iil_robot.dataset"
DATASET_VERSION = 1
log = logging.getLogger("iil_robot.recordings")


@dataclass
class Recording:
    """What a set of bags holds for labelling."""

    bags: list[Path]
    steps: list[StepRecord] = field(default_factory=list)
    events: list[EpisodeEvent] = field(default_factory=list)
    operator: str = ""
    task: str = ""
    undecodable: int = 0
    skipped: list[Path] = field(default_factory=list)
    """Bags without metadata.yaml left out by ``read_recording(..., skip_incomplete=True)``."""
    episodes: list[Episode] = field(default_factory=list)
    between_steps: int = 0
    observation_fields: tuple[str, ...] = ()
    """The observations' layout (the first named one on the observation topic); empty: not recorded or not named."""
    frames: list[tuple[str, float, Any]] = field(default_factory=list)
    """(camera, header stamp, image message) of the cameras read with ``cameras`` (for pairing by ``image_stamps``)."""


def load_recording(paths: list[str | Path], step_topic: str = "/step", event_topic: str = "/episode/event",
                   cameras: Sequence[str] = ()) -> Recording:
    """Read step records and episode events (and frames of ``cameras``) of every bag under ``paths`` and split episodes
    (the step records sorted by stamp, ties by tick)."""
    recording = read_recording(paths, step_topic, event_topic, cameras=cameras)
    splitter = EpisodeSplitter()
    for event in sorted(recording.events, key=lambda e: e.stamp):
        splitter.add_event(event)
    recording.steps.sort(key=lambda s: (s.stamp, s.tick))
    for step in recording.steps:
        recording.episodes += splitter.add_step(step)
    recording.episodes += splitter.flush()
    recording.between_steps = splitter.between_steps
    return recording


def read_recording(paths: list[str | Path], step_topic: str = "/step", event_topic: str = "/episode/event", *,
                   skip_incomplete: bool = False, cameras: Sequence[str] = (),
                   observation_topic: str = "/observation") -> Recording:
    """Read step records and episode events of every bag under ``paths`` (episodes not split yet).

    ``skip_incomplete`` leaves out bags without metadata.yaml (one the recorder is still writing
    before its first rotation, or one left by a crash) instead of raising. ``cameras`` also
    collects the frames of those cameras (their ``compressed_topic``, undecoded) into ``frames``. The observations' layout
    comes from the first named observation on ``observation_topic``.

    Raises:
        BagError: a path does not exist, holds no bag, or a bag cannot be read.
    """
    recording = Recording(find_bags(paths))
    frame_topics = {compressed_topic(camera): camera for camera in cameras}
    for bag in recording.bags:
        if skip_incomplete and not (bag / "metadata.yaml").exists():
            recording.skipped.append(bag)
            continue
        info = _recording_info(bag)
        recording.operator = recording.operator or info.get("operator", "")
        recording.task = recording.task or info.get("task", "")
        topics = [step_topic, event_topic, observation_topic, *frame_topics]
        for m in read_messages(bag, topics):
            if m.topic == observation_topic:
                if not recording.observation_fields:
                    recording.observation_fields = _layout(m.message.data)
                continue
            if m.topic in frame_topics:
                stamp = stamp_seconds(m.message.header.stamp.sec, m.message.header.stamp.nanosec)
                recording.frames.append((frame_topics[m.topic], stamp, m.message))
                continue
            try:
                if m.topic == step_topic:
                    recording.steps.append(StepRecord.decode(m.message.data))
                else:
                    recording.events.append(EpisodeEvent.decode(m.message.data))
            except RecordError as err:
                recording.undecodable += 1
                log.warning("skipped an undecodable record on %s in %s: %s", m.topic, bag, err)
    return recording


def _layout(text: str) -> tuple[str, ...]:
    try:
        return Observation.decode(text).fields
    except RecordError:
        return ()  # an undecodable observation names no layout; the next one may


def read_bags_dir(bags_dir: str | Path, step_topic: str = "/step", event_topic: str = "/episode/event",
                  cameras: Sequence[str] = ()) -> Recording | None:
    """What the learner rebuilds its buffers from: every complete bag under ``bags_dir`` (a bag the recorder
    is still writing is left out), or None where there is no bag yet.

    Raises:
        BagError: a bag cannot be read.
    """
    bags_dir = Path(bags_dir)
    if not bags_dir.is_dir() or not any(bags_dir.rglob("*.mcap")):
        return None
    return read_recording([bags_dir], step_topic, event_topic, skip_incomplete=True, cameras=cameras)


def _recording_info(bag: Path) -> dict:
    from rosbags.rosbag2 import Reader

    try:
        with Reader(bag) as reader:
            custom = reader.storage.metadata.custom or {}
    except Exception:  # a bag without our custom data (or unreadable metadata) has no info
        return {}
    try:
        return json.loads(custom.get("iil_robot.recording", "{}"))
    except json.JSONDecodeError:
        return {}


def training_data(paths: list[str | Path], config: LabelConfig = LabelConfig()) -> Labelled:
    """The labelled dataset of the bags under ``paths`` (the learners' offline hook)."""
    return label_episodes(load_recording(paths).episodes, config)


def between_episodes(events: Sequence[EpisodeEvent]) -> list[float]:
    """Seconds from each episode's end to the next start: the reset, and any wait for the operator."""
    out, end = [], None
    for event in sorted(events, key=lambda e: e.stamp):
        if event.event == "start":
            if end is not None:
                out.append(event.stamp - end)
            end = None
        elif end is None:
            end = event.stamp
    return out


def thirds(summaries: Sequence[EpisodeSummary]) -> list[dict]:
    """The finished episodes in three consecutive groups (first, middle, last third), each with the operator's share
    of the ticks, the success rate, and the policy's own success rate (success without an intervention)."""
    done = [e for e in summaries if e.outcome != "unfinished"]
    if len(done) < 3:
        return []
    cuts = [round(i * len(done) / 3) for i in range(4)]
    out = []
    for part in (done[a:b] for a, b in zip(cuts, cuts[1:])):
        steps = sum(e.steps for e in part)
        out.append({
            "episodes": [part[0].index, part[-1].index],
            "operator_share": sum(e.intervention_steps for e in part) / steps if steps else 0.0,
            "success_rate": sum(e.outcome == "success" for e in part) / len(part),
            "policy_success_rate": sum(e.outcome == "success" and e.interventions == 0 for e in part) / len(part),
        })
    return out


def first_learned_action(steps: Sequence[StepRecord]) -> float | None:
    """Seconds from the first step to the first tick the policy drove with learned weights (version >= 1)."""
    if not steps:
        return None
    start = steps[0].stamp
    return next((s.stamp - start for s in steps if s.source == "policy" and (s.policy_version or 0) >= 1), None)


def summarise(recording: Recording) -> dict:
    """The summary ``--json`` prints, of a ``load_recording``."""
    summaries = [EpisodeSummary.of(e, recording.operator, recording.task) for e in recording.episodes]
    steps = sum(s.steps for s in summaries)
    human = sum(s.intervention_steps for s in summaries)
    onsets = sum(s.interventions for s in summaries)
    gaps = TickGaps()
    for step in recording.steps:  # in stamp order (load_recording)
        gaps.add(step.tick)
    resets = between_episodes(recording.events)
    return {
        "bags": [str(b) for b in recording.bags],
        "operator": recording.operator,
        "task": recording.task,
        "episodes": [s.to_dict() for s in summaries],
        "totals": {
            "episodes": len(summaries),
            "outcomes": dict(Counter(s.outcome for s in summaries)),
            "steps": steps,
            "interventions": onsets,
            "interventions_per_episode": onsets / len(summaries) if summaries else 0.0,
            "intervention_steps": human,
            "intervention_rate": human / steps if steps else 0.0,
            "duration": sum(s.duration for s in summaries),
            "policy_versions": sorted({v for s in summaries for v in s.policy_versions}),
            "lost_ticks": sum(s.lost_ticks for s in summaries),
            "ticks_missing_between_records": gaps.between,
            "ticks_before_first_record": gaps.before_first,
            "steps_between_episodes": recording.between_steps,
            "undecodable_records": recording.undecodable,
            "run_s": recording.steps[-1].stamp - recording.steps[0].stamp if recording.steps else 0.0,
            "first_learned_action_s": first_learned_action(recording.steps),
            "thirds": thirds(summaries),
            "between_episodes_s": {"count": len(resets), "median": float(np.median(resets)) if resets else None,
                                   "max": max(resets, default=None)},
        },
    }



# -- export ----------------------------------------------------------------------------------


def export_dataset(labelled: Labelled, path: Path, meta: dict) -> tuple[Path, Path]:
    """Write ``path`` (.npz: ``rlif_<field>`` and ``dagger_<field>`` arrays) and a JSON sidecar."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_suffix(".npz")
    arrays = {f"{name}_{f.name}": getattr(t, f.name) for name, t in (("rlif", labelled.rlif), ("dagger", labelled.dagger))
              for f in fields(Transitions) if getattr(t, f.name) is not None and getattr(t, f.name).dtype != object}
    # no images, and no per-camera frame stamps (dicts: they would need pickle); the dataset holds no frames to pair
    np.savez(path, **arrays)
    sidecar = path.with_suffix(".json")
    sidecar.write_text(json.dumps({
        "format": DATASET_FORMAT, "version": DATASET_VERSION, "arrays": path.name,
        "datasets": {"rlif": len(labelled.rlif), "dagger": len(labelled.dagger)},
        "label_stats": labelled.stats.to_dict(), **meta,
    }, indent=2))
    return path, sidecar


def load_dataset(path: str | Path) -> dict[str, Transitions]:
    """Read an exported dataset back: ``{"rlif": Transitions, "dagger": Transitions}`` (no pickle)."""
    with np.load(Path(path), allow_pickle=False) as data:
        return {name: Transitions(**{f.name: data[f"{name}_{f.name}"] if f"{name}_{f.name}" in data.files else None
                                     for f in fields(Transitions)})
                for name in ("rlif", "dagger")}
