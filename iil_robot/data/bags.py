"""rosbag2 bags (MCAP storage) that survive a crash: written in short files, read with rosbags.

A bag is a directory with ``metadata.yaml`` and ``<name>_<i>.mcap`` files, the layout
``ros2 bag record --storage mcap --max-bag-duration`` produces, so ``ros2 bag play``, Foxglove
(each ``.mcap``), ``rosbags`` and ``mcap`` open it.

Crash safety. rosbags' own writer writes ``metadata.yaml`` and each MCAP summary only on close,
so a killed writer leaves a bag nothing opens. :class:`SplitBagWriter` instead closes its MCAP
file before the oldest message in it has waited ``split_period`` (<= 1 s) and then atomically
replaces ``metadata.yaml`` (write a temporary file, fsync, rename) so that it lists every closed
file and never the open one. The deadline runs from each message's receipt, not from the file's
opening, and the rotation starts at ``ACT_AT`` of it, so that the rotation itself and the writer's
wake-up fit inside it. A writer killed at any instant therefore leaves a bag that rosbags reads up
to every message received more than ``split_period`` before the kill. In between, the open file
is flushed in whole MCAP chunks on the same kind of deadline, ``flush_period``, so
:func:`repair_bag` (``iil-robot replay --repair``) recovers everything received more than
``flush_period`` before the kill from the unterminated file as well.

Errors: every failure to write raises :class:`BagError`; a full disk raises :class:`DiskFullError`
naming the path and the free space. Closed files and the last ``metadata.yaml`` stay valid.
"""
from __future__ import annotations

import errno
import functools
import json
import os
import shutil
import struct
import time
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from mcap.exceptions import McapError
from mcap.records import Channel, Message, Schema
from mcap.stream_reader import StreamReader
from mcap.writer import CompressionType
from mcap.writer import Writer as McapFileWriter
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import Reader
from rosbags.rosbag2.metadata import dump_qos_v9
from rosbags.typesys import Stores, get_typestore
from ruamel.yaml import YAML

__all__ = [
    "BagError", "DiskFullError", "QOS_KINDS", "TopicSpec", "SplitBagWriter", "BagMessage",
    "find_bags", "read_messages", "repair_bag", "RepairReport", "typestore", "qos_profile",
]

METADATA = "metadata.yaml"
BAG_VERSION = 9
QOS_KINDS = ("reliable", "latched", "sensor")
"""How a topic is subscribed and offered on playback: reliable volatile, reliable
transient-local (latched state and events), best-effort volatile (sensor streams)."""

_TYPESTORE = None


def typestore():
    """The rosbags type store of ROS 2 Jazzy (message definitions, CDR (de)serialisation)."""
    global _TYPESTORE
    if _TYPESTORE is None:
        _TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
    return _TYPESTORE


class BagError(RuntimeError):
    """A bag cannot be written or read; the message says which path and why."""


class DiskFullError(BagError):
    """The disk holding the bag is full (ENOSPC/EDQUOT)."""


def _write_error(path: Path, err: OSError) -> BagError:
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        try:
            free = shutil.disk_usage(path.parent if not path.exists() else path).free
            space = f"{free / 1e6:.1f} MB free"
        except OSError:
            space = "free space unknown"
        return DiskFullError(
            f"disk full writing {path} ({space}): recording stopped; what was written before is kept "
            "(free space, then run `iil-robot replay --repair` on the bag)"
        )
    return BagError(f"cannot write {path}: {err.strerror or err}")


def qos_profile(kind: str, depth: int = 10) -> Qos:
    """The rosbags QoS stored as the topic's offered profile (used by ``ros2 bag play``)."""
    if kind not in QOS_KINDS:
        raise ValueError(f"qos {kind!r} must be one of {QOS_KINDS}")
    zero = QosTime(0, 0)
    return Qos(
        QosHistory.KEEP_LAST, depth,
        QosReliability.BEST_EFFORT if kind == "sensor" else QosReliability.RELIABLE,
        QosDurability.TRANSIENT_LOCAL if kind == "latched" else QosDurability.VOLATILE,
        zero, zero, QosLiveliness.AUTOMATIC, zero, False,
    )


