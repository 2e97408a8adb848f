"""SpaceMouse device reader: a background thread that keeps only the latest device state.

A 3Dconnexion SpaceMouse sends a HID report whenever its cap moves or a button changes.
pyspacemouse (v2 API, over hidapi's hidraw backend) parses one report per ``read()``;
reports queue up in the kernel, so a reader that takes one report per control tick falls
behind and the arm keeps moving after the operator lets go. :class:`SpaceMouseReader`
therefore drains every queued report in a tight loop and publishes only the resulting
state, as an immutable :class:`DeviceSample` that other threads read with ``latest()``.

Axes follow ROS REP-103 (pyspacemouse ``AxisConvention.ROS``), seen from the operator
sitting behind the device:

- ``x``: push the cap forward (away from you) -> +x
- ``y``: push it left -> +y
- ``z``: pull it up -> +z
- ``roll``: about +x (right-hand rule; tilt the cap to the right -> +roll)
- ``pitch``: about +y (tilt the cap forward, away from you -> +pitch)
- ``yaw``: about +z (twist the cap counter-clockwise seen from above -> +yaw)

Each axis is scaled to [-1, 1] (pyspacemouse divides by the device's full scale, 350
counts, and the reader clamps the few counts some devices report beyond it).

When the device cannot be opened or is unplugged, the sample says so (``connected=False``,
all axes and buttons zero) with an actionable ``error`` from :func:`diagnose_open_error`,
and the reader retries until the device comes back. This module does not import rclpy;
the gate node wraps it. It imports pyspacemouse only when the default opener runs, so the
diagnosis helpers work without hidapi.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Callable, Protocol, Sequence

from iil_robot.command.hidraw import diagnose_open_error

if TYPE_CHECKING:
    from pyspacemouse import SpaceMouseDevice

__all__ = [
    "AXIS_NAMES",
    "DeviceLike",
    "DeviceSample",
    "ReaderConfig",
    "SpaceMouseReader",
    "StateLike",
    "open_pyspacemouse",
]

AXIS_NAMES: tuple[str, ...] = ("x", "y", "z", "roll", "pitch", "yaw")
"""Axis order of :attr:`DeviceSample.axes` (REP-103)."""



# --------------------------------------------------------------------------------------
# Samples and the device interface
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeviceSample:
    """One immutable snapshot of the SpaceMouse, as published by the reader thread."""

    axes: tuple[float, ...]
    """6 values in [-1, 1] in REP-103 order (x, y, z, roll, pitch, yaw); all 0.0 when not connected."""
    buttons: tuple[int, ...]
    """0/1 per button in device order; empty before the first device, all 0 after a disconnect."""
    stamp: float
    """Clock time (the reader's monotonic clock) of the last processed report, or of the
    failure or reader start when not connected. A connected device reports only on change,
    so an old stamp with ``connected=True`` means "unchanged", not "stale"."""
    connected: bool
    """True while the device is open and reads succeed."""
    error: str | None
    """When not connected: what is wrong and how to fix it. None when connected."""


class StateLike(Protocol):
    """What the reader uses of ``pyspacemouse.SpaceMouseState``."""

    t: float
    x: float
    y: float
    z: float
    roll: float
    pitch: float
    yaw: float
    buttons: Sequence[int]


class DeviceLike(Protocol):
    """What the reader uses of ``pyspacemouse.SpaceMouseDevice`` (opened non-blocking)."""

    @property
    def name(self) -> str: ...

    def read(self) -> StateLike:
        """Process at most one queued report and return the (mutable) current state; its
        ``t`` changes only when a report was processed. Raises when the device is gone."""
        ...

    def close(self) -> None: ...


def open_pyspacemouse(device_name: str = "") -> SpaceMouseDevice:
    """Open a SpaceMouse with pyspacemouse, non-blocking, axes in REP-103.

    Args:
        device_name: a pyspacemouse device name (e.g. ``"SpaceMouseCompact"``), or ``""``
            for the first supported device found.

    Raises:
        RuntimeError: hidapi missing, no device, or the device could not be opened
            (pass the error to :func:`diagnose_open_error` for what to do).
        ValueError: ``device_name`` is not a pyspacemouse device name.
    """
    import pyspacemouse

    return pyspacemouse.open(
        nonblocking=True,
        device=device_name or None,
        axis_convention=pyspacemouse.AxisConvention.ROS,
    )


# --------------------------------------------------------------------------------------
# The reader thread
# --------------------------------------------------------------------------------------
@dataclass
class ReaderConfig:
    """Settings of :class:`SpaceMouseReader` (the gate node maps its parameters onto these)."""

    poll_period: float = 0.001
    """Seconds to sleep when no report was queued (keeps CPU low; bounds added latency)."""
    reconnect_period: float = 1.0
    """Seconds between attempts to open the device while it is missing."""
    device_name: str = ""
    """pyspacemouse device name (e.g. "SpaceMouseCompact"); "" opens the first one found."""
    max_reports_per_drain: int = 1000
    """Publish at least every this many reports, so a device that never runs dry still updates."""
    stop_timeout: float = 2.0
    """Seconds ``stop()`` waits for the thread before raising."""

    def __post_init__(self) -> None:
        for name in ("poll_period", "reconnect_period", "stop_timeout"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"ReaderConfig.{name} must be > 0 seconds, got {value!r}")
        if self.max_reports_per_drain < 1:
            raise ValueError(
                f"ReaderConfig.max_reports_per_drain must be >= 1, got {self.max_reports_per_drain!r}"
            )


class SpaceMouseReader:
    """Reads a SpaceMouse on one daemon thread and keeps the latest state for ``latest()``.

    Construction does nothing but store its arguments; ``start()`` starts the thread, which
    opens the device (retrying every ``reconnect_period`` while that fails), drains all
    queued reports, publishes the resulting :class:`DeviceSample`, and sleeps
    ``poll_period`` only when no report was queued. When a read raises (unplugged), it
    publishes a zero, disconnected sample at once, closes the device and reconnects.
    """

    def __init__(
        self,
        config: ReaderConfig,
        open_device: Callable[[], DeviceLike] | None = None,
        clock: Callable[[], float] = time.monotonic,
        log: Callable[[str], None] | None = None,
        diagnose: Callable[[Exception], str] = diagnose_open_error,
    ) -> None:
        """
        Args:
            config: reader settings.
            open_device: opens the device non-blocking with REP-103 axes; default
                :func:`open_pyspacemouse` with ``config.device_name``.
            clock: monotonic clock for sample stamps.
            log: receives one line per connect, disconnect and distinct open error;
                default: this module's ``logging`` logger at WARNING.
            diagnose: turns an open error into the sample's ``error`` text.
        """
        self._config = config
        self._open_device = open_device or partial(open_pyspacemouse, config.device_name)
        self._clock = clock
        self._log = log or logging.getLogger(__name__).warning
        self._diagnose = diagnose
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sample = DeviceSample(
            axes=(0.0,) * 6, buttons=(), stamp=clock(), connected=False,
            error="SpaceMouse reader not started: call start()",
        )

    # -- public surface ------------------------------------------------------------------
    def start(self) -> None:
        """Start the reader thread (a daemon).

        Raises:
            RuntimeError: the reader was already started.
        """
        if self._thread is not None:
            raise RuntimeError("SpaceMouseReader.start() called twice: create a new reader to restart")
        self._set_disconnected("SpaceMouse not opened yet", buttons=0)
        self._thread = threading.Thread(target=self._run, name="spacemouse-reader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, wait for it, and close the device; ``latest()`` is then zero.

        Raises:
            RuntimeError: the thread did not end within ``config.stop_timeout`` (a blocking
                ``open_device`` or ``read``: open the device non-blocking).
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._config.stop_timeout)
            if self._thread.is_alive():
                raise RuntimeError(
                    f"SpaceMouse reader thread did not stop within {self._config.stop_timeout} s: "
                    "open_device() or read() is blocking; open the device with nonblocking=True"
                )
        self._set_disconnected("SpaceMouse reader stopped", buttons=len(self.latest().buttons))

    def latest(self) -> DeviceSample:
        """The most recent sample (thread-safe; an immutable snapshot)."""
        with self._lock:
            return self._sample

    # -- thread --------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            device = self._connect()
            if device is None:
                return
            try:
                self._pump(device)
            finally:
                self._close(device)

    def _connect(self) -> DeviceLike | None:
        """Open the device, retrying until it opens; None when stopped first."""
        last_error: str | None = None
        while not self._stop.is_set():
            try:
                device = self._open_device()
            except Exception as err:  # any open failure becomes a diagnosed, published error
                message = self._diagnose(err)
                self._set_disconnected(message, buttons=len(self.latest().buttons))
                if message != last_error:
                    self._log(f"SpaceMouse unavailable: {message} (retrying every {self._config.reconnect_period} s)")
                    last_error = message
                self._stop.wait(self._config.reconnect_period)
                continue
            self._log(f"SpaceMouse connected: {device.name}")
            return device
        return None

    def _pump(self, device: DeviceLike) -> None:
        """Read until stopped or the device fails; publish after each drain.

        The first read always publishes (``last_t`` starts as None), so a device at rest,
        which sends no reports, is reported connected as soon as it is open.
        """
        last_t: float | None = None
        while not self._stop.is_set():
            state = None
            try:
                for _ in range(self._config.max_reports_per_drain):
                    current = device.read()
                    if current.t == last_t:
                        break  # queue empty: nothing processed this read
                    last_t = current.t
                    state = current
                    # Copy at once: pyspacemouse returns the same mutable state object.
                    axes = tuple(_clamp(float(getattr(current, a))) for a in AXIS_NAMES)
                    buttons = tuple(int(bool(b)) for b in current.buttons)
            except Exception as err:  # unplugged: hidapi read fails (easyhid.HIDException)
                message = (
                    f"SpaceMouse disconnected: {type(err).__name__}: {err}; "
                    f"reconnecting every {self._config.reconnect_period} s"
                )
                self._set_disconnected(message, buttons=len(self.latest().buttons))
                self._log(message)
                return
            if state is None:
                self._stop.wait(self._config.poll_period)
                continue
            self._publish(DeviceSample(axes, buttons, self._clock(), True, None))

    def _close(self, device: DeviceLike) -> None:
        try:
            device.close()
        except Exception as err:  # already gone; reconnecting matters more than the close
            self._log(f"closing the SpaceMouse failed ({type(err).__name__}: {err}); reconnecting anyway")

    def _set_disconnected(self, error: str, buttons: int) -> None:
        self._publish(DeviceSample((0.0,) * 6, (0,) * buttons, self._clock(), False, error))

    def _publish(self, sample: DeviceSample) -> None:
        with self._lock:
            self._sample = sample


def _clamp(value: float) -> float:
    return -1.0 if value < -1.0 else 1.0 if value > 1.0 else value
