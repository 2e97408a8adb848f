"""The commands in flight: sent by the mux, but not yet seen in the end-effector pose.

The workspace brakes from the latest pose, but a pose is a measurement from the past, and a command takes time to
reach the arm: every command sent since the pose was measured, and those sent shortly before it, still on their way,
will move the arm further. Braking as if the arm were where the pose says it is lets a delayed loop overshoot.
:class:`SentCommands` keeps the twists the mux sent with their times; ``in_flight`` integrates them over the last
``window`` seconds (each one held until the next, as an arm driver does): the motion still to come.
"""
from __future__ import annotations

from collections import deque
from typing import Sequence

__all__ = ["SentCommands"]


class SentCommands:
    """The twists the mux sent over the last few tenths of a second, with their (monotonic) times."""

    def __init__(self) -> None:
        self._sent: deque[tuple[float, tuple[float, ...]]] = deque()

    def add(self, now: float, twist: Sequence[float], keep: float) -> None:
        """The mux sent ``twist`` at ``now``; history that ``in_flight`` will never need again (a window of at most
        ``keep`` seconds) is forgotten."""
        values = tuple(float(v) for v in twist)
        if self._sent and self._sent[-1][1] == values:
            return  # the same command again (a refresh): held on, nothing new to keep
        self._sent.append((now, values))
        while len(self._sent) > 1 and self._sent[1][0] <= now - keep:
            self._sent.popleft()  # the second one took over before the longest window starts

    def in_flight(self, now: float, window: float) -> tuple[float, ...]:
        """The motion the commands sent over the last ``window`` seconds produce: displacement (m) and rotation
        vector (rad, the sum of each command's; exact for turns about one axis, to second order otherwise: well
        under a degree over the fraction of a second in flight), in the command frame."""
        start, end = now - window, now
        moved = [0.0] * 6
        for time, twist in reversed(self._sent):  # newest first, each held until the one after it
            held = end - max(time, start)
            if held > 0.0:
                moved = [m + v * held for m, v in zip(moved, twist)]
            if time <= start:
                break
            end = time
        return tuple(moved)
