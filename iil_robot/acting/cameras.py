"""Camera frames paired with an observation by stamp, without ROS.

Cameras and the arm's state arrive on their own streams at their own rates; a policy must act on
images taken with the state it sees. ``RecentFrames`` keeps a camera's newest frames, and
``pair_frames`` picks for each named camera the newest frame not newer than the observation's
stamp plus ``tolerance`` (a frame taken "with" the state, allowing for small clock offsets), and
calls a camera stale when that frame is older than the observation by more than ``timeout``: the
policy then proposes nothing and the mux holds the arm, with a message naming the camera.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CameraFrame:
    """A camera image as the policy takes it."""

    rgb: np.ndarray
    """(height, width, 3) uint8."""
    stamp: float
    """Capture time (s), the image header's."""


class RecentFrames:
    """A camera's newest ``capacity`` frames, ordered by stamp (frames may arrive out of order)."""

    def __init__(self, capacity: int = 16) -> None:
        if capacity < 1:
            raise ValueError(f"capacity {capacity} must be >= 1")
        self.capacity = capacity
        self._stamps: list[float] = []
        self._frames: list[CameraFrame] = []

    def __len__(self) -> int:
        return len(self._frames)

    def add(self, frame: CameraFrame) -> None:
        """Keep ``frame`` (a non-finite stamp is refused: it cannot be paired). Raises ValueError."""
        if not math.isfinite(frame.stamp):
            raise ValueError(f"frame stamp {frame.stamp} is not a finite time")
        i = bisect.bisect_right(self._stamps, frame.stamp)
        self._stamps.insert(i, frame.stamp)
        self._frames.insert(i, frame)
        if len(self._frames) > self.capacity:
            del self._stamps[0], self._frames[0]  # the oldest

    def newest_until(self, stamp: float) -> CameraFrame | None:
        """The newest frame with a stamp at or before ``stamp``."""
        i = bisect.bisect_right(self._stamps, stamp)
        return self._frames[i - 1] if i else None


def pair_frames(cameras: dict[str, RecentFrames], stamp: float, tolerance: float,
                timeout: float) -> tuple[dict[str, CameraFrame], dict[str, str]]:
    """Each camera's frame for an observation stamped ``stamp``, and why there is none for the others."""
    paired, missing = {}, {}
    for name, recent in cameras.items():
        frame = recent.newest_until(stamp + tolerance)
        if frame is None:
            missing[name] = ("no frame yet (is the camera node running?)" if not len(recent) else
                             f"every frame is newer than the observation by more than {tolerance} s (clocks apart?)")
        elif stamp - frame.stamp > timeout:
            missing[name] = f"stale: its newest frame is {stamp - frame.stamp:.3f} s older than the observation (> {timeout} s)"
        else:
            paired[name] = frame
    return paired, missing
