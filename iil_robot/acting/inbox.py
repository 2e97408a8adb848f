"""Weights messages on their way to the acting policy: screened on arrival, fully checked beside the ticks.

A message is first screened where it arrives (``PolicyRunner.screen``: header and sizes, well under a
millisecond): one that fails is dropped at once, so a stream of malformed messages cannot push out a good
one. Messages that pass wait in a short queue, oldest dropped first, and a worker thread checks each in
arrival order and builds its network (``PolicyRunner.prepare``: tens of milliseconds on a busy CPU). The
tick then installs the newest ready policy (``take``), so validation never sits on the control tick.
"""
from __future__ import annotations

import threading
from collections import deque
from typing import Callable

from iil_robot.acting.policy import Active, PolicyRunner
from iil_robot.learners.weights import WeightsError

__all__ = ["WeightsInbox"]


class WeightsInbox:
    """Screens weights messages, checks them on a worker thread, hands the newest good one to the tick."""

    def __init__(self, runner: PolicyRunner, on_refused: Callable[[WeightsError], None], capacity: int = 4) -> None:
        self.runner, self.on_refused = runner, on_refused
        self._queue: deque[bytes] = deque(maxlen=capacity)
        self._ready: Active | None = None
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self._busy = False  # the worker is checking a message
        self._thread = threading.Thread(target=self._work, name="weights-check", daemon=True)
        self._thread.start()

    def offer(self, data: bytes) -> None:
        """Screen ``data`` and queue it for the full check. Raises WeightsError when the screen refuses it."""
        self.runner.screen(data)
        with self._wake:
            self._queue.append(data)
            self._wake.notify()

    def take(self) -> Active | None:
        """The newest fully checked policy newer than the active one, once; None when there is none."""
        with self._lock:
            ready, self._ready = self._ready, None
        return ready if ready is not None and ready.version > self.runner.version else None

    def waiting(self) -> int:
        """Messages queued for the check, not yet started."""
        with self._lock:
            return len(self._queue)

    def idle(self) -> bool:
        """Whether nothing waits for the check or is being checked (tests and benches await this)."""
        with self._lock:
            return not self._queue and not self._busy

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=5.0)

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                data = self._queue.popleft()
                self._busy = True
            try:
                candidate = self.runner.prepare(data)
            except WeightsError as err:
                self.on_refused(err)
                candidate = None
            except Exception as err:  # a bug in the check must not end the checking: report it as a refusal
                self.on_refused(WeightsError(f"the weights check failed unexpectedly: {type(err).__name__}: {err}"))
                candidate = None
            with self._lock:
                self._busy = False
                if candidate is not None and (self._ready is None or candidate.version > self._ready.version):
                    self._ready = candidate
