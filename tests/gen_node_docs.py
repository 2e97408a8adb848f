"""The parameter lists of ``docs/nodes.md``, from the parameters each node declares.

    python -m tests.gen_node_docs           # rewrite the generated blocks of docs/nodes.md
    python -m tests.gen_node_docs --check   # exit 1 and show the difference when they are out of date

Each node is built in this process, one at a time, each in its own rclpy context (DDS on loopback, in
a domain of its own), with ``Node.declare_parameter`` wrapped to note every name, default, type, range
and description as the node declares it. Nothing is spun. The page holds one block per node between
``<!-- parameters: NODE -->`` and ``<!-- end parameters: NODE -->``; everything outside the blocks is
written by hand and left alone. ``tests/nodes/test_node_docs.py`` runs ``--check``.
"""
from __future__ import annotations

import argparse
import difflib
import importlib
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "nodes.md"
COMMAND = "python -m tests.gen_node_docs"

ROS_BUILTIN = {"use_sim_time", "start_type_description_service"}
"""Parameters rclpy declares on every node; the page names them once."""

PLACEHOLDERS = ("SOURCE", "LOCK", "FIELD")
"""Stand for the user's own names in keys such as ``topics.<name>.topic`` (written ``<name>`` on the page)."""


@dataclass(frozen=True)
class NodeSpec:
    executable: str
    module: str
    cls: str
    overrides: dict[str, str] = field(default_factory=dict)
    """Parameter overrides that keep construction cheap and safe (no device opened, files in a temporary folder).
    The page shows the declared defaults, never these."""
    tables: tuple[str, ...] = ()
    """Prefixes whose ``<prefix>.<name>.<field>`` parameters are shown as a table of names."""
    computed: dict[str, str] = field(default_factory=dict)
    """Defaults that the node computes from another parameter: shown as this text."""


NODES: tuple[NodeSpec, ...] = (
    NodeSpec("spacemouse_gate", "iil_robot.nodes.spacemouse_gate", "SpaceMouseGate", {"input": "joy"}),
    NodeSpec("mux", "iil_robot.nodes.mux", "MuxNode",
             {"topics.SOURCE.type": "human", "topics.SOURCE.topic": "human/cmd", "locks.LOCK.topic": "estop"},
             computed={"topics.<name>.engaged_topic": "`engaged` beside `topic` (`human/cmd` → `human/engaged`)",
                       "topics.<name>.gripper_topic": "`gripper` beside `topic` (`human/cmd` → `human/gripper`)"}),
    NodeSpec("observer", "iil_robot.nodes.observer", "ObserverNode",
             {"observation_spec": "example/v1", "fields": "[FIELD]", "fields.FIELD.kind": "position",
              "fields.FIELD.topic": "ee_pose"}, computed={"publish_on": "the first field"}),
    NodeSpec("episode_manager", "iil_robot.nodes.episode_manager", "EpisodeManagerNode"),
    NodeSpec("policy", "iil_robot.nodes.policy_node", "PolicyNode"),
    NodeSpec("learner", "iil_robot.nodes.learner", "LearnerNode", {"run_dir": "{tmp}/learner"}),
    NodeSpec("recorder", "iil_robot.nodes.recorder", "RecorderNode", {"output_dir": "{tmp}/bags"}, tables=("topics",)),
    NodeSpec("camera", "iil_robot.nodes.camera", "CameraNode",
             {"cameras.front.type": "image", "cameras.front.topic": "image_raw"}),
    NodeSpec("sim_arm", "iil_robot.nodes.sim_arm", "SimArm"),
    NodeSpec("sim_operator", "iil_robot.nodes.sim_operator", "SimOperatorNode"),
    NodeSpec("estop_heartbeat", "iil_robot.nodes.estop_heartbeat", "EstopHeartbeat"),
    NodeSpec("arm_status", "iil_robot.nodes.arm_status", "ArmStatusNode",
             {"message_type": "std_msgs/msg/UInt8", "topic": "robot_state", "field": "data"}),
    NodeSpec("scripted_policy", "iil_robot.nodes.scripted_policy", "ScriptedPolicy"),
    NodeSpec("scripted_input", "iil_robot.nodes.scripted_input", "ScriptedInput"),
)


@dataclass(frozen=True)
class Declared:
    name: str
    default: Any
    description: str
    low: Any = None
    high: Any = None


