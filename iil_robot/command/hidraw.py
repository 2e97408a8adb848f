"""Finding SpaceMouse hidraw nodes and saying what to do when one cannot be opened.

Reads ``/sys/class/hidraw/*/device/uevent`` directly, so it works without hidapi (the
diagnosis must work exactly when hidapi is missing). Used by the reader and ``iil-robot doctor``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

LOGITECH_VENDOR_ID = 0x046D
"""Logitech: 3Dconnexion's vendor id while it was a Logitech company (products 0xc6xx)."""
THREEDCONNEXION_VENDOR_ID = 0x256F
"""3Dconnexion's own vendor id (all products)."""
THREEDCONNEXION_VENDOR_IDS: tuple[int, ...] = (LOGITECH_VENDOR_ID, THREEDCONNEXION_VENDOR_ID)

RULES_NAME = "70-iil-robot-spacemouse.rules"
"""File name of the udev rule in udev/ (see udev/install.sh)."""

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

