"""The result of one ``iil-robot doctor`` check (SpaceMouse and MoveIt Servo checks alike)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["CheckResult", "LABELS", "Status"]

Status = Literal["ok", "warn", "fail", "skip"]
LABELS: dict[str, str] = {"ok": "OK", "warn": "WARN", "fail": "FAIL", "skip": "SKIP"}


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check."""

    name: str
    """Short check name, e.g. "hidraw nodes"."""
    status: Status
    """ok, warn (works, but not as intended), fail (blocks the SpaceMouse or the arm), skip (not tried)."""
    detail: str
    """What was found."""
    fix: str | None = None
    """What to do when not OK; None when OK."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def line(self) -> str:
        """``FAIL hidraw nodes: <detail> -> <fix>``."""
        text = f"{LABELS[self.status]:<4} {self.name}: {self.detail}"
        return f"{text} -> {self.fix}" if self.fix else text
