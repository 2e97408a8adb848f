"""Hand-built step records and episode events for tests (no ROS)."""
from __future__ import annotations

from iil_robot.data.records import EpisodeEvent, StepRecord

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


def write_bag(path, records: list[StepRecord], events: list[EpisodeEvent], frames: list[tuple[int, bytes]] = (),
              camera_frames: dict[str, list[tuple[int, bytes]]] | None = None):
    """A recorder-like bag at ``path``: ``/step`` and ``/episode/event`` as std_msgs/String, and ``frames``
    (header stamp in ns, JPEG bytes) as ``/camera/front/image_raw/compressed``, in stamp order; ``camera_frames``,
    by camera name, as ``/camera/<name>/image_raw/compressed`` (in place of ``frames``)."""
    import numpy as np

    from iil_robot.data.bags import SplitBagWriter, TopicSpec, typestore

    store = typestore()
    string, compressed = "std_msgs/msg/String", "sensor_msgs/msg/CompressedImage"
    clock = [0.0]
    writer = SplitBagWriter(path, clock=lambda: clock[0])
    writer.open()
    step_id = writer.add_topic(TopicSpec("/step", string))
    event_id = writer.add_topic(TopicSpec("/episode/event", string, "latched"))
    camera_frames = camera_frames if camera_frames is not None else ({"front": list(frames)} if frames else {})
    frame_ids = {name: writer.add_topic(TopicSpec(f"/camera/{name}/image_raw/compressed", compressed, "sensor"))
                 for name in camera_frames}

    def string_msg(text):
        return store.serialize_cdr(store.types[string](data=text), string)

    def frame_msg(ns, data):
        header = store.types["std_msgs/msg/Header"](stamp=store.types["builtin_interfaces/msg/Time"](
            sec=ns // 10**9, nanosec=ns % 10**9), frame_id="camera")
        msg = store.types[compressed](header=header, format="rgb8; jpeg compressed bgr8", data=np.frombuffer(data, np.uint8))
        return store.serialize_cdr(msg, compressed)

    stream = sorted([(r.stamp, step_id, string_msg(r.encode())) for r in records]
                    + [(e.stamp, event_id, string_msg(e.encode())) for e in events]
                    + [(ns * 1e-9, frame_ids[name], frame_msg(ns, data)) for name, camera in camera_frames.items()
                       for ns, data in camera], key=lambda item: item[:2])
    for stamp, topic, raw in stream:
        clock[0] = stamp
        writer.write(topic, int(stamp * 1e9) + 1, raw)
    writer.close()
    return path
