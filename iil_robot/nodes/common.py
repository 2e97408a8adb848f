"""What every node shares: declared parameters with ranges, QoS profiles, and a fail-safe main()."""
from __future__ import annotations

import gc
import importlib
import math
import signal
import sys
import time
from typing import Any, Callable, Sequence

import rclpy
from geometry_msgs.msg import Twist, TwistStamped
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.exceptions import ParameterUninitializedException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSCompatibility,
    QoSProfile,
    ReliabilityPolicy,
    qos_check_compatible,
    qos_profile_sensor_data,
)
from rclpy.signals import SignalHandlerOptions
from rclpy.topic_endpoint_info import TopicEndpointInfo

# Commands: reliable with a small depth (what MoveIt Servo, twist_mux and ros2_controllers use);
# depth 1 so a lagging subscriber never works through a queue of old velocities.
COMMAND_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
# State that late joiners must see (engagement, gripper, intervention events).
LATCHED_QOS = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL,
    history=HistoryPolicy.KEEP_LAST,
)
EVENTS_QOS = QoSProfile(
    depth=50, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL,
    history=HistoryPolicy.KEEP_LAST,
)
# Records and proposals: reliable and deep enough that a busy subscriber never drops one.
RECORD_QOS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
SENSOR_QOS = qos_profile_sensor_data


class ParameterError(ValueError):
    """A node parameter is missing, of the wrong type or out of range."""