def _stay_on_loopback() -> None:
    """The project's network rule, before rclpy loads: DDS on 127.0.0.1, in a domain of this process's own."""
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.pop("ROS_STATIC_PEERS", None)
    os.environ.setdefault("ROS_DOMAIN_ID", str(20 + (os.getpid() * 7) % 80))


def declared_parameters(spec: NodeSpec, tmp: Path) -> list[Declared]:
    """Build the node of ``spec`` and return what it declared, in order (rclpy's own parameters left out)."""
    import rclpy
    from rclpy.node import Node

    module = importlib.import_module(spec.module)
    noted: list[Declared] = []
    original = Node.declare_parameter

    def noting(node, name, value=None, descriptor=None, ignore_override=False):
        if name not in ROS_BUILTIN:
            low = high = None
            if descriptor is not None and descriptor.integer_range:
                low, high = descriptor.integer_range[0].from_value, descriptor.integer_range[0].to_value
            elif descriptor is not None and descriptor.floating_point_range:
                low, high = descriptor.floating_point_range[0].from_value, descriptor.floating_point_range[0].to_value
            noted.append(Declared(name, value, descriptor.description if descriptor is not None else "", low, high))
        return original(node, name, value, descriptor, ignore_override)

    args = ["--ros-args"]
    for key, value in spec.overrides.items():
        args += ["-p", f"{key}:={value.format(tmp=tmp)}"]
    rclpy.init(args=args)
    Node.declare_parameter = noting  # type: ignore[method-assign]
    node = None
    try:
        node = getattr(module, spec.cls)()
    finally:
        Node.declare_parameter = original  # type: ignore[method-assign]
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    undeclared = sorted(set(spec.overrides) - {d.name for d in noted})
    if undeclared:  # an override the node ignores leaves construction unsafe (a device opened) or untested
        raise SystemExit(f"{spec.executable}: overrides {undeclared} are not parameters the node declares: "
                         f"update NODES in {__name__}")
    return [Declared(_generic(d.name), d.default, d.description, d.low, d.high) for d in noted]


def _generic(name: str) -> str:
    for placeholder in PLACEHOLDERS:
        name = name.replace(f".{placeholder}.", ".<name>.")
    return name


# -- rendering -------------------------------------------------------------------------------------


TYPE_ONLY = {"STRING_ARRAY": "string[]", "DOUBLE_ARRAY": "double[]", "INTEGER_ARRAY": "int[]", "STRING": "string"}
"""Parameters declared by type alone (no default: the user must give them, e.g. a profile's list of fields)."""


def _type(value: Any) -> str:
    if type(value).__name__ == "Type":  # rclpy's Parameter.Type
        return TYPE_ONLY[value.name]
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)) and value:
        return _type(value[0]) + "[]"
    raise TypeError(f"no parameter type for {value!r}")


def _value(value: Any) -> str:
    if type(value).__name__ == "Type":
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return repr(value)


def _sentence(text: str) -> str:
    """One line of Markdown: reST literals as code spans, ending with a full stop."""
    text = re.sub(r"``([^`]+)``", r"`\1`", " ".join(text.split()))
    return text if not text or text[-1] in ".!?:" else text + "."


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def shipped_values(executable: str) -> tuple[str, dict[str, Any]]:
    """The parameter file the launch files and ``iil-robot sim`` give this node, flattened to dotted names."""
    import yaml

    path = ROOT / "iil_robot" / "config" / f"{executable}.yaml"
    if not path.is_file():
        return "", {}
    flat: dict[str, Any] = {}

    def walk(prefix: str, tree: Any) -> None:
        if isinstance(tree, dict):
            for key, value in tree.items():
                walk(f"{prefix}{key}.", value)
        else:
            flat[prefix[:-1]] = tree

    for node in (yaml.safe_load(path.read_text()) or {}).values():
        walk("", node.get("ros__parameters", {}))
    return path.name, flat


def parameter_line(d: Declared, computed: dict[str, str], shipped: tuple[str, dict[str, Any]] = ("", {})) -> str:
    """``- `name` (type, default: X, range: a–b) — description.`` (teleop_twist_joy's shape), with the value of the
    shipped parameter file where it differs from the default."""
    default = computed.get(d.name, _value(d.default))
    facts = [_type(d.default), f"default: {default}"]
    file, values = shipped
    if d.name in values and not _same(values[d.name], d.default):
        facts.append(f"{file}: {_value(values[d.name])}")
    if d.low is not None:
        facts.append(f"range: {_value(d.low)}–{_value(d.high)}")
    return f"- `{d.name}` ({', '.join(facts)}) — {_sentence(d.description)}"


