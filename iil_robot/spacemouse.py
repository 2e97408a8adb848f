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
import os
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol, Sequence

if TYPE_CHECKING:
    from pyspacemouse import SpaceMouseDevice

__all__ = [
    "AXIS_NAMES",
    "THREEDCONNEXION_VENDOR_IDS",
    "DeviceLike",
    "DeviceSample",
    "Diagnosis",
    "HidrawDevice",
    "LIBHIDAPI_MISSING",
    "NOTHING_FOUND",
    "ReaderConfig",
    "SpaceMouseReader",
    "StateLike",
    "can_read_write",
    "diagnose_nodes",
    "diagnose_open_error",
    "diagnose_open_failure",
    "find_hidraw_devices",
    "find_spacemouse_hidraw",
    "is_spacemouse",
    "open_pyspacemouse",
]

AXIS_NAMES: tuple[str, ...] = ("x", "y", "z", "roll", "pitch", "yaw")
"""Axis order of :attr:`DeviceSample.axes` (REP-103)."""

LOGITECH_VENDOR_ID = 0x046D
"""Logitech: 3Dconnexion's vendor id while it was a Logitech company (products 0xc6xx)."""
THREEDCONNEXION_VENDOR_ID = 0x256F
"""3Dconnexion's own vendor id (all products)."""
THREEDCONNEXION_VENDOR_IDS: tuple[int, ...] = (LOGITECH_VENDOR_ID, THREEDCONNEXION_VENDOR_ID)

RULES_NAME = "70-iil-robot-spacemouse.rules"
"""File name of the udev rule in udev/ (see udev/install.sh)."""


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
# Finding hidraw nodes and diagnosing open failures
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HidrawDevice:
    """A hidraw node as the kernel describes it in sysfs."""

    path: Path
    """The device node, e.g. /dev/hidraw3."""
    vendor_id: int
    """USB / Bluetooth vendor id."""
    product_id: int
    """Product id."""
    name: str
    """HID_NAME from sysfs, e.g. "3Dconnexion SpaceMouse Compact"."""
    readable: bool
    """Whether this process may open the node for reading and writing."""

    def describe(self) -> str:
        """``/dev/hidraw3 (3Dconnexion SpaceMouse Compact, 256f:c635)``."""
        return f"{self.path} ({self.name}, {self.vendor_id:04x}:{self.product_id:04x})"


def can_read_write(path: Path) -> bool:
    """Whether this process may open ``path`` for reading and writing (as hidapi does)."""
    return os.access(path, os.R_OK | os.W_OK)


def is_spacemouse(vendor_id: int, product_id: int) -> bool:
    """Whether a HID vendor/product id is a 3Dconnexion device.

    Vendor 0x256f is 3Dconnexion; vendor 0x046d is all of Logitech, of which only the
    products 0xc6xx are 3Dconnexion (SpaceNavigator 0xc626, SpaceExplorer 0xc627, ...).
    """
    if vendor_id == THREEDCONNEXION_VENDOR_ID:
        return True
    return vendor_id == LOGITECH_VENDOR_ID and product_id & 0xFF00 == 0xC600


def find_hidraw_devices(
    sys_root: Path = Path("/sys"),
    dev_root: Path = Path("/dev"),
    *,
    access: Callable[[Path], bool] = can_read_write,
) -> list[HidrawDevice]:
    """List every hidraw node in ``sys_root/class/hidraw``, ordered by number.

    Reads ``HID_ID=<bus>:<vendor>:<product>`` and ``HID_NAME`` from each node's
    ``device/uevent``. A node that vanishes while being read (unplugged) is left out.

    Args:
        sys_root: where sysfs is mounted.
        dev_root: where the device nodes are (``dev_root/hidrawN``).
        access: tells whether a node can be opened for reading and writing.
    """
    class_dir = sys_root / "class" / "hidraw"
    if not class_dir.is_dir():
        return []
    devices = []
    for entry in sorted(class_dir.iterdir(), key=_hidraw_number):
        try:
            uevent = (entry / "device" / "uevent").read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            continue  # unplugged between listing and reading
        fields = dict(line.split("=", 1) for line in uevent.splitlines() if "=" in line)
        vendor_id, product_id = _parse_hid_id(fields.get("HID_ID", ""))
        node = dev_root / entry.name
        devices.append(
            HidrawDevice(
                path=node,
                vendor_id=vendor_id,
                product_id=product_id,
                name=fields.get("HID_NAME", "unnamed HID device"),
                readable=node.exists() and access(node),
            )
        )
    return devices


def find_spacemouse_hidraw(
    sys_root: Path = Path("/sys"),
    dev_root: Path = Path("/dev"),
    *,
    access: Callable[[Path], bool] = can_read_write,
) -> list[HidrawDevice]:
    """The hidraw nodes of 3Dconnexion devices (see :func:`is_spacemouse`), ordered by number.

    Arguments as for :func:`find_hidraw_devices`.
    """
    return [
        d
        for d in find_hidraw_devices(sys_root, dev_root, access=access)
        if is_spacemouse(d.vendor_id, d.product_id)
    ]


def _hidraw_number(entry: Path) -> tuple[int, str]:
    digits = entry.name.removeprefix("hidraw")
    return (int(digits), "") if digits.isdigit() else (1 << 30, entry.name)