class RepeatThrottle:
    """Throttles repeated log lines without hiding new ones: a line unlike the last logged one goes out at once,
    the same line again at most once per ``period`` (s), carrying the count of repeats that were not logged."""

    def __init__(self, period: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.period, self.clock = period, clock
        self.last: str | None = None
        self.last_at = -math.inf
        self.skipped = 0

    def line(self, text: str) -> str | None:
        """The line to log for ``text`` now, or None (counted, said with the next line that goes out)."""
        now = self.clock()
        if text == self.last and now - self.last_at < self.period:
            self.skipped += 1
            return None
        skipped, self.skipped = self.skipped, 0
        self.last, self.last_at = text, now
        return text + (f" (+{skipped} repeats of the previous line, not logged)" if skipped else "")


Commit = Callable[[], None]
"""Applies a validated parameter change (swaps in the new configuration)."""
Prepare = Callable[[dict[str, Any]], Commit]
"""Validates the new values of a group of parameters (ParameterError/ValueError to refuse) and returns its commit."""


PEER_CHECK_PERIOD = 0.25  # s between looks at one of the node's topics in the ROS graph (one at a time: see check_next_topic)
UNKNOWN_NODE = "_NODE_NAME_UNKNOWN_"  # rmw's name for an endpoint whose node discovery has not named yet


class IilNode(Node):
    """The project's rclpy Node: its publishers and subscriptions carry no QoS event handlers; instead it looks at
    its topics in the ROS graph, one every ``PEER_CHECK_PERIOD``, for peers that no message can pass to or from.

    rclpy gives every publisher and subscription two event handlers (incompatible QoS, incompatible type) that only
    log a warning, and the executor rebuilds its wait set with all of them on every wake-up: a node with 14
    subscriptions receiving 250 messages a second used 29-33 % of a core with them and 19-20 % without. The graph
    check warns of the same two problems, once per peer, at a cost that does not grow with the message rate."""

    def __init__(self, node_name: str, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._warned_peers: set[tuple[str, bytes]] = set()
        self._unchecked_topics: list[str] = []
        self.create_timer(PEER_CHECK_PERIOD, self.check_next_topic)
        self.parameter_ranges: dict[str, tuple[Any, float | None, float | None]] = {}  # name -> (default, low, high)
        self._changeable: dict[str, tuple[tuple[str, ...], Prepare]] = {}
        self.add_pre_set_parameters_callback(self._floats_from_integers)
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def changeable(self, names: Sequence[str], prepare: Prepare) -> None:
        """Let ``names`` (declared) change at run time, as one group: a request with any of them calls ``prepare``
        with the whole group's values (current ones overlaid with the request's), after each value passed the
        checks of its declaration; every other parameter is read-only at run time."""
        for name in names:
            self._changeable[name] = (tuple(names), prepare)

    def _floats_from_integers(self, parameters: list[Parameter]) -> list[Parameter]:
        """``ros2 param set /mux limits.max_linear_speed 1`` sends an integer: a float parameter takes it as 1.0."""
        return [Parameter(p.name, Parameter.Type.DOUBLE, float(p.value))
                if p.type_ == Parameter.Type.INTEGER and isinstance(self.parameter_ranges.get(p.name, (None,))[0], float)
                else p for p in parameters]

    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        if not all(self.has_parameter(p.name) for p in parameters):
            return SetParametersResult(successful=True)  # declarations at start-up: checked by declare()
        try:
            commits = self._prepare_changes(parameters)
        except ValueError as err:
            self.get_logger().warn(f"refused parameter change: {err}")
            return SetParametersResult(successful=False, reason=str(err))
        for commit in commits:
            commit()
        self.get_logger().info("parameters changed: " + ", ".join(f"{p.name}={p.value!r}" for p in parameters))
        return SetParametersResult(successful=True)

    def _prepare_changes(self, parameters: list[Parameter]) -> list[Commit]:
        requested: dict[str, Any] = {}
        for p in parameters:
            if p.type_ == Parameter.Type.NOT_SET:
                raise ParameterError(f"parameter {p.name!r} cannot be unset or undeclared")
            if p.name not in self._changeable:
                raise ParameterError(f"parameter {p.name!r} is read-only at run time: set it in the parameter file "
                                     "or on the command line and restart the node")
            default, low, high = self.parameter_ranges[p.name]
            requested[p.name] = check_value(p.name, p.value, default, low, high)
        groups = {self._changeable[name] for name in requested}
        return [prepare({n: requested.get(n, self.get_parameter(n).value) for n in names}) for names, prepare in groups]

    def create_subscription(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("event_callbacks", SubscriptionEventCallbacks(use_default_callbacks=False))
        return super().create_subscription(*args, **kwargs)

    def create_publisher(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("event_callbacks", PublisherEventCallbacks(use_default_callbacks=False))
        return super().create_publisher(*args, **kwargs)

    def _topics(self) -> list[str]:
        return sorted({sub.topic_name for sub in self.subscriptions} | {pub.topic_name for pub in self.publishers})

    def check_next_topic(self) -> list[str]:
        """``check_peers`` of the next topic in a round over all of them (the timer's: checking every topic at once
        would hold a control node's executor for a good part of a control tick)."""
        if not self._unchecked_topics:
            self._unchecked_topics = self._topics()
        return self.check_peers(self._unchecked_topics.pop()) if self._unchecked_topics else []

    def check_peers(self, *topics: str) -> list[str]:
        """Warn of each new peer on ``topics`` (default: all of this node's) that cannot match one of this node's
        publishers or subscriptions; returns the warnings.

        Both sides' QoS come from the graph, as discovery reports them: a profile as created says "default" where
        discovery says what the default is, and the two do not compare."""
        problems = []
        for topic in topics or self._topics():
            publishers, subscriptions = self.get_publishers_info_by_topic(topic), self.get_subscriptions_info_by_topic(topic)
            for ours in filter(self._is_mine, subscriptions):
                problems += [self._peer_problem(topic, peer, ours, peer.qos_profile, ours.qos_profile)
                             for peer in publishers if not self._is_mine(peer)]
            for ours in filter(self._is_mine, publishers):
                problems += [self._peer_problem(topic, peer, ours, ours.qos_profile, peer.qos_profile)
                             for peer in subscriptions if not self._is_mine(peer)]
        problems = [p for p in problems if p]
        for problem in problems:
            self.get_logger().warn(problem)
        return problems

    def _is_mine(self, endpoint: TopicEndpointInfo) -> bool:
        return endpoint.node_name == self.get_name() and endpoint.node_namespace == self.get_namespace()

    def _peer_problem(self, topic: str, peer: TopicEndpointInfo, ours: TopicEndpointInfo, offered: QoSProfile,
                      requested: QoSProfile) -> str:
        key = (topic, bytes(peer.endpoint_gid))
        if key in self._warned_peers or peer.node_name == UNKNOWN_NODE:  # named by discovery a little later
            return ""
        who = f"{peer.endpoint_type.name.lower()} of {peer.node_namespace.rstrip('/')}/{peer.node_name} on {topic}"
        if peer.topic_type != ours.topic_type:
            problem = f"{who} has type {peer.topic_type}, this node's has {ours.topic_type}: no message passes between them"
        else:
            compatibility, reason = qos_check_compatible(offered, requested)
            if compatibility != QoSCompatibility.ERROR:
                return ""
            problem = f"{who} has incompatible QoS, no message passes between them: {reason.removeprefix('ERROR: ').rstrip('; ')}"
        self._warned_peers.add(key)
        return problem


def interface_class(name: str, fix: str = "") -> Any:
    """``pkg/msg/Name`` (or ``pkg/action/Name``, ``pkg/srv/Name``) -> its rclpy class.

    Raises:
        ParameterError: the name is malformed or its package is not importable; the message names the package to
            install and ``fix``, what else the user can do.
    """
    parts = name.split("/")
    if len(parts) != 3 or not all(parts) or parts[1] not in ("msg", "srv", "action"):
        raise ParameterError(f"interface type {name!r} must be pkg/msg/Name, pkg/srv/Name or pkg/action/Name")
    package, kind, cls = parts
    try:
        return getattr(importlib.import_module(f"{package}.{kind}"), cls)
    except (ImportError, AttributeError) as err:
        raise ParameterError(f"{name} cannot be imported ({err}): install {package} (e.g. ros-<distro>-"
                             f"{package.replace('_', '-')}) and source it" + (f", or {fix}" if fix else "")) from err


def declare(
    node: Node,
    name: str,
    default: Any,
    description: str,
    low: float | None = None,
    high: float | None = None,
) -> Any:
    """Declare a parameter with a description and, for numbers, a range; return its value."""
    descriptor = ParameterDescriptor(description=description)
    if isinstance(node, IilNode):
        node.parameter_ranges[name] = (default, low, high)
    if low is not None and high is not None:
        if isinstance(default, bool):
            raise TypeError(f"{name}: a boolean parameter has no range")
        if isinstance(default, int):
            descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
        else:
            descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)]
    if isinstance(default, float):
        # Accept an integer in YAML (``timeout: 1``) for a float parameter.
        descriptor.dynamic_typing = True
    try:
        value = node.declare_parameter(name, default, descriptor).value
    except Exception as err:  # rclpy raises several exception types here; all mean a bad override
        raise ParameterError(f"parameter {name!r}: {err}") from err
    if isinstance(default, float):
        value = _number(name, value, low, high)
    return value


def declare_unset_list(node: Node, name: str, kind: str, description: str) -> list:
    """Declare a list parameter without a default (a robot profile gives it): ``kind`` ``strings`` or ``floats``.
    Returns [] when it is not given."""
    types = {"strings": Parameter.Type.STRING_ARRAY, "floats": Parameter.Type.DOUBLE_ARRAY}
    node.declare_parameter(name, types[kind], ParameterDescriptor(description=description))
    try:
        values = list(node.get_parameter(name).value)
    except ParameterUninitializedException:
        return []
    return [float(v) for v in values] if kind == "floats" else values


def declare_floats(node: Node, name: str, default: Sequence[float], description: str) -> tuple[float, ...]:
    """Declare a list-of-numbers parameter; integers in YAML are accepted."""
    descriptor = ParameterDescriptor(description=description, dynamic_typing=True)
    try:
        value = node.declare_parameter(name, list(default), descriptor).value
    except Exception as err:
        raise ParameterError(f"parameter {name!r}: {err}") from err
    if not isinstance(value, (list, tuple)) or isinstance(value, str):
        raise ParameterError(f"parameter {name!r} must be a list of numbers, got {value!r}")
    return tuple(_number(name, v, None, None) for v in value)


def check_value(name: str, value: Any, default: Any, low: float | None, high: float | None) -> Any:
    """``value`` as a parameter declared with ``default`` (its type) and range takes it, or ParameterError."""
    if isinstance(default, float):
        return _number(name, value, low, high)
    kind = list if isinstance(default, (list, tuple)) else type(default)
    if type(value) is not kind and not (kind is list and isinstance(value, (list, tuple))):
        raise ParameterError(f"parameter {name!r} must be {kind.__name__}, got {type(value).__name__} {value!r}")
    if kind is int and low is not None and high is not None and not low <= value <= high:
        raise ParameterError(f"parameter {name!r}={value} is out of range [{low}, {high}]")
    return value


def _number(name: str, value: Any, low: float | None, high: float | None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f"parameter {name!r} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ParameterError(f"parameter {name!r} must be finite, got {value}")
    if low is not None and high is not None and not low <= value <= high:
        raise ParameterError(f"parameter {name!r}={value} is out of range [{low}, {high}]")
    return value


def override_names(node: Node, prefix: str) -> list[str]:
    """Names ``<name>`` for which parameters ``<prefix>.<name>.*`` were given (YAML or command line).

    twist_mux-style configuration names its sources in the keys themselves, so the names are
    read from the node's parameter overrides before anything is declared.
    """
    overrides = getattr(node, "_parameter_overrides", {})  # rclpy keeps launch/YAML overrides here
    names: list[str] = []
    for key in overrides:
        parts = key.split(".")
        if len(parts) >= 3 and parts[0] == prefix and parts[1] not in names:
            names.append(parts[1])
    return names


def run(make_node: Callable[[], Node], on_exit: Callable[[Node], None] | None = None, args: list[str] | None = None) -> int:
    """Init rclpy, spin ``make_node()`` on a SingleThreadedExecutor, and exit safely.

    SIGINT and SIGTERM both end the spin through KeyboardInterrupt while the context is still
    valid, so ``on_exit`` can publish a final zero command before shutdown.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    node: Node | None = None
    code = 0
    try:
        node = make_node()
        # Everything built so far (torch, rclpy, the node) lives as long as the process: keep it out of the
        # cyclic GC, whose full collections over so many objects would stall a control tick.
        gc.freeze()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ValueError as err:  # configuration errors: say what to fix and stop
        print(f"[FATAL] {err}", file=sys.stderr, flush=True)
        code = 2
    finally:
        if node is not None:
            if on_exit is not None:
                try:
                    on_exit(node)
                finally:
                    node.destroy_node()
            else:
                node.destroy_node()
        rclpy.try_shutdown()
    return code


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def twist_stamped(twist: Sequence[float], frame_id: str, stamp) -> TwistStamped:
    """(vx, vy, vz, wx, wy, wz) -> TwistStamped with the given header."""
    msg = TwistStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    t = msg.twist
    t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z = (float(v) for v in twist)
    return msg


def twist_values(twist: Twist) -> tuple[float, ...]:
    """geometry_msgs/Twist -> (vx, vy, vz, wx, wy, wz)."""
    return (twist.linear.x, twist.linear.y, twist.linear.z, twist.angular.x, twist.angular.y, twist.angular.z)


def seconds(stamp_msg) -> float:
    """builtin_interfaces/Time -> float seconds."""
    return stamp_msg.sec + stamp_msg.nanosec * 1e-9


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass (its one-line documentation)."""
    import ast
    import inspect
    import textwrap

    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for field, doc in zip(body, body[1:]):
        if isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name) and isinstance(doc, ast.Expr) \
                and isinstance(doc.value, ast.Constant) and isinstance(doc.value.value, str):
            docs[field.target.id] = " ".join(doc.value.value.split())
    return docs


def declare_config(node: Node, config_cls: type, prefix: str = "",
                   ranges: dict[str, tuple[float, float]] | None = None, given: dict[str, Any] | None = None) -> Any:
    """Declare one parameter per field of ``config_cls`` (a dataclass), named ``prefix + field``, with
    the field's default, docstring and range; return the config built from the values.

    Fields whose default is None have no ROS parameter type and keep their default. ``ranges`` defaults to the
    config class's ``RANGES``, where it has one. ``given``: fields the node sets from another of its parameters
    (no parameter of their own: one parameter per concept).
    """
    import dataclasses

    defaults, docs = config_cls(), field_docs(config_cls)
    ranges = ranges if ranges is not None else getattr(config_cls, "RANGES", {})
    values: dict[str, Any] = dict(given or {})
    for f in dataclasses.fields(config_cls):
        default = getattr(defaults, f.name)
        if default is None or f.name in values:
            continue
        low, high = ranges.get(f.name, (None, None))
        name, doc = prefix + f.name, docs.get(f.name, f.name)
        if isinstance(default, tuple):
            kind = str if default and isinstance(default[0], str) else int
            value = declare(node, name, list(default), doc)
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, kind) for v in value):
                raise ParameterError(f"parameter {name!r} must be a list of {'strings' if kind is str else 'integers'}, "
                                     f"got {value!r}")
            if low is not None and kind is int and not all(low <= v <= high for v in value):
                raise ParameterError(f"parameter {name!r}={list(value)} has values out of range [{low}, {high}]")
            values[f.name] = tuple(value)
        else:
            values[f.name] = declare(node, name, default, doc, low, high)
    try:
        return config_cls(**values)
    except ValueError as err:
        raise ParameterError(f"parameters {prefix or config_cls.__name__}: {err}") from err
