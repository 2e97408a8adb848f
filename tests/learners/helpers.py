"""Tiny synthetic data for learner tests."""
from __future__ import annotations

import numpy as np

from iil_robot.data.episodes import Episode
from iil_robot.data.records import EpisodeEvent, StepRecord
from iil_robot.learners.methods import METHODS


def method_for(algorithm: str) -> str:
    """The first method of the registry that trains ``algorithm`` (rlpd: rlif)."""
    return next(m.name for m in METHODS.values() if m.algorithm == algorithm)


def record(tick: int, obs, action=(0.0,) * 7, intervention=False, onset=False) -> StepRecord:
    return StepRecord(
        tick=tick, stamp=tick * 0.05, source="human" if intervention else "policy", source_name="x",
        executed_action=tuple(action), policy_action=None, human_action=None, human_engaged=intervention,
        intervention=intervention, onset=onset, offset=False, observation=None if obs is None else tuple(obs),
        obs_stamp=None, policy_version=0, hold_reason="", limited=False,
    )


def boundary_task_records(episodes: int, steps: int, seed: int = 0) -> list[list[StepRecord]]:
    """1-D point x; a random policy moves it by vx in [-0.25, 0.25] per step; a simulated operator
    takes over when |x| > 0.5 and pushes it back to |x| < 0.2. The only reward is RLIF's -1."""
    rng = np.random.default_rng(seed)
    out = []
    tick = 0
    for _ in range(episodes):
        x, human, records = rng.uniform(-0.3, 0.3), False, []
        for _ in range(steps):
            onset = False
            if not human and abs(x) > 0.5:
                human, onset = True, True
            elif human and abs(x) < 0.2:
                human = False
            vx = -0.25 * np.sign(x) if human else rng.uniform(-0.25, 0.25)
            records.append(record(tick, [x], (vx, 0, 0, 0, 0, 0, 0), intervention=human, onset=onset))
            tick += 1
            x = float(np.clip(x + vx, -1, 1))
        tick += 5  # a gap: episodes never link
        out.append(records)
    return out


def episode_events(episodes: list[list[StepRecord]], outcome: str = "timeout") -> list[EpisodeEvent]:
    """A ``start`` at each episode's first step and ``outcome`` just after its last."""
    return [e for records in episodes for e in (
        EpisodeEvent("start", "sim", records[0].stamp), EpisodeEvent(outcome, "sim", records[-1].stamp + 0.025))]


def as_episodes(episodes: list[list[StepRecord]], outcome: str = "timeout") -> list[Episode]:
    return [Episode(i, tuple(r), r[0].stamp, r[-1].stamp + 0.025, outcome, "sim") for i, r in enumerate(episodes)]


def feed(trainer, episodes: list[list[StepRecord]], outcome: str = "timeout") -> None:
    """Hand a trainer each episode's start event, its steps, then its end event."""
    events = iter(episode_events(episodes, outcome))
    for records in episodes:
        trainer.add_event(next(events))
        trainer.add_records(records)
        trainer.add_event(next(events))


def restore_from_bags(trainer) -> bool:
    """``trainer.restore`` as the learner node calls it: with what the bags under its ``bags_dir`` hold."""
    from iil_robot.data.recordings import read_bags_dir

    config = trainer.config
    recording = read_bags_dir(config.bags_dir, config.step_topic, config.event_topic,
                              config.camera_names) if config.bags_dir else None
    return trainer.restore(recording)
