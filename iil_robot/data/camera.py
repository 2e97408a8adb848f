"""Camera frames without ROS: open a V4L2 device or a video file with OpenCV, or take the images a
camera driver publishes; keep the latest frame, crop and resize it to the policy's input,
JPEG-encode it, and tell when the stream stalls.

The ``camera`` node is a wiring diagram around these. Frames are RGB ``uint8`` arrays of shape
(height, width, 3) everywhere in this package (OpenCV's BGR stays inside this module).

Each named camera (``CameraConfig``, parameters ``cameras.<name>.*``) has a ``type``:
- ``device``: ``source`` is a V4L2 device index (``"0"``), a device path (``"/dev/video2"``) or a
  video file (``.mp4``, ``.avi``, ...: for replay and tests, one frame per tick, every frame in
  order, looped);
- ``image`` / ``compressed``: ``topic`` is a ``sensor_msgs/Image`` (rgb8 or bgr8) or
  ``CompressedImage`` (JPEG/PNG) stream, as ``usb_cam``, ``realsense2_camera`` or the sim arm
  publish them; each image is processed as it comes and keeps its driver's stamp.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

CAMERA_TYPES = ("device", "image", "compressed")
IMAGE_ENCODINGS = ("rgb8", "bgr8")
"""Encodings of ``sensor_msgs/Image`` taken (bgr8 is converted); anything else (mono, depth, Bayer) is refused."""
CAMERA_STATES = ("waiting", "ok", "stalled", "failed")


class CameraError(RuntimeError):
    """A camera source cannot be opened or read, or a frame cannot be processed."""


@dataclass(frozen=True)
class CameraConfig:
    """One camera of the camera node (parameters ``cameras.<name>.*``): where frames come from, and how they are
    cut to the policy's input."""

    type: str = "device"
    """``device`` (a V4L2 device or video file, ``source``), ``image`` (sensor_msgs/Image on ``topic``) or
    ``compressed`` (sensor_msgs/CompressedImage on ``topic``)."""
    source: str = "0"
    """Type device: V4L2 device index (``0``) or path (``/dev/video0``), or a video file."""
    topic: str = ""
    """Types image and compressed: the driver's topic (e.g. ``camera/color/image_raw``, ``image_raw/compressed``)."""
    rate: float = 20.0
    """Type device: frames published per second (a video file is also read at this rate). Topic cameras publish
    each image as it comes."""
    capture_width: int = 0
    """Type device: capture width requested (0 = its default). Topic types: width every image must have (another
    size is refused, so that the crop keeps meaning the same region); 0 = any."""
    capture_height: int = 0
    """Capture height: as ``capture_width``."""
    crop: tuple[int, ...] = (0, 0, 0, 0)
    """Region of the captured frame kept: x, y, width, height (px); width or height 0 = the whole frame."""
    width: int = 64
    """Width of the published image (the policy's input)."""
    height: int = 64
    """Height of the published image (the policy's input)."""
    jpeg_quality: int = 90
    """JPEG quality of the compressed image (1-100)."""
    loop: bool = True
    """Video file: start again at its end (false: the stream stalls there, like a camera that stops)."""
    stall_timeout: float = 0.5
    """No new frame for this long (s) = stalled: reported in diagnostics, nothing published (the policy holds)."""
    reconnect_period: float = 1.0
    """Seconds between attempts to reopen a failed device."""
    frame_id: str = "camera_color_optical_frame"
    """Frame of the images (REP-103 optical frame: z forward, x right, y down)."""

    def __post_init__(self) -> None:
        if self.type not in CAMERA_TYPES:
            raise ValueError(f"type {self.type!r} must be one of {CAMERA_TYPES}")
        if self.type == "device" and not self.source:
            raise ValueError("source is empty: give a device index (0), a device path (/dev/video0) or a video file")
        if self.type != "device" and not self.topic:
            raise ValueError(f"type {self.type} needs a topic (the camera driver's {self.type} stream)")
        if len(self.crop) != 4 or any(v < 0 for v in self.crop):
            raise ValueError(f"crop {list(self.crop)} must be 4 non-negative integers: x, y, width, height")
        if self.width < 1 or self.height < 1:
            raise ValueError(f"image size {self.width}x{self.height} must be positive")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality {self.jpeg_quality} must be in 1..100")

    @property
    def is_file(self) -> bool:
        return self.type == "device" and source_kind(self.source) == "file"


