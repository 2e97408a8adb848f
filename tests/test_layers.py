"""The core stays free of rclpy: only the nodes and a few ROS-side helpers may import it."""
import ast
from pathlib import Path

import iil_robot

PACKAGE = Path(iil_robot.__file__).parent
ROS_SIDE = {"nodes"}


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_modules_do_not_import_rclpy():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.split("/")[0] in ROS_SIDE or relative in ROS_SIDE:
            continue
        if {"rclpy", "std_msgs", "geometry_msgs", "sensor_msgs"} & imports_of(path):
            offenders.append(relative)
    assert offenders == []


def test_no_module_unpickles():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        forbidden = ("pickle" + ".load", "torch" + ".load(")  # spelled apart so this file is not a match itself
        assert not any(f in text for f in forbidden), path
