"""Both buttons together: episode requests on a two-button SpaceMouse Compact.

A Compact's two buttons already take over and toggle the gripper, so the episode requests go on
chords of the two: both pressed within ``window`` seconds of each other and released before
``long_press_time`` is a *tap*; both held for ``long_press_time`` is a *long* chord. Each chord
fires its request once (the long one as soon as the time is up, so the operator feels when it
counted).

The buttons' own actions must not fire on the way into a chord (the gripper would toggle as the
operator reaches for "success"), so while chords are on, a press of either button is held back
for ``window`` seconds: the second button arriving in that time makes a chord, and both buttons
read as released until the operator lets go of both; otherwise the press goes through late by at
most ``window`` (a tap shorter than that is still delivered, for one update). Pure logic: the
caller passes the raw buttons and a monotonic ``now``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

EPISODE_REQUESTS: tuple[str, ...] = ("success", "failure", "reset")
"""What a button or chord may ask the episode manager for (on ``episode/request``)."""


class ChordConfigError(ValueError):
    """A chord parameter is out of range."""


@dataclass(frozen=True)
class ChordConfig:
    """Which requests the two-button chords make, and their timing."""

    buttons: tuple[int, int] = (0, 1)
    """The two buttons (0-based) whose chord counts (a Compact's left and right)."""
    tap: str = ""
    """Request of a short chord (``success``, ``failure``, ``reset``; empty = none)."""
    long: str = ""
    """Request of a chord held for ``long_press_time`` (empty = none)."""
    window: float = 0.2
    """Seconds between the two presses that still make a chord (each press waits this long)."""
    long_press_time: float = 1.0
    """Seconds both buttons must be held for the long chord."""

    @property
    def enabled(self) -> bool:
        return bool(self.tap or self.long)

    def validate(self) -> None:
        """Raise ChordConfigError naming the first bad parameter and its allowed values."""
        for name in ("tap", "long"):
            value = getattr(self, name)
            if value and value not in EPISODE_REQUESTS:
                raise ChordConfigError(f"chords.{name}={value!r} must be one of {EPISODE_REQUESTS} or empty")
        if self.tap and self.tap == self.long:
            raise ChordConfigError(f"chords.tap and chords.long both request {self.tap!r}: give them different requests")
        if len(self.buttons) != 2 or self.buttons[0] == self.buttons[1] or min(self.buttons) < 0:
            raise ChordConfigError(f"chords.buttons={list(self.buttons)} must name two different buttons (>= 0)")
        if not (0.0 < self.window <= 1.0 and math.isfinite(self.window)):
            raise ChordConfigError(f"chords.window={self.window} must be in (0, 1] seconds")
        if not (self.window < self.long_press_time <= 10.0):
            raise ChordConfigError(f"chords.long_press_time={self.long_press_time} must be in (window, 10] seconds")


class Chords:
    """Turns raw buttons into the buttons the gate acts on plus the chord requests."""

    def __init__(self, config: ChordConfig) -> None:
        config.validate()
        self.config = config
        self._down_since: dict[int, float] = {}  # chord buttons held back, and since when
        self._chord_since: float | None = None
        self._long_fired = False

    def update(self, buttons: Sequence[int], now: float) -> tuple[tuple[int, ...], tuple[str, ...]]:
        """The buttons as the gate should see them, and the requests of chords completed now."""
        if not self.config.enabled:
            return tuple(buttons), ()
        out = [1 if b else 0 for b in buttons]
        a, b = self.config.buttons
        if max(a, b) >= len(out):
            return tuple(out), ()
        held = {i for i in (a, b) if out[i]}
        if self._chord_since is not None:
            return self._in_chord(out, held, now)
        if held == {a, b} and all(now - self._down_since.get(i, now) < self.config.window for i in held):
            self._chord_since, self._long_fired = now, False
            self._down_since.clear()
            out[a] = out[b] = 0
            return tuple(out), ()
        for i in (a, b):
            if i in held:
                since = self._down_since.setdefault(i, now)
                if now - since < self.config.window:
                    out[i] = 0  # held back: it may still become a chord
            elif i in self._down_since:
                since = self._down_since.pop(i)
                if now - since < self.config.window:
                    out[i] = 1  # a tap shorter than the window: pressed now, released on the next update
        return tuple(out), ()

    def _in_chord(self, out: list[int], held: set[int], now: float) -> tuple[tuple[int, ...], tuple[str, ...]]:
        a, b = self.config.buttons
        out[a] = out[b] = 0  # until both are released, neither button does its own action
        requests: tuple[str, ...] = ()
        assert self._chord_since is not None
        if not held:
            if not self._long_fired and self.config.tap:
                requests = (self.config.tap,)
            self._chord_since = None
        elif held == {a, b} and not self._long_fired and now - self._chord_since >= self.config.long_press_time:
            self._long_fired = True
            requests = (self.config.long,) if self.config.long else ()
        return tuple(out), requests
