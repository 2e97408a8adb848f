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


def write_test_video(path, frames: int = 30, width: int = 96, height: int = 72, fps: float = 20.0):
    """An MJPEG video generated at test time (no binary media in the repository): frame ``i`` is a
    uniform grey of level ``brightness(i)`` with a white square moving right. Returns ``path``."""
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened(), "OpenCV cannot write MJPEG video here"
    for i in range(frames):
        bgr = np.full((height, width, 3), brightness(i), np.uint8)
        x = (4 * i) % (width - 8)
        bgr[4:12, x:x + 8] = 255
        writer.write(bgr)
    writer.release()
    return path


def brightness(i: int) -> int:
    """Grey level of frame ``i`` of ``write_test_video`` (distinct for 30 consecutive frames)."""
    return 20 + 7 * (i % 30)
