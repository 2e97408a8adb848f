"""Arbitration between the policy and the operator, and the safety rules of the arm command.

Configured like ``twist_mux``: each source has a topic, a timeout and a priority; each lock
has a topic, a timeout and a priority. Unlike ``twist_mux``:

- there are two kinds of source: ``human`` (a twist, an engagement flag and a gripper
  command from a gate) and ``policy`` (proposals carrying the action *and* the observation
  it came from, so that every step record holds what the learner needs);
- an engaged human claims control until the gate releases it; if their input goes stale or
  invalid meanwhile the arm is held (explicit zero), never handed to a lower source;
- a stale, dead or invalid source gives an explicit zero command, not silence;
- a lock with a heartbeat timeout is locked until its first message and whenever its
  publisher stops (fail safe). A locked lock blocks every source of lower priority.

Ticks: the policy owns the control tick. Each proposal is one tick: one arm command and one
step record. When the policy is not fresh, the mux ticks by itself at ``rate``. Between ticks,
new input from an engaged operator goes to the arm at once (low latency, no step record), and
any change of who is in control produces a command at once. Whatever happens, the arm gets a
command at least every ``1/rate`` s (a refresh of the current one, limits applied again, no step
record): a policy that proposes more slowly than the control rate never lets MoveIt Servo's
``incoming_command_timeout`` (0.1 s) halt the arm mid-episode, and a held arm gets explicit zeros.

Pure logic: the caller passes a monotonic ``now`` (for timeouts) and a ``stamp`` (node clock,
for records).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Sequence

from iil_robot.command.in_flight import SentCommands
from iil_robot.command.safety import ZERO, Limits, Twist, limit_acceleration, limit_velocity, limit_workspace
from iil_robot.data.records import InterventionEvent, Proposal, RecordError, StepRecord
from iil_robot.data.rotation import IDENTITY, matrix_from_quaternion

SOURCE_TYPES: tuple[str, ...] = ("human", "policy")


class MuxConfigError(ValueError):
    """The mux configuration is invalid; the message names the parameter."""


@dataclass(frozen=True)
class SourceConfig:
    """One command source, ``topics.<name>.*`` in the node parameters."""

    name: str
    """Name used in diagnostics, logs and step records."""
    type: str
    """``human`` (gate output) or ``policy`` (proposals)."""
    topic: str
    """Human: the TwistStamped command topic. Policy: the proposal topic."""
    timeout: float
    """Input older than this (s) is stale."""
    priority: int
    """Higher wins; locks block sources of lower priority."""
    engaged_topic: str = ""
    """Human only: std_msgs/Bool engagement topic."""
    gripper_topic: str = ""
    """Human only: std_msgs/Float64 gripper closure topic."""


LOCK_TYPES: tuple[str, ...] = ("bool", "diagnostics")


@dataclass(frozen=True)
class LockConfig:
    """One lock (e.g. an e-stop, an arm fault), ``locks.<name>.*`` in the node parameters."""

    name: str
    """Name used in diagnostics and hold reasons (``locked:<name>``)."""
    topic: str
    """Where the lock's state comes from (a std_msgs/Bool topic, or a diagnostic_msgs/DiagnosticArray one)."""
    timeout: float
    """Heartbeat timeout (s): >0 means locked until the first message and when messages stop; 0 = no heartbeat."""
    priority: int
    """Blocks every source with a lower priority while locked."""
    type: str = "bool"
    """``bool`` (std_msgs/Bool) or ``diagnostics`` (the DiagnosticStatus named ``status`` in a DiagnosticArray:
    ERROR or STALE locks)."""
    status: str = ""
    """Diagnostics only: the name of the DiagnosticStatus to watch (others in the array are ignored)."""
    locked_when: bool = True
    """Bool only: the value that locks (False for a "ready" or "program running" flag)."""
    latching: bool = False
    """A fault keeps the arm held after it clears, until an operator recovers it (``Mux.recover``): an arm fault
    (a Franka reflex, a UR protective stop) must be looked at by a person before anything drives again. Only a
    fault after the lock was once free latches (an arm that is not ready yet at start-up simply holds)."""


