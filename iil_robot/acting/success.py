"""Success from camera images: a pluggable classifier the episode manager asks, as hil-serl's reward classifier.

A classifier is any callable that takes an RGB image (``numpy`` uint8, height x width x 3) and returns the
probability that the task is done, named ``module:attribute`` (a class is instantiated without arguments
first). Nothing is trained here: bring your own (a small CNN on a few hundred labelled frames does, as in
hil-serl). The episode manager ends a running episode as a success once ``frames`` images in a row score at or
above ``threshold``; it asks at most ``rate`` times a second so a slow model cannot take the manager's time.
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

__all__ = ["ClassifierError", "ImageSuccess", "load_classifier"]

Classifier = Callable[[np.ndarray], float]


class ClassifierError(ValueError):
    """The classifier cannot be loaded, or answered something that is not a probability."""


def load_classifier(spec: str) -> Classifier:
    """The classifier named ``module:attribute``. Raises ClassifierError saying what is wrong."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ClassifierError(f"success_classifier {spec!r} must be 'module:attribute', e.g. 'my_robot.success:Model'")
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # whatever the module raises while importing
        raise ClassifierError(f"cannot import {module_name!r} for success_classifier: {err} (is it on PYTHONPATH?)") from err
    try:
        target = getattr(module, attribute)
    except AttributeError:
        raise ClassifierError(f"{module_name!r} has no {attribute!r} (success_classifier {spec!r})") from None
    if isinstance(target, type):
        try:
            target = target()
        except Exception as err:
            raise ClassifierError(f"cannot create {spec} without arguments: {err}") from err
    if not callable(target):
        raise ClassifierError(f"success_classifier {spec!r} is a {type(target).__name__}, not a callable on an image")
    return target


@dataclass
class ImageSuccess:
    """Asks a classifier about camera images, at most ``rate`` times a second; success after ``frames`` in a row."""

    classifier: Classifier
    threshold: float = 0.5
    """Probability at or above which an image counts as success."""
    frames: int = 1
    """Images in a row that must count as success."""
    rate: float = 5.0
    """Largest number of images judged per second."""
    _next: float = field(default=-math.inf, repr=False)
    _streak: int = field(default=0, repr=False)

    def judge(self, rgb: np.ndarray, now: float) -> bool | None:
        """Whether ``frames`` images in a row now say success; None when this image was skipped (rate).

        Raises:
            ClassifierError: the classifier raised, or returned something that is not a probability.
        """
        if now < self._next:
            return None
        self._next = now + 1.0 / self.rate
        try:
            score = float(self.classifier(rgb))
        except Exception as err:  # a user's model: any error is reported, none stops the manager
            self._streak = 0
            raise ClassifierError(f"the success classifier raised {type(err).__name__}: {err}") from err
        if not 0.0 <= score <= 1.0:  # NaN fails this too
            self._streak = 0
            raise ClassifierError(f"the success classifier returned {score}, not a probability in [0, 1]")
        self._streak = self._streak + 1 if score >= self.threshold else 0
        return self._streak >= self.frames

    def restart(self) -> None:
        """Forget the streak (a new episode)."""
        self._streak = 0
