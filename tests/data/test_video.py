"""``iil-robot replay --video``: an MP4 per episode from the JPEG frames in the bag, with the
onset flagged on the frames after it."""
from __future__ import annotations

import json

import cv2
import numpy as np

from iil_robot.cli.main import main
from iil_robot.data.bags import SplitBagWriter, TopicSpec, typestore
from iil_robot.data.camera import encode_jpeg
from tests.records_factory import event, steps

STRING, JPEG = "std_msgs/msg/String", "sensor_msgs/msg/CompressedImage"


def test_replay_video_writes_one_mp4_per_episode_with_the_onset_marked(tmp_path, capsys):
    store = typestore()
    records = steps("ppppHhhppp") + steps("pppppp", 10)  # onset at tick 4 (t = 0.20 s)
    events = [event("start", 0.0), event("success", 0.49, "operator"), event("start", 0.5), event("timeout", 0.79)]
    clock = [0.0]
    writer = SplitBagWriter(tmp_path / "bags" / "s_000", clock=lambda: clock[0])
    writer.open()
    step_id, event_id = (writer.add_topic(TopicSpec("/step", STRING)),
                         writer.add_topic(TopicSpec("/episode/event", STRING, "latched")))
    image_id = writer.add_topic(TopicSpec("/camera/front/image_raw/compressed", JPEG, "sensor"))
    stream = [(r.stamp, step_id, store.serialize_cdr(store.types[STRING](data=r.encode()), STRING)) for r in records]
    stream += [(e.stamp, event_id, store.serialize_cdr(store.types[STRING](data=e.encode()), STRING)) for e in events]
    for i in range(32):  # 40 Hz frames over both episodes: a grey that gets lighter
        stamp = 0.0125 + i * 0.025
        header = store.types["std_msgs/msg/Header"](
            stamp=store.types["builtin_interfaces/msg/Time"](sec=0, nanosec=int(stamp * 1e9)), frame_id="camera")
        msg = store.types[JPEG](header=header, format="rgb8; jpeg compressed bgr8",
                                data=np.frombuffer(encode_jpeg(np.full((64, 64, 3), 40 + 5 * i, np.uint8)), np.uint8))
        stream.append((stamp, image_id, store.serialize_cdr(msg, JPEG)))
    for stamp, topic, data in sorted(stream, key=lambda s: s[0]):
        clock[0] = stamp
        writer.write(topic, int(stamp * 1e9) + 1, data)
    writer.close()

    out = tmp_path / "videos"
    assert main(["replay", str(tmp_path / "bags"), "--video", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)["video"]
    assert summary["frames"] == 32 and summary["undecodable"] == 0
    assert summary["videos"] == {"episode_000.mp4": 20, "episode_001.mp4": 12}  # frames within [start, end] of each

    capture = cv2.VideoCapture(str(out / "episode_000.mp4"))
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(bgr)
    capture.release()
    assert len(frames) == 20 and frames[0].shape == (256, 256, 3)  # enlarged 4x so the text is readable
    red_border = [f[2, 128, 2] > 150 and f[2, 128, 1] < 100 for f in frames]  # BGR: red top edge
    onset_frames = [i for i, red in enumerate(red_border) if red]
    # frames at t = 0.2125 .. 0.6875 s lie within 0.5 s after the onset at 0.20 s: frames 8..19 of episode 0
    assert onset_frames == list(range(8, 20)), onset_frames
