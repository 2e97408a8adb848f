"""Stand-in success classifiers for tests: what a user's model looks like to the episode manager."""
from __future__ import annotations

import numpy as np


def bright(rgb: np.ndarray) -> float:
    """Success when the image is mostly white."""
    return float(rgb.mean() / 255.0)


class Broken:
    """A model that fails on every image."""

    def __call__(self, rgb: np.ndarray) -> float:
        raise RuntimeError("CUDA out of memory")


NOT_CALLABLE = 3
