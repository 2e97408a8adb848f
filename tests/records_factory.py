"""Hand-built step records and episode events for tests (no ROS)."""
from __future__ import annotations

from iil_robot.records import EpisodeEvent, StepRecord

ZERO = (0.0,) * 7


def step(tick: int, source: str = "policy", *, onset: bool = False, obs: bool = True, stamp: float | None = None,
         version: int | None = 0, human: tuple | None = None, executed: tuple | None = None) -> StepRecord:
    """Step ``tick`` at 20 Hz; observation (tick, 0.5); executed vx = tick/100 (policy) or -tick/100 (human)."""
    vx = tick / 100.0 if source == "policy" else -tick / 100.0 if source == "human" else 0.0
    action = executed or (vx, 0.1, 0.2, 0.3, 0.4, 0.5, 1.0 if source == "human" else 0.0)
    human_action = human if human is not None else ((-tick / 10.0, 0, 0, 0, 0, 0, 1.0) if source == "human" else None)
    return StepRecord(
        tick=tick, stamp=stamp if stamp is not None else tick * 0.05, source=source,
        source_name={"policy": "policy", "human": "spacemouse", "hold": "policy"}[source],
        executed_action=ZERO if source == "hold" else action,
        policy_action=action if source == "policy" else None, human_action=human_action,
        human_engaged=source == "human", intervention=source == "human", onset=onset, offset=False,
        observation=(float(tick), 0.5) if obs else None, obs_stamp=tick * 0.05 if obs else None,
        policy_version=version if obs else None, hold_reason="stale:policy" if source == "hold" else "", limited=False,
    )


def steps(pattern: str, start_tick: int = 0) -> list[StepRecord]:
    """One step per character: p policy, h human (H = onset), x hold, n policy without observation."""
    out = []
    for i, c in enumerate(pattern):
        t = start_tick + i
        if c == "p":
            out.append(step(t))
        elif c in "hH":
            out.append(step(t, "human", onset=c == "H"))
        elif c == "x":
            out.append(step(t, "hold"))
        elif c == "n":
            out.append(step(t, obs=False))
        else:
            raise ValueError(c)
    return out


def event(kind: str, stamp: float, origin: str = "sim") -> EpisodeEvent:
    return EpisodeEvent(kind, origin, stamp)


def write_bag(path, records: list[StepRecord], events: list[EpisodeEvent]):
    """A recorder-like bag at ``path``: ``/step`` and ``/episode/event`` as std_msgs/String, in stamp order."""
    from iil_robot.bags import SplitBagWriter, TopicSpec, typestore

    string = "std_msgs/msg/String"
    clock = [0.0]
    writer = SplitBagWriter(path, clock=lambda: clock[0])
    writer.open()
    step_id = writer.add_topic(TopicSpec("/step", string))
    event_id = writer.add_topic(TopicSpec("/episode/event", string, "latched"))
    stream = sorted([(r.stamp, step_id, r.encode()) for r in records] + [(e.stamp, event_id, e.encode()) for e in events])
    for stamp, topic, text in stream:
        clock[0] = stamp
        writer.write(topic, int(stamp * 1e9) + 1, typestore().serialize_cdr(typestore().types[string](data=text), string))
    writer.close()
    return path
