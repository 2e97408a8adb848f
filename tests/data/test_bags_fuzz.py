"""A bag damaged anywhere (a byte changed, the file cut short, its metadata garbled) reads or fails with BagError."""
from __future__ import annotations

import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iil_robot.data.bags import BagError, SplitBagWriter, TopicSpec, read_messages
from tests.data.test_bags import Clock, write_ticks


@pytest.fixture(scope="module")
def good_bag(tmp_path_factory):
    clock = Clock()
    writer = SplitBagWriter(tmp_path_factory.mktemp("good") / "bag", split_period=1.0, flush_period=0.2, clock=clock)
    writer.open()
    topic = writer.add_topic(TopicSpec("/step", "std_msgs/msg/String"))
    write_ticks(writer, clock, topic, 25)
    writer.close()
    return writer.path


def damaged_copy(bag, tmp_path_factory, name: str, change) -> object:
    copy = tmp_path_factory.mktemp("damaged") / "bag"
    shutil.copytree(bag, copy)
    target = sorted(copy.glob("*.mcap"))[1] if name == "mcap" else copy / "metadata.yaml"
    target.write_bytes(change(target.read_bytes()))
    return copy


def read_all(bag) -> None:
    try:
        list(read_messages(bag))
    except BagError:
        pass


@given(where=st.sampled_from(["mcap", "metadata"]), position=st.floats(0, 1), value=st.integers(0, 255),
       length=st.integers(1, 64))
def test_changed_bytes_read_or_raise_bag_error(good_bag, tmp_path_factory, where, position, value, length):
    def change(data: bytes) -> bytes:
        at = int(position * (len(data) - 1))
        return data[:at] + bytes([value]) * length + data[at + length:]

    read_all(damaged_copy(good_bag, tmp_path_factory, where, change))


@given(where=st.sampled_from(["mcap", "metadata"]), keep=st.floats(0, 1))
def test_a_bag_cut_short_reads_or_raises_bag_error(good_bag, tmp_path_factory, where, keep):
    read_all(damaged_copy(good_bag, tmp_path_factory, where, lambda data: data[: int(keep * len(data))]))