@dataclass(frozen=True)
class MuxConfig:
    """Everything the mux needs; the ``mux`` node maps its parameters one-to-one onto this."""

    sources: tuple[SourceConfig, ...]
    """Command sources: any number of ``human`` ones and at most one ``policy``."""
    locks: tuple[LockConfig, ...] = ()
    """Locks such as an e-stop."""
    limits: Limits = field(default_factory=Limits)
    """Velocity, acceleration and workspace limits."""
    rate: float = 20.0
    """Control rate (Hz): the mux ticks by itself at this rate while the policy is not fresh."""
    frame_id: str = "base_link"
    """Frame of the arm command; the end-effector pose for the workspace must be in it."""
    pause_on_help_request: bool = False
    """While the policy requests help (``help/request``) and no operator is engaged, hold the arm (explicit
    zero) instead of forwarding the policy: it waits for the operator rather than acting where it is unsure."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise MuxConfigError naming the first bad parameter."""
        if not (math.isfinite(self.rate) and 0.5 <= self.rate <= 1000.0):
            raise MuxConfigError(f"rate={self.rate} Hz must be in [0.5, 1000]")
        if not self.frame_id:
            raise MuxConfigError("frame_id is empty: name the frame of the arm command (e.g. base_link)")
        if not self.sources:
            raise MuxConfigError("no sources configured: set topics.<name>.{type,topic,timeout,priority}")
        names = [s.name for s in self.sources] + [lock.name for lock in self.locks]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise MuxConfigError(f"source and lock names must be unique, repeated: {duplicates}")
        for s in self.sources:
            where = f"topics.{s.name}"
            if s.type not in SOURCE_TYPES:
                raise MuxConfigError(f"{where}.type={s.type!r} must be one of {SOURCE_TYPES}")
            if not s.topic:
                raise MuxConfigError(f"{where}.topic is empty")
            if not (math.isfinite(s.timeout) and 0.0 < s.timeout <= 10.0):
                raise MuxConfigError(f"{where}.timeout={s.timeout} s must be in (0, 10]")
            if not 0 <= s.priority <= 255:
                raise MuxConfigError(f"{where}.priority={s.priority} must be in [0, 255]")
            if s.type == "human" and not (s.engaged_topic and s.gripper_topic):
                raise MuxConfigError(f"{where}: a human source needs engaged_topic and gripper_topic")
        if sum(s.type == "policy" for s in self.sources) > 1:
            raise MuxConfigError("at most one policy source: the policy owns the control tick")
        for lock in self.locks:
            where = f"locks.{lock.name}"
            if not lock.topic:
                raise MuxConfigError(f"{where}.topic is empty")
            if lock.type not in LOCK_TYPES:
                raise MuxConfigError(f"{where}.type={lock.type!r} must be one of {LOCK_TYPES}")
            if lock.type == "diagnostics" and not lock.status:
                raise MuxConfigError(f"{where}.status is empty: name the DiagnosticStatus whose ERROR or STALE locks")
            if not (math.isfinite(lock.timeout) and 0.0 <= lock.timeout <= 10.0):
                raise MuxConfigError(f"{where}.timeout={lock.timeout} s must be in [0, 10] (0 = no heartbeat)")
            if not 0 <= lock.priority <= 255:
                raise MuxConfigError(f"{where}.priority={lock.priority} must be in [0, 255]")
        try:
            self.limits.validate()
        except ValueError as err:
            raise MuxConfigError(f"limits: {err}") from err


@dataclass(frozen=True)
class Command:
    """What goes to the arm."""

    twist: Twist
    """(vx, vy, vz, wx, wy, wz) after limits."""
    gripper: float
    """Gripper closure in [0, 1]."""
    source: str
    """``policy``, ``human`` or ``hold``."""
    source_name: str
    """Name of the source in control (or of the one held for)."""
    hold_reason: str
    """Why the arm is held; empty when a source drives it."""
    limited: bool
    """A safety limit changed the requested command."""


