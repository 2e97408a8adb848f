"""Split MCAP bags: layout, what survives an abandoned (killed) writer, repair, a full disk."""
import errno
import json

import pytest
from mcap.reader import make_reader
from rosbags.rosbag2 import Reader

from iil_robot.data import bags
from iil_robot.data.bags import (
    BagError,
    DiskFullError,
    SplitBagWriter,
    TopicSpec,
    find_bags,
    read_messages,
    repair_bag,
    typestore,
    unlisted_files,
)

STRING = "std_msgs/msg/String"


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def cdr(text: str) -> bytes:
    return typestore().serialize_cdr(typestore().types[STRING](data=text), STRING)


def texts(bag, topic="/step"):
    return [m.message.data for m in read_messages(bag, [topic])]


def write_ticks(writer, clock, topic_id, n, start=0, period=0.1):
    for i in range(start, start + n):
        clock.t = i * period
        writer.write(topic_id, 1_000_000_000 + i * 100_000_000, cdr(f"m{i}"))


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def writer(tmp_path, clock):
    w = SplitBagWriter(tmp_path / "bag", split_period=1.0, flush_period=0.2, clock=clock)
    w.open()
    return w


def test_closed_bag_is_a_rosbag2_mcap_directory_that_rosbags_and_mcap_read(writer, clock):
    step = writer.add_topic(TopicSpec("/step", STRING))
    writer.add_topic(TopicSpec("/image", "sensor_msgs/msg/Image", "sensor"))
    write_ticks(writer, clock, step, 25)
    writer.set_custom_data("iil_robot.data.episodes", json.dumps([{"index": 0}]))
    writer.close()
    bag = writer.path
    assert sorted(p.name for p in bag.iterdir()) == ["bag_0.mcap", "bag_1.mcap", "bag_2.mcap", "metadata.yaml"]
    assert texts(bag) == [f"m{i}" for i in range(25)]
    with Reader(bag) as reader:
        assert reader.message_count == 25
        assert {t: i.msgcount for t, i in reader.topics.items()} == {"/step": 25, "/image": 0}
        assert json.loads(reader.storage.metadata.custom["iil_robot.data.episodes"]) == [{"index": 0}]
        assert reader.start_time == 1_000_000_000
    with open(bag / "bag_0.mcap", "rb") as f:
        summary = make_reader(f).get_summary()
        assert summary.statistics.message_count == 10
        assert {c.topic for c in summary.channels.values()} == {"/step", "/image"}


def test_abandoned_writer_leaves_a_bag_readable_up_to_the_last_rotation_and_repair_recovers_flushed_chunks(writer, clock):
    step = writer.add_topic(TopicSpec("/step", STRING))
    write_ticks(writer, clock, step, 17)  # rotations at 1.0 s: m0..m9 closed; m10..m16 in the open file
    # killed here: never closed. Flushes happened at >= 0.2 s intervals in the open file.
    bag = writer.path
    assert texts(bag) == [f"m{i}" for i in range(10)]
    assert [p.name for p in unlisted_files(bag)] == ["bag_1.mcap"]
    report = repair_bag(bag)
    recovered = texts(bag)
    assert recovered[:10] == [f"m{i}" for i in range(10)]
    assert recovered == [f"m{i}" for i in range(len(recovered))]
    assert len(recovered) >= 14  # flushed every 0.2 s of the injected clock: at most 2 lost
    assert report.recovered_files == ("bag_1.mcap",) and report.recovered_messages == len(recovered) - 10
    assert unlisted_files(bag) == []
    assert repair_bag(bag).recovered_messages == 0  # idempotent


def test_repair_rebuilds_a_missing_metadata_file_and_drops_a_file_with_nothing_complete(writer, clock):
    step = writer.add_topic(TopicSpec("/step", STRING))
    write_ticks(writer, clock, step, 12)
    writer.close()
    bag = writer.path
    (bag / "metadata.yaml").unlink()
    (bag / "bag_9.mcap").write_bytes(b"\x89MCAP0\r\n\x01")  # torn right after the magic
    with pytest.raises(BagError, match="--repair"):
        list(read_messages(bag))
    report = repair_bag(bag)
    assert report.dropped_files == ("bag_9.mcap",)
    assert texts(bag) == [f"m{i}" for i in range(12)]


def test_full_disk_names_the_path_and_free_space_and_keeps_closed_files(writer, clock, monkeypatch):
    step = writer.add_topic(TopicSpec("/step", STRING))
    write_ticks(writer, clock, step, 12)

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(bags.McapFileWriter, "add_message", no_space)
    with pytest.raises(DiskFullError, match=r"disk full writing .*bag_1\.mcap \(\d+\.\d MB free\)"):
        write_ticks(writer, clock, step, 1, start=12)
    with pytest.raises(DiskFullError):  # stays failed
        write_ticks(writer, clock, step, 1, start=13)
    writer.close()  # no-op after a failure
    assert texts(writer.path) == [f"m{i}" for i in range(10)]


def test_writer_refuses_an_existing_directory_and_an_unknown_type(tmp_path):
    (tmp_path / "bag").mkdir()
    with pytest.raises(BagError, match="exists already"):
        SplitBagWriter(tmp_path / "bag").open()
    w = SplitBagWriter(tmp_path / "other")
    w.open()
    with pytest.raises(BagError, match="unknown message type 'my_msgs/msg/Thing'"):
        w.add_topic(TopicSpec("/x", "my_msgs/msg/Thing"))


def test_find_bags_searches_directories(tmp_path, clock):
    for name in ("a", "sub/b"):
        w = SplitBagWriter(tmp_path / name, clock=clock)
        w.open()
        w.close()
    assert find_bags([tmp_path]) == [tmp_path / "a", tmp_path / "sub/b"]
    assert find_bags([tmp_path / "a"]) == [tmp_path / "a"]
    with pytest.raises(BagError, match="does not exist"):
        find_bags([tmp_path / "nope"])
