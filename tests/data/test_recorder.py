"""The recorder's writer thread without ROS: episodes summarised into the bag, a full disk."""
import errno
import json
import threading

from rosbags.rosbag2 import Reader

from iil_robot.data import bags
from iil_robot.data.bags import TopicSpec, read_messages, typestore
from iil_robot.data.episodes import EpisodeSummary
from iil_robot.data.recorder import SUMMARY_TOPIC, Recorder, RecorderConfig
from tests.records_factory import event, steps

STRING = "std_msgs/msg/String"
TOPICS = [TopicSpec("/step", STRING), TopicSpec("/episode/event", STRING, "latched")]


def cdr(text: str) -> bytes:
    return typestore().serialize_cdr(typestore().types[STRING](data=text), STRING)


def test_episodes_are_summarised_into_the_bag_and_its_metadata(tmp_path):
    seen = []
    recorder = Recorder(RecorderConfig(output_dir=str(tmp_path), operator="ana", task="push"), TOPICS, on_episode=seen.append)
    bag = recorder.start()
    recorder.put(1, 1, cdr(event("success", 0.2, "operator").encode()))
    for s in steps("ppHhpppp"):
        assert recorder.put(0, int(s.stamp * 1e9) + 1, cdr(s.encode()))
    recorder.stop()
    assert recorder.stats.error is None and recorder.stats.written == 9 and recorder.stats.dropped == 0
    summaries = [EpisodeSummary.decode(m.message.data) for m in read_messages(bag, [SUMMARY_TOPIC])]
    assert [(s.outcome, s.steps, s.interventions, s.operator) for s in summaries] == [
        ("success", 4, 1, "ana"), ("unfinished", 4, 0, "ana")]
    assert seen == summaries
    with Reader(bag) as reader:
        custom = reader.storage.metadata.custom
    assert [e["outcome"] for e in json.loads(custom["iil_robot.data.episodes"])] == ["success", "unfinished"]
    assert json.loads(custom["iil_robot.recording"])["task"] == "push"


def test_the_recorder_counts_mux_ticks_published_before_it_subscribed_and_lost_between_records(tmp_path):
    recorder = Recorder(RecorderConfig(output_dir=str(tmp_path)), TOPICS)
    recorder.start()
    for s in steps("pppppp", 12):
        if s.tick != 15:
            recorder.put(0, int(s.stamp * 1e9) + 1, cdr(s.encode()))
    recorder.stop()
    assert (recorder.stats.ticks_before_first_record, recorder.stats.ticks_missing) == (12, 1)


def test_full_disk_stops_recording_with_a_clear_error_and_keeps_what_was_written(tmp_path, monkeypatch):
    errors = []
    failed = threading.Event()
    recorder = Recorder(RecorderConfig(output_dir=str(tmp_path), split_period=0.05, flush_period=0.01), TOPICS,
                        on_error=lambda m: (errors.append(m), failed.set()))
    bag = recorder.start()
    records = steps("pppp")
    for s in records[:2]:
        recorder.put(0, int(s.stamp * 1e9) + 1, cdr(s.encode()))
    recorder.stop()  # writes and closes: the two records are safe in a closed bag

    recorder = Recorder(RecorderConfig(output_dir=str(tmp_path), prefix="second"), TOPICS,
                        on_error=lambda m: (errors.append(m), failed.set()))
    second = recorder.start()
    monkeypatch.setattr(bags.McapFileWriter, "add_message",
                        lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
    recorder.put(0, 1, cdr(records[2].encode()))
    assert failed.wait(5.0)
    assert "disk full writing" in errors[0] and "MB free" in errors[0] and str(second) in errors[0]
    assert recorder.stats.error == errors[0]
    assert recorder.put(0, 2, cdr(records[3].encode())) is False and recorder.stats.dropped >= 1
    recorder.stop()
    assert [m.message.data for m in read_messages(bag, ["/step"])] == [s.encode() for s in records[:2]]
    assert list(read_messages(second, ["/step"])) == []
