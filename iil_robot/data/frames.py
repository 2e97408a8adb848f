"""Camera frames for the learners, without ROS: recent frames keyed by capture stamp, and the
pairing of labelled transitions with them.

The policy node puts the header stamp of each camera's frame it acted on into its proposal; the mux
copies them into the step record (``image_stamps``, by camera name); labelling carries them into
``Transitions.image_stamps`` (and ``next_image_stamps``, the next step's). The learner keeps the
frames it received of each of its cameras (``camera/<name>/image_raw/compressed``, or a bag's) in a
:class:`FrameStore` per camera, and :func:`attach_images` gives each transition the frames of every
camera with exactly those stamps, stacked in the cameras' order. A row without the frame of one of
its cameras (no camera, a frame lost or already dropped from the store, a step without a stamp) is
left out of image learning, and counted per camera: never silently.

Stamps are compared as the floats :func:`stamp_seconds` makes of a header stamp, the same
expression in the policy node, the learner node and the bag reader, so equal header stamps give
equal keys.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from iil_robot.data.camera import CameraError, decode_jpeg, preprocess
from iil_robot.data.transitions import Transitions

__all__ = ["FrameStore", "Paired", "attach_images", "camera_names", "compressed_topic", "frame_chw", "message_rgb",
           "stamp_seconds"]

NO_CROP = (0, 0, 0, 0)


def stamp_seconds(sec: int, nanosec: int) -> float:
    """A header stamp (``builtin_interfaces/Time``) as seconds: the key frames are paired by."""
    return sec + nanosec * 1e-9


def camera_names(text: str) -> tuple[str, ...]:
    """The camera names of a comma-separated list (the ``cameras`` parameters of the policy and learner nodes).

    Raises:
        ValueError: a name given twice.
    """
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if len(set(names)) != len(names):
        raise ValueError(f"cameras {text!r} names a camera twice")
    return names


def compressed_topic(camera: str) -> str:
    """The camera node's JPEG frames of ``camera``: what the learner subscribes to and the recorder records."""
    return f"/camera/{camera}/image_raw/compressed"


def frame_chw(rgb: np.ndarray, image: tuple[int, ...]) -> np.ndarray:
    """An RGB frame (H, W, 3) uint8 as the learner's image (C, height, width) uint8, resized when its
    size differs (the policy node and the learner resize alike). Raises CameraError on a non-RGB frame."""
    _, height, width = image
    return np.ascontiguousarray(preprocess(rgb, NO_CROP, width, height).transpose(2, 0, 1))


def message_rgb(msg: Any) -> np.ndarray:
    """RGB (H, W, 3) uint8 of a sensor_msgs CompressedImage (JPEG/PNG) or Image (rgb8/bgr8).

    Raises:
        CameraError: undecodable data or another encoding.
    """
    if hasattr(msg, "format"):  # CompressedImage
        return decode_jpeg(bytes(msg.data))
    if msg.encoding not in ("rgb8", "bgr8") or len(msg.data) != msg.height * msg.width * 3:
        raise CameraError(f"image encoding {msg.encoding!r} {msg.width}x{msg.height} with {len(msg.data)} bytes is not rgb8/bgr8")
    image = np.asarray(msg.data, np.uint8).reshape(msg.height, msg.width, 3)
    return image[..., ::-1] if msg.encoding == "bgr8" else image


class FrameStore:
    """The newest ``capacity`` frames as (C, H, W) uint8 at the learner's image shape, by stamp."""

    def __init__(self, image: tuple[int, ...], capacity: int) -> None:
        if len(image) != 3 or capacity < 1:
            raise ValueError(f"image {image} must be (channels, height, width) and capacity {capacity} >= 1")
        self.image, self.capacity = tuple(image), capacity
        self._frames: OrderedDict[float, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self._frames)

    def add_rgb(self, stamp: float, rgb: np.ndarray) -> None:
        """Keep an RGB (H, W, 3) uint8 frame captured at ``stamp``. Raises CameraError on a non-RGB frame."""
        self._frames[stamp] = frame_chw(rgb, self.image)
        self._frames.move_to_end(stamp)
        while len(self._frames) > self.capacity:
            self._frames.popitem(last=False)  # the oldest received

    def add_compressed(self, stamp: float, data: bytes) -> None:
        """Keep a JPEG/PNG frame. Raises CameraError on undecodable data."""
        self.add_rgb(stamp, decode_jpeg(data))

    def get(self, stamp: float) -> np.ndarray | None:
        return self._frames.get(stamp)


@dataclass(frozen=True)
class Paired:
    """What :func:`attach_images` made of labelled rows."""

    data: Transitions
    """The rows that have every camera's frames, with ``images`` / ``next_images`` (3 channels per camera, stacked)."""
    left_out: int
    """Rows left out of image learning."""
    missing: dict[str, int]
    """By camera: rows that lack its frame or their next step's (a row may lack several cameras')."""


def attach_images(data: Transitions, stores: Mapping[str, FrameStore]) -> Paired:
    """``data``'s rows whose frame and next frame of every camera in ``stores`` (name -> its frames, in the order the
    images are stacked) are there, with ``images``/``next_images`` of shape (3 x cameras, H, W); and how many rows
    were left out, in all and by camera (no stamp, or the frame is not in its store)."""
    if not stores:
        raise ValueError("attach_images needs at least one camera's frames")
    n, names = len(data), list(stores)
    image = (sum(s.image[0] for s in stores.values()), *next(iter(stores.values())).image[1:])
    empty = np.zeros((0, *image), np.uint8)
    if n == 0:
        return Paired(Transitions(**{**_columns(data), "images": empty, "next_images": empty}), 0, dict.fromkeys(names, 0))
    if data.image_stamps is None or data.next_image_stamps is None:  # not labelled from step records: no stamps
        return Paired(data.take(np.zeros(n, bool)), n, dict.fromkeys(names, n))

    def frame(stamps: dict[str, float] | None, camera: str) -> np.ndarray | None:
        return None if not stamps or camera not in stamps else stores[camera].get(float(stamps[camera]))

    images = {c: [frame(s, c) for s in data.image_stamps] for c in names}
    next_images = {c: [frame(s, c) for s in data.next_image_stamps] for c in names}
    has = {c: np.array([a is not None and b is not None for a, b in zip(images[c], next_images[c])], bool) for c in names}
    keep = np.logical_and.reduce([has[c] for c in names])
    rows = np.flatnonzero(keep)

    def stack(frames: dict[str, list]) -> np.ndarray:
        return np.stack([np.concatenate([frames[c][i] for c in names]) for i in rows]) if len(rows) else empty

    paired = Transitions(**{**_columns(data.take(keep)), "images": stack(images), "next_images": stack(next_images)})
    return Paired(paired, int(n - keep.sum()), {c: int(n - has[c].sum()) for c in names})


def _columns(data: Transitions) -> dict[str, Any]:
    return {name: getattr(data, name) for name in data.__dataclass_fields__}
