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
        assert summary.statistics.message_count == 9  # the tick at 0.9 s (ACT_AT of split_period) starts the next file
        assert {c.topic for c in summary.channels.values()} == {"/step", "/image"}


def test_abandoned_writer_leaves_a_bag_readable_up_to_the_last_rotation_and_repair_recovers_flushed_chunks(writer, clock):
    step = writer.add_topic(TopicSpec("/step", STRING))
    write_ticks(writer, clock, step, 17)  # a rotation at 0.9 s (ACT_AT): m0..m8 closed; m9..m16 in the open file
    # killed here: never closed. Flushes happened once the oldest unflushed message was 0.18 s old.
    bag = writer.path
    assert texts(bag) == [f"m{i}" for i in range(9)]
    assert [p.name for p in unlisted_files(bag)] == ["bag_1.mcap"]
    report = repair_bag(bag)
    recovered = texts(bag)
    assert recovered == [f"m{i}" for i in range(15)]  # m15 and m16 (received < 0.18 s before the kill) were not flushed
    assert report.recovered_files == ("bag_1.mcap",) and report.recovered_messages == 15 - 9
    assert unlisted_files(bag) == []
    assert repair_bag(bag).recovered_messages == 0  # idempotent


def test_no_message_waits_in_the_open_file_past_its_deadline_from_receipt(writer, clock):
    """The deadlines run from each message's receipt: a message that waited in the recorder's queue makes the
    rotation (and the flush) come sooner, and next_due says when the writer must wake up for them."""
    step = writer.add_topic(TopicSpec("/step", STRING))
    assert writer.next_due() is None  # nothing open
    clock.t = 5.0
    writer.write(step, 1, cdr("late"), received=4.5)  # received 0.5 s ago (a backlog)
    assert writer.next_due() == 0.0  # its flush is overdue (0.5 s > ACT_AT * flush_period)
    writer.tick()  # flushed
    assert writer.next_due() == pytest.approx(4.5 + bags.ACT_AT * 1.0 - 5.0)  # the rotation: 0.4 s from now
    clock.t = 4.5 + bags.ACT_AT * 1.0
    writer.write(step, 2, cdr("next"))  # rotates first: "late" never waits more than ACT_AT * split_period in an open file
    assert texts(writer.path) == ["late"]


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
    assert texts(writer.path) == [f"m{i}" for i in range(9)]


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
