"""The dashboard's camera thumbnail, without ROS: the newest frame written to the run folder, and
drawn inline where the terminal has an image protocol.

``ThumbnailWriter.offer`` takes the camera's JPEG bytes as they arrive and rewrites
``<run>/camera_latest.jpg`` at most once per ``period`` (atomically: a temporary file renamed
over it, so a viewer never reads half a file). ``inline_protocol`` detects kitty's graphics
protocol or iTerm2's inline images from the environment; ``inline_image`` is the escape sequence
that draws a JPEG there (kitty needs PNG: it is re-encoded). Other terminals get no image.
"""
from __future__ import annotations

import base64
import os
import time
from pathlib import Path
from typing import Callable, Mapping

import cv2
import numpy as np

from iil_robot.data.camera import CameraError, decode_jpeg

__all__ = ["THUMBNAIL_FILE", "ThumbnailWriter", "inline_image", "inline_protocol"]

THUMBNAIL_FILE = "camera_latest.jpg"
KITTY_CHUNK = 4096
"""Largest base64 payload per kitty graphics escape (the protocol's limit)."""


class ThumbnailWriter:
    """Rewrites ``path`` with the newest frame, at most once per ``period`` seconds."""

    def __init__(self, path: Path, period: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        if period < 0:
            raise ValueError(f"period {period} must be >= 0 seconds")
        self.path, self.period, self.clock = Path(path), period, clock
        self.latest: bytes | None = None
        """The newest frame offered (JPEG), written or not."""
        self.written = 0
        self._last: float | None = None

    def offer(self, jpeg: bytes) -> bool:
        """A new frame; returns whether it was written now (else it waits for the next offer after ``period``).

        Raises:
            OSError: the run folder cannot be written.
        """
        self.latest = bytes(jpeg)
        now = self.clock()
        if self._last is not None and now - self._last < self.period:
            return False
        self._last = now
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        temporary.write_bytes(self.latest)
        os.replace(temporary, self.path)  # atomic on POSIX: readers see the old or the new file, never a mix
        self.written += 1
        return True


def inline_protocol(environ: Mapping[str, str] = os.environ) -> str | None:
    """``kitty``, ``iterm`` or None (no inline images) for the terminal described by ``environ``."""
    if environ.get("TERM") == "xterm-kitty" or environ.get("KITTY_WINDOW_ID") or environ.get("TERM_PROGRAM") == "ghostty":
        return "kitty"
    if environ.get("TERM_PROGRAM") in ("iTerm.app", "WezTerm") or environ.get("LC_TERMINAL") == "iTerm2":
        return "iterm"
    return None


def inline_image(jpeg: bytes, protocol: str, columns: int = 16, rows: int = 8) -> str:
    """Escape sequence drawing the frame in ``columns`` × ``rows`` terminal cells.

    Raises:
        CameraError: kitty only: the JPEG cannot be decoded (it is sent as PNG).
        ValueError: an unknown protocol.
    """
    if protocol == "iterm":
        payload = base64.b64encode(jpeg).decode("ascii")
        return f"\x1b]1337;File=inline=1;size={len(jpeg)};width={columns};height={rows};preserveAspectRatio=1:{payload}\x07"
    if protocol == "kitty":
        ok, png = cv2.imencode(".png", cv2.cvtColor(decode_jpeg(jpeg), cv2.COLOR_RGB2BGR))
        if not ok:
            raise CameraError("PNG encoding of the thumbnail failed")
        payload = base64.b64encode(np.asarray(png).tobytes()).decode("ascii")
        chunks = [payload[i:i + KITTY_CHUNK] for i in range(0, len(payload), KITTY_CHUNK)] or [""]
        out = []
        for i, chunk in enumerate(chunks):
            more = int(i < len(chunks) - 1)
            keys = f"a=T,f=100,c={columns},r={rows},m={more}" if i == 0 else f"m={more}"
            out.append(f"\x1b_G{keys};{chunk}\x1b\\")
        return "".join(out)
    raise ValueError(f"unknown inline image protocol {protocol!r}; expected 'kitty' or 'iterm'")