def _parse_hid_id(hid_id: str) -> tuple[int, int]:
    """``0003:0000046D:0000C626`` -> (0x046d, 0xc626); (0, 0) when malformed."""
    parts = hid_id.split(":")
    try:
        return int(parts[1], 16), int(parts[2], 16)
    except (IndexError, ValueError):
        return 0, 0


@dataclass(frozen=True)
class Diagnosis:
    """Why a SpaceMouse cannot be used, and what to do about it."""

    problem: str
    """What is wrong, e.g. "permission denied on /dev/hidraw3 (3Dconnexion SpaceMouse Compact)"."""
    fix: str
    """What to do, as commands where possible."""

    def __str__(self) -> str:
        return f"{self.problem}: {self.fix}"


LIBHIDAPI_MISSING = Diagnosis(
    "libhidapi-hidraw0 is not installed",
    "run `sudo apt-get install libhidapi-hidraw0` (or `sudo udev/install.sh`)",
)
NOTHING_FOUND = Diagnosis(
    "no SpaceMouse found",
    "plug it in (3Dconnexion vendors 046d/256f); `iil-robot doctor` shows what is visible",
)


def diagnose_nodes(nodes: Sequence[HidrawDevice]) -> Diagnosis | None:
    """What keeps these SpaceMouse hidraw nodes from being opened; None if one is usable.

    Args:
        nodes: the result of :func:`find_spacemouse_hidraw`.
    """
    if any(n.readable for n in nodes):
        return None
    if not nodes:
        return NOTHING_FOUND
    missing = [n for n in nodes if not n.path.exists()]
    if missing:
        names = ", ".join(f"{n.path.name} ({n.name})" for n in missing)
        paths = " ".join(f"--device {n.path}" for n in missing)
        return Diagnosis(
            f"the kernel sees {names} but there is no node for it in {missing[0].path.parent}",
            f"in a container, pass the device in (e.g. `docker run {paths}`) and re-run",
        )
    names = ", ".join(f"{n.path} ({n.name})" for n in nodes)
    return Diagnosis(
        f"permission denied on {names}",
        f"install udev/{RULES_NAME} with `sudo udev/install.sh`, then unplug and replug the device",
    )


def diagnose_open_failure(
    error: Exception,
    sys_root: Path = Path("/sys"),
    dev_root: Path = Path("/dev"),
    *,
    access: Callable[[Path], bool] = can_read_write,
) -> Diagnosis:
    """Turn an exception from :func:`open_pyspacemouse` into a problem and a fix.

    Checks, in order: hidapi missing (pyspacemouse's "HID API is probably not installed"),
    an unknown ``device_name``, then the SpaceMouse hidraw nodes in sysfs (none, node
    missing in a container, permission denied); otherwise reports the original error.
    Arguments after ``error`` as for :func:`find_hidraw_devices`.
    """
    if _is_hidapi_missing(error):
        return LIBHIDAPI_MISSING
    if isinstance(error, ValueError) and str(error).startswith("Unknown device"):
        return Diagnosis(
            f"unknown SpaceMouse device name ({error})",
            'set device_name to one of those names, or to "" for the first SpaceMouse found',
        )
    nodes = find_spacemouse_hidraw(sys_root, dev_root, access=access)
    by_nodes = diagnose_nodes(nodes)
    if by_nodes is not None:
        return by_nodes
    where = ", ".join(n.describe() for n in nodes)
    text = f"{type(error).__name__}: {error}"
    if "No connected or supported devices found" in str(error):
        return Diagnosis(
            f"pyspacemouse does not support the 3Dconnexion device at {where} ({text})",
            "upgrade pyspacemouse or pass a custom device spec; `iil-robot doctor` shows what is visible",
        )
    if str(error).startswith("Device '") and str(error).endswith("not found."):
        return Diagnosis(
            f"{error} (visible: {where})",
            'set device_name to the connected model, or to "" for the first SpaceMouse found',
        )
    return Diagnosis(
        f"could not open the SpaceMouse at {where} ({text})",
        "unplug and replug it, close other programs that hold it, and run `iil-robot doctor`",
    )


def diagnose_open_error(
    error: Exception,
    sys_root: Path = Path("/sys"),
    dev_root: Path = Path("/dev"),
    *,
    access: Callable[[Path], bool] = can_read_write,
) -> str:
    """One actionable line ("problem: fix") for an exception from :func:`open_pyspacemouse`.

    See :func:`diagnose_open_failure` for the checks; the arguments are the same.
    """
    return str(diagnose_open_failure(error, sys_root, dev_root, access=access))


def _is_hidapi_missing(error: BaseException) -> bool:
    """pyspacemouse raises RuntimeError("HID API is probably not installed...") from the
    AttributeError cffi gives when the hidapi symbols are missing."""
    seen: BaseException | None = error
    while seen is not None:
        text = str(seen)
        if "HID API is probably not installed" in text:
            return True
        if isinstance(seen, AttributeError) and "symbol 'hid_" in text:
            return True  # cffi: the hidapi functions are not in any loaded library
        if isinstance(seen, OSError) and "hidapi" in text:
            return True  # dlopen("libhidapi-hidraw.so.0") failed
        seen = seen.__cause__ or seen.__context__
    return False


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
