"""The package layout shows the layers: which layer may import which, what each may use, and no import cycles.

Every import counts, those inside functions too (a lazy import is still a dependency)."""
import ast
from pathlib import Path

import iil_robot

PACKAGE = Path(iil_robot.__file__).parent

ALLOWED = {
    "config": set(),
    "command": {"data", "config"},
    "data": {"config"},
    "learners": {"data", "config"},
    "acting": {"learners", "data", "config"},
    "sim": {"command", "data", "config"},
    "nodes": {"command", "data", "learners", "acting", "sim", "config"},
    "bench": {"command", "data", "learners", "acting", "sim", "nodes", "cli", "config"},
    "cli": {"command", "data", "learners", "acting", "sim", "nodes", "bench", "config"},
}
"""Layer -> the other layers it may import (each may import itself)."""
FORBIDDEN = {
    "command": {"torch", "rclpy", "cv2"},
    "data": {"torch", "rclpy"},
    "learners": {"rclpy", "rosbags", "mcap"},
    "acting": {"rclpy", "rosbags", "mcap"},
    "sim": {"torch", "rclpy"},
    "bench": {"rclpy"},
    "cli": {"rclpy"},
}
"""Layer -> third-party packages it must not import (only nodes/ speaks ROS; learners read no bags)."""
ROS_PACKAGES = {"rclpy", "std_msgs", "geometry_msgs", "sensor_msgs", "diagnostic_msgs", "std_srvs"}


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(["iil_robot", *parts])] = path
    return out


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else "root"


def test_every_module_lives_in_a_layer():
    assert sorted(m for m in modules() if layer_of(m) == "root") == ["iil_robot"]


def test_layers_import_only_the_layers_below_them():
    offenders = []
    for module, path in modules().items():
        layer = layer_of(module)
        for name in imports_of(path):
            if name.startswith("iil_robot.") and name in modules():
                other = layer_of(name)
                if other != layer and other not in ALLOWED.get(layer, set()):
                    offenders.append(f"{module} imports {name}")
    assert offenders == []


def test_layers_use_only_what_they_may():
    offenders = []
    for module, path in modules().items():
        layer = layer_of(module)
        forbidden = FORBIDDEN.get(layer, set()) | (ROS_PACKAGES if layer != "nodes" else set())
        used = {name.split(".")[0] for name in imports_of(path)} & forbidden
        offenders += [f"{module} imports {name}" for name in sorted(used)]
    assert offenders == []


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {module: {n for n in imports_of(path) if n in known and n != module} for module, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_in_the_package():
    graph = {m: {n for n in deps if not m.startswith(n + ".")} for m, deps in import_graph().items()}  # a package's own __init__
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_unpickles():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        forbidden = ("pickle" + ".load", "torch" + ".load(")  # spelled apart so this file is not a match itself
        assert not any(f in text for f in forbidden), path
