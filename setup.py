"""ament_python glue: colcon builds this package through setup.py.

Metadata and console scripts live in pyproject.toml; this adds the files ROS 2 expects in
share/ (the ament index marker, package.xml, launch and config files, udev rules).
"""
from glob import glob

from setuptools import setup

PACKAGE = "iil_robot"

setup(
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob(f"{PACKAGE}/config/*.yaml")),
        (f"share/{PACKAGE}/udev", glob("udev/*")),
    ],
)
