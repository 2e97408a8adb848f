"""Fakes shared by the device tests: a sysfs/dev tree with hidraw nodes, and a deadline-based wait."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest


@dataclass
class FakeHidrawTree:
    """A fake ``/sys/class/hidraw`` + ``/dev`` under tmp_path.

    Root runs the tests here, so real permission bits mean nothing to os.access; readability
    is decided by ``access`` instead (pass it to the functions under test).
    """

    sys_root: Path
    dev_root: Path
    readable: set[Path] = field(default_factory=set)

    def add(self, number: int, vendor_id: int, product_id: int, name: str, *,
            readable: bool = True, node: bool = True, bus: int = 3) -> Path:
        """Add hidraw<number>; returns its /dev path."""
        device_dir = self.sys_root / "class" / "hidraw" / f"hidraw{number}" / "device"
        device_dir.mkdir(parents=True)
        (device_dir / "uevent").write_text(
            "DRIVER=hid-generic\n"
            f"HID_ID={bus:04X}:{vendor_id:08X}:{product_id:08X}\n"
            f"HID_NAME={name}\n"
            f"HID_PHYS=usb-0000:00:14.0-{number}/input0\n"
        )
        path = self.dev_root / f"hidraw{number}"
        if node:
            path.touch()
        if readable:
            self.readable.add(path)
        return path

    def access(self, path: Path) -> bool:
        return path in self.readable


def wait_until(predicate: Callable[[], bool], timeout: float = 3.0, what: str = "condition") -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.001)