def source_kind(source: str) -> str:
    """``device`` (index or /dev path) or ``file``."""
    if source.isdigit() or source.startswith("/dev/"):
        return "device"
    return "file"


# -- frames ---------------------------------------------------------------------------------


def preprocess(rgb: np.ndarray, crop: tuple[int, ...], width: int, height: int, parameter: str = "crop") -> np.ndarray:
    """Crop ``rgb`` (H, W, 3) to ``crop`` (x, y, w, h; w or h 0 = whole frame) and resize to (height, width, 3).
    ``parameter`` is the crop's parameter name, for the error.

    Raises:
        CameraError: the frame is not an RGB uint8 image or the crop does not fit inside it.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise CameraError(f"expected an RGB uint8 frame (H, W, 3), got {rgb.dtype} {rgb.shape}")
    x, y, w, h = crop
    if w and h:
        if x + w > rgb.shape[1] or y + h > rgb.shape[0]:
            raise CameraError(f"crop x={x} y={y} width={w} height={h} does not fit the {rgb.shape[1]}x{rgb.shape[0]} frame: "
                              f"set {parameter} inside the captured frame")
        rgb = rgb[y:y + h, x:x + w]
    if rgb.shape[:2] != (height, width):
        # INTER_AREA averages the pixels a shrink drops (no aliasing); enlarging uses bilinear
        shrink = rgb.shape[0] > height and rgb.shape[1] > width
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return np.ascontiguousarray(rgb)


def image_rgb(encoding: str, width: int, height: int, step: int, data: bytes) -> np.ndarray:
    """The RGB frame (height, width, 3) of a ``sensor_msgs/Image``'s fields (rgb8, or bgr8 converted).

    Raises:
        CameraError: another encoding (named), or data that does not hold ``height`` rows of ``step`` bytes.
    """
    if encoding not in IMAGE_ENCODINGS:
        raise CameraError(f"image encoding {encoding!r} is not a colour image this node takes ({', '.join(IMAGE_ENCODINGS)}): "
                          "subscribe to the driver's colour stream (e.g. realsense2_camera's color/image_raw, not depth) "
                          "or set the driver's pixel format to rgb8")
    if width < 1 or height < 1 or step < width * 3 or len(data) != step * height:
        raise CameraError(f"{encoding} image {width}x{height} with step {step} has {len(data)} bytes, expected step >= "
                          f"{width * 3} and step x height bytes: a malformed message")
    rows = np.frombuffer(bytes(data), np.uint8).reshape(height, step)[:, : width * 3]  # rows may be padded
    rgb = rows.reshape(height, width, 3)
    return np.ascontiguousarray(rgb[..., ::-1] if encoding == "bgr8" else rgb)


def check_size(rgb: np.ndarray, config: CameraConfig, prefix: str = "") -> None:
    """Refuse a topic camera's frame of another size than ``capture_width`` x ``capture_height`` (when set).

    Raises:
        CameraError: naming both sizes and the parameters to change.
    """
    want = (config.capture_width, config.capture_height)
    got = (rgb.shape[1], rgb.shape[0])
    if all(want) and got != want:
        raise CameraError(f"image is {got[0]}x{got[1]}, expected {want[0]}x{want[1]}: set {prefix}capture_width and "
                          f"{prefix}capture_height to the driver's size (and check {prefix}crop), or the driver's size back")


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """RGB frame -> JPEG bytes."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise CameraError(f"JPEG encoding failed for a {rgb.shape} frame")
    return data.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray:
    """JPEG (or PNG) bytes -> RGB frame. Raises CameraError on corrupt data."""
    image = cv2.imdecode(np.frombuffer(bytes(data), np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise CameraError(f"cannot decode a compressed image of {len(data)} bytes (corrupt or not JPEG/PNG)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


# -- capture --------------------------------------------------------------------------------


def open_capture(config: CameraConfig) -> cv2.VideoCapture:
    """An opened ``cv2.VideoCapture`` for a device or video file. Raises CameraError saying what to check."""
    if config.type != "device":
        raise CameraError(f"a camera of type {config.type} has no capture device: the node subscribes to {config.topic!r}")
    kind = source_kind(config.source)
    if kind == "file":
        if not Path(config.source).is_file():
            raise CameraError(f"video file {config.source!r} does not exist: give a readable file or a device index")
        capture = cv2.VideoCapture(config.source)
    else:
        target: int | str = int(config.source) if config.source.isdigit() else config.source
        capture = cv2.VideoCapture(target, cv2.CAP_V4L2)
        if config.capture_width and config.capture_height:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, config.capture_width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, config.capture_height)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # keep the driver's queue short: we want the newest frame
    if not capture.isOpened():
        capture.release()
        device = f"/dev/video{config.source}" if config.source.isdigit() else config.source
        hint = ("cannot decode it (unsupported codec?)" if kind == "file" else
                f"check that {device} exists (ls /dev/video*), that you are in group 'video', and that no other program holds it")
        raise CameraError(f"cannot open camera source {config.source!r}: {hint}")
    return capture


@dataclass(frozen=True)
class Frame:
    """One captured frame with its capture times."""

    rgb: np.ndarray
    """(H, W, 3) uint8, as captured (before crop and resize)."""
    index: int
    """Frames captured since the source was opened (a new index = a new frame)."""
    monotonic: float
    """``time.monotonic()`` at capture (for stall detection)."""


class CaptureThread:
    """Reads a source in a tight loop on its own thread and keeps only the newest frame.

    A camera driver queues frames: reading at the publishing rate would hand out old ones. A video
    file is read one frame per frame taken with ``latest()``, so its reader (the node's tick)
    paces it and gets every frame in order: a file read on its own clock beats against the tick's
    and skips frames. It starts again at its end when ``loop``. A failed device is reopened
    every ``reconnect_period``.
    Call ``start()`` and ``stop()`` explicitly.
    """

    def __init__(self, config: CameraConfig, opener: Callable[[CameraConfig], cv2.VideoCapture] = open_capture,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config, self._opener, self._clock = config, opener, clock
        self._lock = threading.Lock()
        self._latest: Frame | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._taken = threading.Event()  # a file's newest frame was handed out: read the next one
        self._taken.set()
        self.error = ""
        """The last error (empty while frames come)."""
        self.ended = False
        """A video file without ``loop`` reached its end."""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="camera-capture", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def latest(self) -> Frame | None:
        """The newest frame (None before the first); for a file, also lets the next frame be read."""
        with self._lock:
            if self._latest is not None:
                self._taken.set()
            return self._latest

    def _run(self) -> None:
        capture: cv2.VideoCapture | None = None
        index = 0
        while not self._stop.is_set():
            if capture is None:
                try:
                    capture = self._opener(self.config)
                except CameraError as err:
                    self.error = str(err)
                    self._stop.wait(self.config.reconnect_period)
                    continue
            if self.config.is_file and not self._taken.wait(0.1):
                continue  # the reader has not taken the newest frame yet (checks for stop meanwhile)
            ok, bgr = capture.read()
            if not ok and self.config.is_file and self.config.loop and index > 0:
                capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, bgr = capture.read()
            if not ok:
                if self.config.is_file and not self.config.loop:
                    self.ended, self.error = True, f"video file {self.config.source!r} ended (loop: false)"
                    self._stop.wait(self.config.reconnect_period)  # nothing more will come: idle until stopped
                    continue
                self.error = f"camera source {self.config.source!r} returned no frame: reopening"
                capture.release()
                capture = None
                self._stop.wait(self.config.reconnect_period)
                continue
            index += 1
            frame = Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index, self._clock())
            with self._lock:
                self._latest = frame
                self._taken.clear()
            self.error = ""
        if capture is not None:
            capture.release()


class StallMonitor:
    """Camera health from the times frames arrive: waiting (none yet), ok, stalled, failed.

    ``failed`` is a stall with a known cause (the source reports an error); either way the
    node publishes nothing new, so any consumer's newest frame only gets older.
    """

    def __init__(self, stall_timeout: float) -> None:
        self.stall_timeout = stall_timeout
        self.last_frame: float | None = None
        self.frames = 0

    def frame(self, now: float) -> None:
        self.last_frame, self.frames = now, self.frames + 1

    def state(self, now: float, error: str = "") -> tuple[str, str]:
        """(state, message) at ``now``."""
        if self.last_frame is None:
            return ("failed", error) if error else ("waiting", "no frame yet")
        age = now - self.last_frame
        if age <= self.stall_timeout:
            return "ok", f"{self.frames} frames"
        why = f"no new frame for {age:.2f} s (> stall_timeout {self.stall_timeout} s)"
        return ("failed", f"{why}: {error}") if error else ("stalled", why)
