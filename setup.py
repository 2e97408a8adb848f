"""iil_robot: a pip-installable Python package that is also an ament_python ROS 2 package.

colcon builds it through this file (with setup.cfg and package.xml), and pip through
pyproject.toml's setuptools backend, which reads this file too. Besides the Python package and
one console script per node, it installs what ROS 2 expects in share/: the ament index marker,
package.xml, launch and parameter files, and the udev rules.
"""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "iil_robot"

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Teach robot arms through human interventions: SpaceMouse gate, arbitration mux, recorder, "
                "RLIF / HG-DAgger learners on ROS 2.",
    license="Apache-2.0",
    # Loose here; ./iil installs the pinned set from requirements*.txt.
    install_requires=["numpy>=1.26", "PyYAML>=6", "pyspacemouse>=2.1,<3"],
    entry_points={
        "console_scripts": [
            "iil-robot = iil_robot.cli.main:main",
            "spacemouse_gate = iil_robot.nodes.spacemouse_gate:main",
            "mux = iil_robot.nodes.mux:main",
            "scripted_policy = iil_robot.nodes.scripted_policy:main",
            "scripted_input = iil_robot.nodes.scripted_input:main",
            "arm_status = iil_robot.nodes.arm_status:main",
            "estop_heartbeat = iil_robot.nodes.estop_heartbeat:main",
            "recorder = iil_robot.nodes.recorder:main",
            "player = iil_robot.nodes.player:main",
            "learner = iil_robot.nodes.learner:main",
            "policy = iil_robot.nodes.policy_node:main",
            "sim_arm = iil_robot.nodes.sim_arm:main",
            "sim_operator = iil_robot.nodes.sim_operator:main",
            "camera = iil_robot.nodes.camera:main",
            "observer = iil_robot.nodes.observer:main",
            "episode_manager = iil_robot.nodes.episode_manager:main",
        ],
    },
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={PACKAGE: ["config/*.yaml", "config/profiles/*.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob(f"{PACKAGE}/config/*.yaml")),
        (f"share/{PACKAGE}/config/profiles", glob(f"{PACKAGE}/config/profiles/*.yaml")),
        (f"share/{PACKAGE}/udev", glob("udev/*")),
    ],
)
