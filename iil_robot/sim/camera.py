"""Offscreen RGB images of a MuJoCo scene (headless with MUJOCO_GL=egl or osmesa)."""
from __future__ import annotations

import mujoco
import numpy as np

from iil_robot.sim.spec import CAMERAS

DEFAULT_CAMERA = CAMERAS["front"]
"""Fetch's camera in front of the table, looking down at the workspace."""


class Camera:
    """Renders a model's scene; keeps one `mujoco.Renderer` per image size.

    Raises (from `render`):
        ValueError: on an unknown camera name or a non-positive size.
        RuntimeError: if no OpenGL backend works (set MUJOCO_GL=egl, or osmesa).
    """

    def __init__(self, model: mujoco.MjModel) -> None:
        self._model = model
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}

    def render(self, data: mujoco.MjData, width: int, height: int, camera: str = DEFAULT_CAMERA) -> np.ndarray:
        """RGB image of ``data`` seen from the named model camera, shape (height, width, 3), uint8."""
        if width < 1 or height < 1:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        if mujoco.mj_name2id(self._model, mujoco.mjtObj.mjOBJ_CAMERA, camera) < 0:
            names = [self._model.camera(i).name for i in range(self._model.ncam)]
            raise ValueError(f"unknown camera {camera!r}; the model has {names}")
        renderer = self._renderer(width, height)
        renderer.update_scene(data, camera=camera)
        return renderer.render()

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()

    def _renderer(self, width: int, height: int) -> mujoco.Renderer:
        key = (width, height)
        if key not in self._renderers:
            vis = self._model.vis.global_
            vis.offwidth, vis.offheight = max(vis.offwidth, width), max(vis.offheight, height)
            try:
                self._renderers[key] = mujoco.Renderer(self._model, height=height, width=width)
            except Exception as err:  # mujoco raises plain Exceptions from its GL backends
                raise RuntimeError(
                    f"cannot render offscreen ({err}); set MUJOCO_GL=egl (or osmesa) before importing "
                    "mujoco, and install libegl1 libgl1 (or libosmesa6)"
                ) from err
        return self._renderers[key]


def pinhole(model: mujoco.MjModel, camera: str, width: int, height: int) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) in pixels of a model camera's image of ``width`` x ``height``: MuJoCo cameras are ideal
    pinholes with a vertical field of view ``fovy`` and square pixels, centred.

    Raises:
        ValueError: on an unknown camera name.
    """
    index = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
    if index < 0:
        raise ValueError(f"unknown camera {camera!r}; the model has {[model.camera(i).name for i in range(model.ncam)]}")
    f = 0.5 * height / np.tan(np.radians(model.cam_fovy[index]) / 2)
    return float(f), float(f), width / 2.0, height / 2.0
