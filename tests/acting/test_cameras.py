"""Pairing camera frames with an observation by stamp: the newest frame not newer than the observation
(plus a tolerance), stale beyond a timeout, each camera named when it holds the arm."""
from __future__ import annotations

import math

import numpy as np
import pytest

from iil_robot.acting.cameras import CameraFrame, RecentFrames, pair_frames


def recent(*stamps: float, capacity: int = 16) -> RecentFrames:
    frames = RecentFrames(capacity)
    for stamp in stamps:
        frames.add(CameraFrame(np.zeros((2, 2, 3), np.uint8), stamp))
    return frames


@pytest.mark.parametrize("stamps, observation, paired_stamp, why", [
    ((9.90, 9.95, 10.00), 10.0, 10.00, ""),          # exactly the observation's
    ((9.90, 9.95, 10.01, 10.10), 10.0, 10.01, ""),   # newer by less than the tolerance: still taken with the state
    ((9.90, 9.95, 10.10), 10.0, 9.95, ""),           # a frame from after the observation is not paired with it
    ((10.00, 9.90, 9.95), 10.0, 10.00, ""),          # arrival order does not matter
    ((9.50,), 10.0, None, "stale: its newest frame is 0.500 s older"),
    ((10.50,), 10.0, None, "every frame is newer than the observation"),
    ((), 10.0, None, "no frame yet"),
])
def test_the_newest_frame_not_newer_than_the_observation_is_paired(stamps, observation, paired_stamp, why):
    paired, missing = pair_frames({"wrist": recent(*stamps)}, observation, tolerance=0.02, timeout=0.2)
    assert (paired["wrist"].stamp if paired else None) == paired_stamp
    assert why in missing.get("wrist", "")


def test_each_camera_is_paired_on_its_own_and_named_when_missing():
    paired, missing = pair_frames({"front": recent(9.99), "wrist": recent(9.0)}, 10.0, tolerance=0.0, timeout=0.1)
    assert list(paired) == ["front"] and list(missing) == ["wrist"]


def test_only_the_newest_frames_are_kept_and_a_nan_stamp_is_refused():
    frames = recent(1.0, 2.0, 3.0, capacity=2)
    assert len(frames) == 2 and frames.newest_until(1.5) is None and frames.newest_until(2.5).stamp == 2.0
    with pytest.raises(ValueError, match="not a finite time"):
        frames.add(CameraFrame(np.zeros((2, 2, 3), np.uint8), math.nan))
    assert len(frames) == 2
