"""Episode videos: the recorded camera frames of each episode as an MP4, with the arm command, who
was in control and the intervention onsets drawn over each frame (``iil-robot replay --video``).

Frames are the JPEG images the camera node published (``camera/<name>/image_raw/compressed``, or any
``sensor_msgs/Image`` rgb8/bgr8 topic), placed by their header stamps; each frame shows the
newest step record at or before it, so what is drawn is what the mux had decided when the frame
was taken.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from iil_robot.data.bags import read_messages
from iil_robot.data.camera import CameraError
from iil_robot.data.episodes import Episode
from iil_robot.data.frames import message_rgb, stamp_seconds

VIDEO_TOPIC = "/camera/front/image_raw/compressed"
ONSET_SECONDS = 0.5
"""How long an intervention onset is flagged (red border) after its tick."""
COLOURS = {"policy": (60, 200, 60), "human": (40, 40, 230), "hold": (0, 200, 230)}  # BGR


@dataclass(frozen=True)
class VideoFrame:
    stamp: float
    """Header stamp (s): capture time on the camera node's clock."""
    rgb: np.ndarray


def read_frames(bags: Sequence[Path], topic: str = VIDEO_TOPIC) -> tuple[list[VideoFrame], int]:
    """Camera frames of ``topic`` in every bag, by stamp, and how many could not be decoded."""
    frames, bad = [], 0
    for bag in bags:
        for m in read_messages(bag, [topic]):
            stamp = stamp_seconds(m.message.header.stamp.sec, m.message.header.stamp.nanosec)
            try:
                frames.append(VideoFrame(stamp, message_rgb(m.message)))
            except CameraError:
                bad += 1
    frames.sort(key=lambda f: f.stamp)
    return frames, bad


def write_episode_video(episode: Episode, frames: Sequence[VideoFrame], path: Path, fps: float | None = None,
                        min_height: int = 256) -> int:
    """Write the frames within the episode to ``path`` (MP4) with the overlay; returns the frame count
    (0: nothing written). ``fps`` None = the frames' own median rate."""
    stamps = [f.stamp for f in frames]
    inside = frames[bisect.bisect_left(stamps, episode.start):bisect.bisect_right(stamps, episode.end)]
    if not inside:
        return 0
    if fps is None:
        gaps = np.diff([f.stamp for f in inside])
        fps = float(np.clip(1.0 / np.median(gaps), 1.0, 120.0)) if len(gaps) and np.median(gaps) > 0 else 10.0
    height, width = inside[0].rgb.shape[:2]
    scale = max(1, int(np.ceil(min_height / height)))  # small policy inputs are enlarged so the text fits
    size = (width * scale, height * scale)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise CameraError(f"OpenCV cannot write MP4 to {path}")
    step_stamps = [s.stamp for s in episode.steps]
    onsets = [s.stamp for s in episode.steps if s.onset]
    try:
        for frame in inside:
            bgr = cv2.resize(frame.rgb[..., ::-1], size, interpolation=cv2.INTER_NEAREST)
            i = bisect.bisect_right(step_stamps, frame.stamp) - 1
            step = episode.steps[i] if i >= 0 else None
            recent_onset = any(0.0 <= frame.stamp - t <= ONSET_SECONDS for t in onsets)
            writer.write(_overlay(np.ascontiguousarray(bgr), episode, frame.stamp, step, recent_onset))
    finally:
        writer.release()
    return len(inside)


def _overlay(bgr: np.ndarray, episode: Episode, stamp: float, step, onset: bool) -> np.ndarray:
    font, small = cv2.FONT_HERSHEY_SIMPLEX, 0.4
    lines = [(f"episode {episode.index} ({episode.outcome})  t={stamp - episode.start:5.2f} s", (255, 255, 255))]
    if step is None:
        lines.append(("no step record yet", (200, 200, 200)))
    else:
        who = step.source.upper() + (f" v{step.policy_version}"
                                     if step.source == "policy" and step.policy_version is not None else "")
        if step.source == "hold" and step.hold_reason:
            who += f": {step.hold_reason}"
        lines.append((who, COLOURS[step.source]))
        vx, vy, vz, *_, gripper = step.executed_action
        lines.append((f"cmd {vx:+.2f} {vy:+.2f} {vz:+.2f} m/s  grip {gripper:.2f}", (255, 255, 255)))
    for row, (text, colour) in enumerate(lines):
        y = 14 + 14 * row
        cv2.putText(bgr, text, (4, y), font, small, (0, 0, 0), 3, cv2.LINE_AA)  # outline: readable on any background
        cv2.putText(bgr, text, (4, y), font, small, colour, 1, cv2.LINE_AA)
    if onset:
        cv2.rectangle(bgr, (0, 0), (bgr.shape[1] - 1, bgr.shape[0] - 1), (0, 0, 255), 6)
        cv2.putText(bgr, "ONSET", (4, bgr.shape[0] - 8), font, 0.6, (0, 0, 255), 2, cv2.LINE_AA)
    return bgr


def write_videos(episodes: Sequence[Episode], bags: Sequence[Path], out: Path, topic: str = VIDEO_TOPIC,
                 fps: float | None = None) -> dict:
    """``--video DIR``: one ``episode_<index>.mp4`` per episode that has frames. Returns a summary."""
    out.mkdir(parents=True, exist_ok=True)
    frames, bad = read_frames(bags, topic)
    written = {}
    for episode in episodes:
        path = out / f"episode_{episode.index:03d}.mp4"
        count = write_episode_video(episode, frames, path, fps)
        if count:
            written[path.name] = count
    return {"dir": str(out), "topic": topic, "frames": len(frames), "undecodable": bad, "videos": written}