@dataclass(frozen=True)
class Output:
    """What the node publishes after one ``Mux.update``."""

    command: Command | None = None
    """Arm command to publish now, if any."""
    step: StepRecord | None = None
    """The step record, on a tick."""
    intervention: InterventionEvent | None = None
    """Onset or offset of an intervention, when one happened."""


@dataclass(frozen=True)
class Selection:
    kind: str
    name: str
    hold_reason: str
    human_claim: str  # the human source holding control ('' if none): an intervention


@dataclass(frozen=True)
class SourceStatus:
    name: str
    type: str
    fresh: bool
    engaged: bool
    selected: bool
    masked: bool
    age: float
    error: str


@dataclass(frozen=True)
class LockStatus:
    name: str
    locked: bool
    why: str
    age: float
    """Seconds since the lock's last message (inf before the first)."""


@dataclass(frozen=True)
class MuxStatus:
    selection: Selection
    paused: bool
    sources: tuple[SourceStatus, ...]
    locks: tuple[LockStatus, ...]
    ticks: int
    interventions: int


STALE_AFTER = 1e-3
"""How long after its timeout ``next_deadline`` looks at a source or lock (s): they are stale only strictly after it."""


class _Source:
    """Latest input of one source."""

    def __init__(self, config: SourceConfig) -> None:
        self.config = config
        self.time = -math.inf  # monotonic time of the last valid command
        self.twist: Twist = ZERO
        self.gripper: float | None = None
        self.proposal: Proposal | None = None
        self.engaged = False
        self.engaged_reason = ""
        self.error = ""  # set while the latest input was invalid
        self.fresh_data = False  # new command since the last published output

    def fresh(self, now: float) -> bool:
        return not self.error and now - self.time <= self.config.timeout


class _Lock:
    def __init__(self, config: LockConfig) -> None:
        self.config = config
        self.time = -math.inf
        self.value = False
        self.latched = False  # a latching lock's fault happened and nobody recovered it yet
        self.seen_free = False

    def state(self, now: float) -> tuple[bool, str]:
        if self.config.timeout > 0.0:
            if self.time == -math.inf:
                return True, "no heartbeat yet"
            if now - self.time > self.config.timeout:
                # no age in the reason: it is part of the selection, and a reason that changed with every call
                # would make each watchdog call publish a fresh zero (the age is in ``status``)
                return True, "heartbeat lost"
        if self.value:
            return True, "engaged"
        return (True, "fault cleared, waiting for recovery") if self.latched else (False, "")


FAULT_LEVELS = (2, 3)
"""diagnostic_msgs/DiagnosticStatus levels that lock a ``diagnostics`` lock: ERROR and STALE."""


def diagnostic_fault(statuses: Sequence[tuple[str, int]], name: str) -> bool | None:
    """Whether the (name, level) statuses of one DiagnosticArray report a fault for ``name``; None when the array
    does not mention it (``/diagnostics`` carries every node's statuses, most of them about something else)."""
    levels = [level for status, level in statuses if status == name]
    return any(level in FAULT_LEVELS for level in levels) if levels else None


def step_records_reach(diagnostics: dict[str, str], nodes: set[str]) -> bool:
    """Whether the mux's diagnostics values (its ``mux: arbitration`` status) say its step records reach every node
    in ``nodes``: each is listed in ``step_subscriber_nodes``, and ``step_subscribers``, the publisher's own matches,
    covers every listed one (the names come from ROS graph discovery and can run ahead of the match)."""
    listed = {name for name in diagnostics.get("step_subscriber_nodes", "").split(",") if name}
    return nodes <= listed and int(diagnostics.get("step_subscribers", 0)) >= len(listed)