@dataclass(frozen=True)
class TopicSpec:
    """One recorded topic."""

    topic: str
    """Fully qualified topic name as stored in the bag, e.g. ``/step``."""
    msgtype: str
    """ROS 2 type name, e.g. ``std_msgs/msg/String``."""
    qos: str = "reliable"
    """One of ``QOS_KINDS``."""


@dataclass
class _FileStats:
    path: str
    start: int = 2**63 - 1
    end: int = 0
    count: int = 0

    def add(self, t_ns: int) -> None:
        self.start = min(self.start, t_ns)
        self.end = max(self.end, t_ns)
        self.count += 1


ACT_AT = 0.9
"""A rotation (a flush) starts once the oldest message not yet in a closed (flushed) file has waited this share of
``split_period`` (``flush_period``); the rest of the period is for the rotation (flush) itself and the writer's
wake-up (bench recorder-kill)."""


class SplitBagWriter:
    """Writes a rosbag2 MCAP bag as a series of short closed files (see the module docstring).

    Not thread-safe: call it from one thread (the recorder's writer thread).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        split_period: float = 1.0,
        flush_period: float = 0.2,
        chunk_size: int = 256 * 1024,
        compression: str = "none",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0.0 < flush_period <= split_period:
            raise ValueError(f"need 0 < flush_period ({flush_period}) <= split_period ({split_period})")
        if compression not in ("none", "lz4", "zstd"):
            raise ValueError(f"compression {compression!r} must be none, lz4 or zstd")
        self.path = Path(path)
        self.split_period = split_period
        self.flush_period = flush_period
        self.chunk_size = chunk_size
        self.compression = {"none": CompressionType.NONE, "lz4": CompressionType.LZ4, "zstd": CompressionType.ZSTD}[compression]
        self.clock = clock
        self.topics: list[TopicSpec] = []
        self.counts: list[int] = []
        self.closed: list[_FileStats] = []
        self.custom_data: dict[str, str] = {}
        self._file = None
        self._mcap: McapFileWriter | None = None
        self._stats: _FileStats | None = None
        self._channel_ids: list[int] = []
        self._oldest_in_file = 0.0  # clock() at receipt of the open file's first message
        self._oldest_unflushed = 0.0  # ... of the first message written since the last flush
        self._dirty = False
        self.failed: BagError | None = None

    # -- public --------------------------------------------------------------------------

    def open(self) -> None:
        """Create the bag directory (it must not exist) and write an empty metadata.yaml."""
        try:
            self.path.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise BagError(f"{self.path} exists already; a bag is never overwritten") from None
        except OSError as err:
            raise _write_error(self.path, err) from err
        self._write_metadata()

    def add_topic(self, spec: TopicSpec) -> int:
        """Register a topic; returns its id for :meth:`write`."""
        typestore()  # raises early for an unknown type below
        if spec.msgtype not in typestore().fielddefs:
            raise BagError(f"unknown message type {spec.msgtype!r} for topic {spec.topic}")
        if spec.qos not in QOS_KINDS:
            raise BagError(f"topic {spec.topic}: qos {spec.qos!r} must be one of {QOS_KINDS}")
        self.topics.append(spec)
        self.counts.append(0)
        if self._mcap is not None:
            self._guard(lambda: self._register(len(self.topics) - 1))
        return len(self.topics) - 1

    def write(self, topic_id: int, t_ns: int, data: bytes, received: float | None = None) -> None:
        """Write one serialized (CDR) message received at ``t_ns`` (node clock) and ``received`` (this writer's clock;
        default now: its rotation and flush deadlines run from it). Raises BagError."""
        if self.failed is not None:
            raise self.failed
        received = self.clock() if received is None else received
        self.tick()  # rotate first when due, so that no message waits in the open file past its deadline
        if self._mcap is None:
            self._guard(self._open_file)
            self._oldest_in_file = received
        assert self._mcap is not None and self._stats is not None
        channel = self._channel_ids[topic_id]
        self._guard(lambda: self._mcap.add_message(channel, log_time=t_ns, data=data, publish_time=t_ns))
        self._stats.add(t_ns)
        self.counts[topic_id] += 1
        if not self._dirty:
            self._oldest_unflushed = received
        self._dirty = True

    def tick(self) -> None:
        """Rotate or flush when due; call it again within :meth:`next_due`."""
        if self._mcap is None or self.failed is not None:
            return
        now = self.clock()
        if now - self._oldest_in_file >= ACT_AT * self.split_period:
            self._guard(self._rotate)
        elif self._dirty and now - self._oldest_unflushed >= ACT_AT * self.flush_period:
            self._guard(self._mcap.flush)
            self._dirty = False

    def next_due(self) -> float | None:
        """Seconds until :meth:`tick` has a rotation or a flush to do; None while no file is open."""
        if self._mcap is None or self.failed is not None:
            return None
        due = self._oldest_in_file + ACT_AT * self.split_period
        if self._dirty:
            due = min(due, self._oldest_unflushed + ACT_AT * self.flush_period)
        return max(0.0, due - self.clock())

    def set_custom_data(self, key: str, value: str) -> None:
        """A string in metadata.yaml ``custom_data``; written with the next rotation."""
        self.custom_data[key] = value

    def close(self) -> None:
        """Close the open file and write the final metadata.yaml."""
        if self.failed is not None:
            return
        if self._mcap is not None:
            self._guard(self._close_file)
        self._guard(self._write_metadata)

    @property
    def message_count(self) -> int:
        return sum(self.counts)

    # -- files ---------------------------------------------------------------------------

    def _guard(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except OSError as err:
            self.failed = _write_error(self._stats_path(), err)
            self._abandon()
            raise self.failed from err

    def _stats_path(self) -> Path:
        return self.path / self._stats.path if self._stats is not None else self.path / METADATA

    def _abandon(self) -> None:
        # Keep closed files and the last metadata.yaml; drop the half-written file's handle.
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
        self._file, self._mcap, self._stats = None, None, None

    def _open_file(self) -> None:
        name = f"{self.path.name}_{len(self.closed)}.mcap"
        self._file = open(self.path / name, "xb")
        self._mcap = McapFileWriter(self._file, chunk_size=self.chunk_size, compression=self.compression)
        self._mcap.start(profile="ros2", library="iil_robot")
        self._stats = _FileStats(name)
        self._schema_ids: dict[str, int] = {}
        self._channel_ids = []
        for topic_id in range(len(self.topics)):
            self._register(topic_id)

    def _register(self, topic_id: int) -> None:
        assert self._mcap is not None
        spec = self.topics[topic_id]
        if spec.msgtype not in self._schema_ids:
            msgdef, _ = typestore().generate_msgdef(spec.msgtype, ros_version=2)
            self._schema_ids[spec.msgtype] = self._mcap.register_schema(spec.msgtype, "ros2msg", msgdef.encode())
        self._channel_ids.append(self._mcap.register_channel(
            spec.topic, "cdr", self._schema_ids[spec.msgtype],
            {"offered_qos_profiles": _qos_yaml(spec.qos)},
        ))

    def _close_file(self) -> None:
        assert self._mcap is not None and self._file is not None and self._stats is not None
        self._mcap.finish()
        self._file.close()
        if self._stats.count:
            self.closed.append(self._stats)
        else:  # nothing in it: not worth a file
            (self.path / self._stats.path).unlink()
        self._file, self._mcap, self._stats = None, None, None

    def _rotate(self) -> None:
        self._close_file()
        self._write_metadata()
        self._dirty = False

    def _write_metadata(self) -> None:
        write_metadata(self.path, self.topics, self.counts, self.closed, self.custom_data)


@functools.cache  # every new file registers every topic, once a second, and a YAML dump is slow
def _qos_yaml(kind: str) -> str:
    stream = StringIO()
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    yaml.dump(dump_qos_v9([qos_profile(kind)]), stream)
    return stream.getvalue().strip()


def write_metadata(
    path: Path, topics: Sequence[TopicSpec], counts: Sequence[int], files: Sequence[_FileStats],
    custom_data: dict[str, str],
) -> None:
    """Write ``metadata.yaml`` (rosbag2 version 9) atomically: temp file, fsync, rename."""
    start = min((f.start for f in files), default=0)
    end = max((f.end for f in files), default=0)
    total = sum(f.count for f in files)
    info = {
        "version": BAG_VERSION,
        "storage_identifier": "mcap",
        "relative_file_paths": [f.path for f in files],
        "duration": {"nanoseconds": max(0, end - start)},
        "starting_time": {"nanoseconds_since_epoch": start},
        "message_count": total,
        "topics_with_message_count": [
            {
                "topic_metadata": {
                    "name": t.topic, "type": t.msgtype, "serialization_format": "cdr",
                    "offered_qos_profiles": dump_qos_v9([qos_profile(t.qos)]),
                    "type_description_hash": typestore().hash_rihs01(t.msgtype),
                },
                "message_count": count,
            }
            for t, count in zip(topics, counts)
        ],
        "compression_format": "",
        "compression_mode": "",
        "files": [
            {"path": f.path, "starting_time": {"nanoseconds_since_epoch": f.start},
             "duration": {"nanoseconds": max(0, f.end - f.start)}, "message_count": f.count}
            for f in files
        ],
        "custom_data": dict(custom_data) or None,
        "ros_distro": "jazzy",
    }
    # Written as JSON, which is YAML (1.2) that rosbags, rosbag2 (yaml-cpp) and PyYAML read:
    # a YAML emitter takes 15-100+ ms per rotation here, holding the GIL while the recorder's
    # executor waits; json takes well under a millisecond.
    text = json.dumps({"rosbag2_bagfile_information": info}, indent=1) + "\n"
    tmp = path / (METADATA + ".tmp")
    with open(tmp, "w", encoding="utf8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path / METADATA)


# -- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BagMessage:
    """One message read back: topic, type, receive time (ns) and the deserialized message."""

    bag: Path
    topic: str
    msgtype: str
    t_ns: int
    message: Any
    raw: bytes = field(repr=False, default=b"")


def find_bags(paths: Iterable[Path | str]) -> list[Path]:
    """Bag directories among ``paths``: a bag itself, or a directory searched for bags. Sorted."""
    bags: list[Path] = []
    for item in map(Path, paths):
        if not item.exists():
            raise BagError(f"{item} does not exist")
        if (item / METADATA).exists() or (item.is_dir() and any(item.glob("*.mcap"))):
            bags.append(item)
        elif item.is_dir():
            found = sorted({p.parent for p in item.rglob(METADATA)} | {p.parent for p in item.rglob("*.mcap")})
            if not found:
                raise BagError(f"no rosbag2 bag (metadata.yaml or *.mcap) under {item}")
            bags.extend(found)
        else:
            raise BagError(f"{item} is not a bag directory (a bag is a directory with metadata.yaml)")
    return sorted(dict.fromkeys(bags))


def unlisted_files(bag: Path) -> list[Path]:
    """``.mcap`` files in ``bag`` that metadata.yaml does not list (left by a crash)."""
    listed = set(_listed(bag))
    return sorted(p for p in bag.glob("*.mcap") if p.name not in listed)


def _listed(bag: Path) -> list[str]:
    meta = bag / METADATA
    if not meta.exists():
        return []
    info = YAML(typ="safe").load(meta.read_text()).get("rosbag2_bagfile_information", {})
    return [Path(p).name for p in info.get("relative_file_paths", [])]


def read_messages(bag: Path | str, topics: Sequence[str] | None = None, *, raw: bool = False) -> Iterator[BagMessage]:
    """Messages of one bag (all files metadata.yaml lists) in time order, deserialized.

    Raises:
        BagError: no metadata.yaml (run :func:`repair_bag`) or an unreadable bag.
    """
    bag = Path(bag)
    if not (bag / METADATA).exists():
        raise BagError(f"{bag} has no {METADATA} (the recorder was killed before its first rotation?): "
                       f"run `iil-robot replay --repair {bag}`")
    store = typestore()
    try:
        with Reader(bag) as reader:
            connections = [c for c in reader.connections if topics is None or c.topic in topics]
            if not connections:
                return
            for conn, t_ns, data in reader.messages(connections=connections):
                yield BagMessage(bag, conn.topic, conn.msgtype, t_ns,
                                 None if raw else store.deserialize_cdr(data, conn.msgtype), bytes(data) if raw else b"")
    except BagError:
        raise
    except Exception as err:  # rosbags raises ReaderError, KeyError, ... for a broken bag
        raise BagError(f"cannot read bag {bag}: {err}") from err


# -- repair ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepairReport:
    bag: Path
    recovered_files: tuple[str, ...]
    recovered_messages: int
    dropped_files: tuple[str, ...]


def repair_bag(bag: Path | str) -> RepairReport:
    """Make a bag left by a crash whole: recover every complete chunk of unterminated files and
    rewrite metadata.yaml to list every readable ``.mcap`` file. Idempotent.
    """
    bag = Path(bag)
    recovered: list[str] = []
    dropped: list[str] = []
    n_recovered = 0
    for path in sorted(bag.glob("*.mcap"), key=_file_index):
        if _is_complete(path):
            continue
        count = _salvage(path)
        if count:
            recovered.append(path.name)
            n_recovered += count
        else:
            path.unlink()
            dropped.append(path.name)
    _rebuild_metadata(bag)
    return RepairReport(bag, tuple(recovered), n_recovered, tuple(dropped))


def _file_index(path: Path) -> tuple[int, str]:
    stem = path.stem.rsplit("_", 1)
    return (int(stem[1]) if len(stem) == 2 and stem[1].isdigit() else 0, path.name)


def _is_complete(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() < 8 + 37:
            return False
        f.seek(-8, os.SEEK_END)
        return f.read(8) == b"\x89MCAP0\r\n"


def _salvage(path: Path) -> int:
    """Rewrite an unterminated MCAP file with the complete records it holds; returns messages kept."""
    schemas: dict[int, Schema] = {}
    channels: dict[int, Channel] = {}
    messages: list[Message] = []
    with open(path, "rb") as f:
        try:
            for record in StreamReader(f, skip_magic=False, validate_crcs=True).records:
                if isinstance(record, Schema):
                    schemas[record.id] = record
                elif isinstance(record, Channel):
                    channels[record.id] = record
                elif isinstance(record, Message):
                    messages.append(record)
        except (McapError, EOFError, ValueError, struct.error):
            pass  # the torn tail: everything before it is kept
    if not messages:
        return 0
    tmp = path.with_suffix(".mcap.tmp")
    with open(tmp, "wb") as f:
        writer = McapFileWriter(f, compression=CompressionType.NONE)
        writer.start(profile="ros2", library="iil_robot repair")
        schema_map = {sid: writer.register_schema(s.name, s.encoding, s.data) for sid, s in schemas.items()}
        channel_map = {
            cid: writer.register_channel(c.topic, c.message_encoding, schema_map.get(c.schema_id, 0), c.metadata)
            for cid, c in channels.items()
        }
        kept = 0
        for m in messages:
            if m.channel_id in channel_map:
                writer.add_message(channel_map[m.channel_id], log_time=m.log_time, data=m.data,
                                   publish_time=m.publish_time, sequence=m.sequence)
                kept += 1
        writer.finish()
    os.replace(tmp, path)
    return kept


def _rebuild_metadata(bag: Path) -> None:
    from rosbags.rosbag2.storage_mcap import McapReader

    old = {}
    if (bag / METADATA).exists():
        old = YAML(typ="safe").load((bag / METADATA).read_text()).get("rosbag2_bagfile_information", {}) or {}
    topics: dict[str, TopicSpec] = {}
    counts: dict[str, int] = {}
    files: list[_FileStats] = []
    for path in sorted(bag.glob("*.mcap"), key=_file_index):
        reader = McapReader(path)
        reader.open()
        try:
            stats = _FileStats(path.name)
            for conn in reader.connections:
                kind = _qos_kind(conn.ext.offered_qos_profiles)
                topics.setdefault(conn.topic, TopicSpec(conn.topic, conn.msgtype, kind))
                counts[conn.topic] = counts.get(conn.topic, 0) + conn.msgcount
            for _, t_ns, _ in reader.messages(reader.connections):
                stats.add(t_ns)
            if stats.count:
                files.append(stats)
        finally:
            reader.close()
    specs = list(topics.values())
    write_metadata(bag, specs, [counts[t.topic] for t in specs], files, dict(old.get("custom_data") or {}))


def _qos_kind(profiles: Sequence[Qos]) -> str:
    if not profiles:
        return "reliable"
    q = profiles[0]
    if q.reliability == QosReliability.BEST_EFFORT:
        return "sensor"
    return "latched" if q.durability == QosDurability.TRANSIENT_LOCAL else "reliable"
