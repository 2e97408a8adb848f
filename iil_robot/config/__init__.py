"""Parameter files shared by `iil-robot` (which starts the nodes itself) and the launch files."""
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent


def config_path(name: str) -> Path:
    """Path of a packaged parameter file, e.g. ``config_path("mux.yaml")``."""
    path = CONFIG_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"no parameter file {name!r} in {CONFIG_DIR}")
    return path