class Mux:
    """Arbitration and safety for one arm."""

    def __init__(self, config: MuxConfig) -> None:
        self.config = config
        ordered = sorted(config.sources, key=lambda s: -s.priority)
        self._sources = {s.name: _Source(s) for s in ordered}
        self._locks = {lock.name: _Lock(lock) for lock in sorted(config.locks, key=lambda c: -c.priority)}
        self._policy = next((s for s in self._sources.values() if s.config.type == "policy"), None)
        self._paused = False
        self._output_fault = ""
        self._help_requested = False
        self._ee_position: tuple[float, float, float] | None = None
        self._ee_rotation = IDENTITY
        self._ee_time = -math.inf
        self._ee_error = ""  # why the latest pose was refused (the arm is held while the box is on)
        self._last_selection: Selection | None = None
        self._last_twist: Twist = ZERO
        self._last_gripper = 0.0
        self._last_output_time = -math.inf  # of the last command decided (the acceleration limit's time step)
        self._last_command: Command | None = None
        self._last_sent = -math.inf  # of the last command decided or refreshed
        self._sent = SentCommands()  # what went to the arm lately: the workspace brakes for what is still in flight
        self._next_tick = -math.inf  # when the mux ticks by itself next (grid of 1/rate)
        self._ticks = 0
        self._tick_intervention = False
        self._interventions = 0
        self._intervention_start = 0.0
        self._claimant = ""  # human source holding control, "" when none

    # -- inputs: each stores the latest value; an invalid one returns an error message --------

    def human_command(self, name: str, twist: Sequence[float], now: float) -> str | None:
        source = self._source(name, "human")
        values = tuple(float(v) for v in twist)
        if len(values) != 6 or not all(math.isfinite(v) for v in values):
            return self._reject(source, f"twist must be 6 finite values, got {list(values)}")
        source.twist, source.time, source.error, source.fresh_data = values, now, "", True  # type: ignore[assignment]
        return None

    def human_engaged(self, name: str, engaged: bool, now: float, reason: str = "") -> None:
        source = self._source(name, "human")
        source.engaged = bool(engaged)
        source.engaged_reason = reason

    def human_gripper(self, name: str, closure: float, now: float) -> str | None:
        source = self._source(name, "human")
        if not (math.isfinite(closure) and 0.0 <= closure <= 1.0):
            return f"{name}: gripper closure {closure} must be in [0, 1]; keeping {source.gripper}"
        source.gripper = float(closure)
        return None

    def proposal(self, name: str, proposal: Proposal, now: float) -> str | None:
        source = self._source(name, "policy")
        try:
            proposal.check()
        except RecordError as err:
            return self._reject(source, str(err))
        source.proposal, source.time, source.error, source.fresh_data = proposal, now, "", True
        return None

    def reject(self, name: str, message: str) -> str:
        """Mark a source's latest input invalid (e.g. an undecodable proposal); it cannot drive the arm."""
        return self._reject(self._sources[name], message)

    def lock(self, name: str, locked: bool, now: float) -> None:
        state = self._locks[name]
        state.value, state.time = bool(locked), now
        # a fault latches once the lock has been seen free: an arm not yet ready at start-up is no fault to recover
        state.latched = state.latched or (state.value and state.config.latching and state.seen_free)
        state.seen_free = state.seen_free or not state.value

    def latched(self, name: str) -> bool:
        """Whether the lock ``name`` holds a fault that waits for an operator's recovery."""
        return self._locks[name].latched

    def recover(self, now: float) -> tuple[bool, str]:
        """An operator's explicit recovery: release every latched lock whose fault has cleared. Returns whether no
        lock stays latched, and what happened (naming each lock still faulted)."""
        latched = [lock for lock in self._locks.values() if lock.latched]
        if not latched:
            return True, "no latched fault"
        still = [lock.config.name for lock in latched if lock.value]
        for lock in latched:
            lock.latched = lock.value
        cleared = [lock.config.name for lock in latched if not lock.latched]
        text = f"recovered {', '.join(cleared)}" if cleared else "nothing recovered"
        if still:
            text += f"; still faulted: {', '.join(still)} (clear the fault on the arm first)"
        return not still, text

    def ee_pose(self, xyz: Sequence[float], xyzw: Sequence[float], frame_id: str, now: float) -> str | None:
        """The end effector's position and orientation (quaternion x, y, z, w) in ``frame_id`` for the workspace.
        A pose in another frame than the command's, or a malformed one, is refused: the arm holds until a good one."""
        values = tuple(float(v) for v in xyz)
        if frame_id != self.config.frame_id:
            error = (f"end-effector pose in frame {frame_id!r}, not the command frame {self.config.frame_id!r}: "
                     "remap ee_pose to a pose in the command frame or set frame_id")
        elif len(values) != 3 or not all(math.isfinite(v) for v in values):
            error = f"end-effector position must be 3 finite values, got {list(values)}"
        else:
            try:
                rotation = matrix_from_quaternion(xyzw)
            except ValueError as err:
                error = f"end-effector orientation: {err}"
            else:
                self._ee_position, self._ee_rotation, self._ee_time, self._ee_error = values, rotation, now, ""  # type: ignore[assignment]
                return None
        self._ee_position, self._ee_time, self._ee_error = None, -math.inf, error
        return error

    def set_limits(self, limits: Limits) -> None:
        """Apply new safety limits from the next command on (MuxConfigError, and nothing changes, if invalid)."""
        self.config = replace(self.config, limits=limits)  # validated by MuxConfig; one assignment: atomic

    def set_paused(self, paused: bool) -> None:
        self._paused = bool(paused)

    def set_output_fault(self, reason: str) -> None:
        """Hold the arm for good (``reason``, e.g. a gripper driver that cannot be reached): no pause or recovery
        lifts it; restart with a working configuration."""
        self._output_fault = reason

    def help_request(self, requested: bool) -> None:
        """The policy asks for (True) or no longer needs (False) the operator."""
        self._help_requested = bool(requested)

    # -- decisions -------------------------------------------------------------------------

    def update(self, now: float, stamp: float, proposal_arrived: bool = False) -> Output:
        """Decide what to publish now. Call after every input and at ``next_deadline``.

        Ticks on a new proposal, or by itself at ``rate`` while the policy is not fresh.
        Between ticks, publishes when control changes hands (e.g. to an explicit zero when a
        source dies), forwards new input from an engaged operator at once, and refreshes the
        command once ``1/rate`` s passed without one.
        """
        selection = self._select(now)
        intervention = self._track_intervention(selection, stamp)
        policy_fresh = self._policy is not None and self._policy.fresh(now)
        tick = (proposal_arrived and policy_fresh) or (not policy_fresh and now >= self._next_tick - 1e-6)
        changed = selection != self._last_selection
        human_news = selection.kind == "human" and self._sources[selection.name].fresh_data
        if not (tick or changed or human_news):
            if self._last_command is not None and now >= self._last_sent + 1.0 / self.config.rate - 1e-6:
                return Output(command=self._refresh(now), intervention=intervention)
            return Output(intervention=intervention)

        command = self._command(selection, now)
        self._last_selection = selection
        step = self._step(command, now, stamp) if tick else None
        return Output(command=command, step=step, intervention=intervention)

    def next_deadline(self, now: float) -> float:
        """The monotonic time at which ``update`` may next decide something without new input: the first moment a
        fresh source or lock heartbeat is past its timeout, the next self-tick while the policy is not fresh, or the
        next refresh of the arm command. A watchdog that calls ``update`` then (and after every input) needs no fixed
        rate."""
        deadlines = [s.time + s.config.timeout + STALE_AFTER for s in self._sources.values() if s.fresh(now)]
        deadlines.append(self._last_sent + 1.0 / self.config.rate)
        deadlines += [lock.time + lock.config.timeout + STALE_AFTER for lock in self._locks.values()
                      if lock.config.timeout > 0.0 and now - lock.time <= lock.config.timeout]
        if self._policy is None or not self._policy.fresh(now):
            deadlines.append(self._next_tick)
        return min(deadlines, default=math.inf)

    def stop_command(self, reason: str) -> Command:
        """An explicit zero that keeps the gripper as it was (for exit and errors)."""
        self._last_twist = ZERO
        return Command(ZERO, self._last_gripper, "hold", "", reason, False)

    def status(self, now: float) -> MuxStatus:
        """Snapshot for diagnostics."""
        selection = self._select(now)
        top_lock = self._top_lock(now)
        sources = tuple(
            SourceStatus(
                name=s.config.name,
                type=s.config.type,
                fresh=s.fresh(now),
                engaged=s.engaged,
                selected=selection.name == s.config.name and selection.kind != "hold",
                masked=top_lock is not None and s.config.priority < top_lock[0].priority,
                age=now - s.time,
                error=s.error,
            )
            for s in self._sources.values()
        )
        locks = tuple(LockStatus(name, *lock.state(now), now - lock.time) for name, lock in self._locks.items())
        return MuxStatus(selection, self._paused, sources, locks, self._ticks, self._interventions)

    # -- internals -------------------------------------------------------------------------

    def _source(self, name: str, kind: str) -> _Source:
        source = self._sources[name]
        if source.config.type != kind:
            raise KeyError(f"source {name!r} is a {source.config.type} source, not {kind}")
        return source

    @staticmethod
    def _reject(source: _Source, message: str) -> str:
        source.error = message
        return f"{source.config.name}: rejected input: {message}"

    def _top_lock(self, now: float) -> tuple[LockConfig, str] | None:
        for lock in self._locks.values():
            locked, why = lock.state(now)
            if locked:
                return lock.config, why
        return None

    def _select(self, now: float) -> Selection:
        if self._output_fault:
            return Selection("hold", "", self._output_fault, "")
        if self._paused:
            return Selection("hold", "", "paused", "")
        top_lock = self._top_lock(now)
        idle_reason = "no source"
        for source in self._sources.values():
            cfg = source.config
            if top_lock is not None and cfg.priority < top_lock[0].priority:
                return Selection("hold", top_lock[0].name, f"locked:{top_lock[0].name} ({top_lock[1]})", "")
            if cfg.type == "human":
                if not source.engaged:
                    continue
                if source.fresh(now):
                    return Selection("human", cfg.name, "", cfg.name)
                state = "invalid" if source.error else "stale"
                return Selection("hold", cfg.name, f"{state}:{cfg.name}", cfg.name)
            if self._help_requested and self.config.pause_on_help_request:
                return Selection("hold", cfg.name, "help requested", "")
            if source.fresh(now):
                return Selection("policy", cfg.name, "", "")
            state = "invalid" if source.error else ("stale" if source.time > -math.inf else "waiting")
            idle_reason = f"{state}:{cfg.name}"
        if top_lock is not None:
            return Selection("hold", top_lock[0].name, f"locked:{top_lock[0].name} ({top_lock[1]})", "")
        return Selection("hold", "", idle_reason, "")

    def _command(self, selection: Selection, now: float) -> Command:
        gripper = self._last_gripper
        if selection.kind == "human":
            source = self._sources[selection.name]
            requested, gripper = source.twist, source.gripper if source.gripper is not None else gripper
        elif selection.kind == "policy":
            action = self._sources[selection.name].proposal.action  # type: ignore[union-attr]
            requested, gripper = action[:6], action[6]
        else:
            requested = ZERO
        for source in self._sources.values():
            source.fresh_data = False

        twist, hold_reason = self._apply_limits(requested, now)  # type: ignore[arg-type]
        if selection.kind == "hold":
            hold_reason = selection.hold_reason
        source_kind = "hold" if hold_reason else selection.kind
        self._last_twist, self._last_gripper, self._last_output_time = twist, gripper, now
        command = Command(twist, gripper, source_kind, selection.name, hold_reason, tuple(requested) != twist)
        self._last_command = command
        self._sent_at(now, twist)
        return command

    def _refresh(self, now: float) -> Command:
        """The last command again, for an arm driver that halts without one (MoveIt Servo). The workspace box is
        checked again with the newest pose; the acceleration limit is not: its time step stays that of the last
        decided command, or a proposal arriving just after a refresh would be ramped as if it came at once."""
        last = self._last_command
        assert last is not None
        twist, hold_reason = self._limit_workspace(last.twist, now)
        self._sent_at(now, twist)
        if twist == last.twist:
            return last
        self._last_twist = twist
        return replace(last, twist=twist, source="hold" if hold_reason else last.source,
                       hold_reason=hold_reason or last.hold_reason, limited=True)

    def _apply_limits(self, requested: Twist, now: float) -> tuple[Twist, str]:
        limits = self.config.limits
        twist = limit_velocity(requested, limits)
        dt = min(now - self._last_output_time, 1.0 / self.config.rate)
        twist = limit_acceleration(twist, self._last_twist, dt, limits)
        # after the acceleration limit, so braking for a wall is never held back by it
        return self._limit_workspace(twist, now)

    def _limit_workspace(self, twist: Twist, now: float) -> tuple[Twist, str]:
        box = self.config.limits.workspace
        if not box.enabled or twist == ZERO:
            return twist, ""
        if self._ee_position is None or now - self._ee_time > box.pose_timeout:
            return ZERO, f"workspace: {self._ee_error or 'no fresh end-effector pose'}"
        # the arm keeps going for a control period, the pose's age and the configured latency before it reacts, and
        # whatever was sent over that time may not be in the pose yet: it still moves the arm on
        latency = 1.0 / self.config.rate + (now - self._ee_time) + box.latency
        in_flight = self._sent.in_flight(now, latency)
        return limit_workspace(twist, self._ee_position, self._ee_rotation, box, latency, in_flight), ""

    def _sent_at(self, now: float, twist: Twist) -> None:
        self._last_sent = now
        box = self.config.limits.workspace
        self._sent.add(now, twist, keep=1.0 / self.config.rate + box.pose_timeout + box.latency)

    def _track_intervention(self, selection: Selection, stamp: float) -> InterventionEvent | None:
        previous, current = self._claimant, selection.human_claim
        if bool(previous) == bool(current):
            return None
        self._claimant = current
        if current:
            self._interventions += 1
            self._intervention_start = stamp
            reason = self._sources[current].engaged_reason or "engaged"
            return InterventionEvent(True, current, stamp, reason, self._interventions, 0.0)
        source = self._sources[previous]
        if selection.hold_reason:
            reason = selection.hold_reason
        elif not source.engaged:
            reason = source.engaged_reason or "released"
        else:
            reason = "handed back"
        duration = max(0.0, stamp - self._intervention_start)
        return InterventionEvent(False, previous, stamp, reason, self._interventions, duration)

    def _step(self, command: Command, now: float, stamp: float) -> StepRecord:
        policy = self._policy
        proposal = policy.proposal if policy is not None and policy.fresh(now) else None
        human = self._human_for_record(now)
        intervention = bool(self._claimant)
        onset = intervention and not self._tick_intervention
        offset = self._tick_intervention and not intervention
        self._tick_intervention = intervention
        period = 1.0 / self.config.rate
        # Self-ticks stay on a grid of 1/rate (no drift); a late or first one restarts the grid.
        self._next_tick = self._next_tick + period if now - self._next_tick < period else now + period
        step = StepRecord(
            tick=self._ticks,
            stamp=stamp,
            source=command.source,
            source_name=command.source_name,
            executed_action=command.twist + (command.gripper,),
            policy_action=proposal.action if proposal else None,
            human_action=human,
            human_engaged=any(s.engaged for s in self._sources.values() if s.config.type == "human"),
            intervention=intervention,
            onset=onset,
            offset=offset,
            observation=proposal.observation if proposal else None,
            obs_stamp=proposal.obs_stamp if proposal else None,
            policy_version=proposal.policy_version if proposal else None,
            hold_reason=command.hold_reason,
            limited=command.limited,
            image_stamps=proposal.image_stamps if proposal else None,
        )
        self._ticks += 1
        return step

    def _human_for_record(self, now: float) -> tuple[float, ...] | None:
        humans = [s for s in self._sources.values() if s.config.type == "human" and s.fresh(now)]
        engaged = [s for s in humans if s.engaged]
        chosen = (engaged or humans or [None])[0]
        if chosen is None:
            return None
        gripper = chosen.gripper if chosen.gripper is not None else self._last_gripper
        return chosen.twist + (gripper,)