def _table(prefix: str, declared: list[Declared]) -> list[str]:
    """``<prefix>.<name>.<field>`` parameters: one line per field, then a table of the names and defaults."""
    pattern = re.compile(rf"{re.escape(prefix)}\.([^.]+)\.([^.]+)$")
    names: dict[str, dict[str, Any]] = {}
    fields: dict[str, Declared] = {}
    for d in declared:
        match = pattern.match(d.name)
        names.setdefault(match.group(1), {})[match.group(2)] = d.default
        fields.setdefault(match.group(2), d)
    lines = [f"- `{prefix}.<name>.{f}` ({_type(d.default)}) — {_sentence(d.description)}" for f, d in fields.items()]
    lines += ["", "| `<name>` | " + " | ".join(f"`{f}`" for f in fields) + " |", "|---" * (len(fields) + 1) + "|"]
    lines += [f"| `{name}` | " + " | ".join(f"`{values[f]}`" for f in fields) + " |" for name, values in names.items()]
    return lines


def render(spec: NodeSpec, declared: list[Declared]) -> str:
    """The block of one node: a line per parameter, grouped under their prefix where there are many."""
    lines: list[str] = []
    shipped = shipped_values(spec.executable)
    tabled = [d for d in declared if d.name.split(".")[0] in spec.tables]
    plain = [d for d in declared if d not in tabled]
    many = len(plain) > 30
    group = None
    for d in plain:
        prefix = d.name.split(".")[0] if "." in d.name else ""
        if many and prefix != group:
            group = prefix
            lines += ([""] if lines else []) + [f"**`{prefix}.*`**" if prefix else "**Top level**", ""]
        lines.append(parameter_line(d, spec.computed, shipped))
    for prefix in spec.tables:
        lines += ([""] if lines else []) + _table(prefix, [d for d in tabled if d.name.startswith(prefix + ".")])
    return "\n".join(lines) if lines else "None."


def begin_marker(executable: str) -> str:
    return f"<!-- parameters: {executable} (generated by `{COMMAND}`; edit the node, not this list) -->"


def end_marker(executable: str) -> str:
    return f"<!-- end parameters: {executable} -->"


def generated_blocks() -> dict[str, str]:
    """Every node's block, built from the nodes themselves."""
    _stay_on_loopback()
    sys.path.insert(0, str(ROOT))  # this checkout's iil_robot, whatever is installed
    blocks = {}
    with tempfile.TemporaryDirectory(prefix="gen_node_docs_") as tmp:
        for spec in NODES:
            blocks[spec.executable] = render(spec, declared_parameters(spec, Path(tmp)))
    return blocks


def rewrite(page: str, blocks: dict[str, str]) -> str:
    """``page`` with each node's block replaced. Raises ValueError when a block's markers are missing."""
    for executable, block in blocks.items():
        begin, end = begin_marker(executable), end_marker(executable)
        pattern = re.compile(re.escape(begin) + r"\n(?:.*?\n)?" + re.escape(end), re.S)
        if not pattern.search(page):
            raise ValueError(f"{PAGE.relative_to(ROOT)} has no block for {executable}: add the two lines\n{begin}\n{end}")
        replacement = f"{begin}\n{block}\n{end}"
        page = pattern.sub(lambda _, text=replacement: text, page, count=1)
    return page


def stray_blocks(page: str) -> list[str]:
    """Blocks on the page for nodes the generator does not build."""
    return sorted(set(re.findall(r"<!-- parameters: (\S+) ", page)) - {spec.executable for spec in NODES})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when docs/nodes.md is out of date")
    args = parser.parse_args(argv)
    page = PAGE.read_text()
    if stray_blocks(page):
        print(f"{PAGE.relative_to(ROOT)} has blocks for nodes the generator does not build: {stray_blocks(page)}",
              file=sys.stderr)
        return 1
    try:
        new = rewrite(page, generated_blocks())
    except ValueError as err:
        print(err, file=sys.stderr)
        return 1
    if new == page:
        print(f"{PAGE.relative_to(ROOT)} is up to date")
        return 0
    if args.check:
        diff = difflib.unified_diff(page.splitlines(), new.splitlines(), "docs/nodes.md", "declared parameters", lineterm="")
        print("\n".join(diff) + f"\n\ndocs/nodes.md differs from the parameters the nodes declare: run `{COMMAND}`",
              file=sys.stderr)
        return 1
    PAGE.write_text(new)
    print(f"rewrote the parameter lists in {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
