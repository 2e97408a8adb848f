"""Whether the learner keeps up with the arm: its updates per env step, against the method's budget.

Updates per second say little by themselves: an arm at 20 Hz needs twice the updates of one at 10 Hz for the same
learning per step. The learning benchmark gives every method a budget of updates per env step
(``Method.updates_per_step``); live, the learner holds itself to the same one, measured over a recent window of
training (not over the wait for the first transitions or the warm start, when it has no reason to update).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["Pace"]


@dataclass(frozen=True)
class _Sample:
    time: float
    env_steps: int
    updates: int


class Pace:
    """Updates per env step over the last ``span`` seconds of training, and whether that is below ``budget``."""

    def __init__(self, budget: float, span: float = 30.0, min_steps: int = 20) -> None:
        self.budget, self.span, self.min_steps = budget, span, min_steps
        self._samples: deque[_Sample] = deque()

    def add(self, now: float, env_steps: int, updates: int, training: bool) -> None:
        """The learner's counters at ``now`` (env steps received and updates done, both since it started); while it is
        not ``training`` (waiting for data, warm start) the window starts afresh."""
        if not training:
            self._samples.clear()
            return
        self._samples.append(_Sample(now, env_steps, updates))
        while len(self._samples) > 2 and now - self._samples[1].time >= self.span:
            self._samples.popleft()

    def ratio(self) -> float | None:
        """Updates per env step over the window; None with fewer than ``min_steps`` env steps in it (the arm is idle
        or training just began)."""
        if len(self._samples) < 2:
            return None
        first, last = self._samples[0], self._samples[-1]
        steps = last.env_steps - first.env_steps
        if steps < self.min_steps:
            return None
        return (last.updates - first.updates) / steps

    def behind(self) -> bool:
        """The learner does fewer updates per env step than its budget."""
        ratio = self.ratio()
        return ratio is not None and ratio < self.budget
