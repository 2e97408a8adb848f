"""The episode recorder's core: a writer thread that turns received messages into bags.

The recorder node hands every received message (CDR bytes, receive time) to
:meth:`Recorder.put`, which never blocks: it appends to a bounded queue and counts a drop when
the queue is full. One writer thread drains the queue into a :class:`SplitBagWriter`, rotating
files before their oldest message has waited ``split_period`` and starting a new bag every ``max_bag_duration`` (rosbags opens
every file of a bag at once, so a bag is kept below common open-file limits). The thread also
decodes step records and episode events, splits episodes with the same
:class:`EpisodeSplitter` the learners use, and writes an ``iil_robot.episode`` summary on
``/recorder/episode`` into the bag and into ``metadata.yaml`` ``custom_data`` as each episode ends.

One bag per session, not per episode: see docs/data.md ("Recorder and bags").
"""
from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from iil_robot.data.bags import BagError, SplitBagWriter, TopicSpec, typestore
from iil_robot.data.episodes import EpisodeSplitter, EpisodeSummary, TickGaps
from iil_robot.data.records import EpisodeEvent, RecordError, StepRecord

SUMMARY_TOPIC = "/recorder/episode"
STRING = "std_msgs/msg/String"


@dataclass(frozen=True)
class RecorderConfig:
    """Recorder settings; node parameters map one to one onto these fields."""

    output_dir: str = "recordings"
    """Directory that receives one bag directory per session (and part)."""
    prefix: str = "iil"
    """Bag names: ``<prefix>_<YYYYmmdd_HHMMSS>_<part>``."""
    split_period: float = 1.0
    """The most a killed recorder loses (s, <= 1): an MCAP file is closed before its oldest message has waited this long."""
    flush_period: float = 0.2
    """What a killed recorder loses after ``replay --repair`` (s): the open file is flushed before its oldest unflushed
    message has waited this long."""
    max_bag_duration: float = 600.0
    """Seconds per bag before the next part starts."""
    queue_limit: int = 20000
    """Messages waiting for the writer before new ones are dropped (and counted)."""
    compression: str = "none"
    """MCAP chunk compression: none, lz4 or zstd."""
    operator: str = ""
    """Operator name, stored with each episode."""
    task: str = ""
    """Task name, stored with each episode."""
    step_topic: str = "/step"
    """Topic of the step records (for episode summaries)."""
    event_topic: str = "/episode/event"
    """Topic of the episode events."""


@dataclass
class RecorderStats:
    received: int = 0
    written: int = 0
    dropped: int = 0
    """Messages dropped because the writer queue was full or recording had stopped."""
    undecodable: int = 0
    """Step records or episode events that did not decode (recorded anyway)."""
    last_undecodable: str = ""
    """Why the newest of them did not decode (topic: error)."""
    episodes: int = 0
    ticks: TickGaps = field(default_factory=TickGaps)
    """Mux ticks no received step record holds."""
    bags: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ticks_before_first_record(self) -> int:
        """Mux ticks published before the first step record arrived (the recorder subscribed late)."""
        return self.ticks.before_first

    @property
    def ticks_missing(self) -> int:
        """Mux ticks missing between the step records received."""
        return self.ticks.between


class Recorder:
    """Writer thread + bag rotation (module docstring). ``put`` is safe from any thread."""

    def __init__(
        self,
        config: RecorderConfig,
        topics: list[TopicSpec],
        *,
        clock: Callable[[], float] = time.monotonic,
        on_episode: Callable[[EpisodeSummary], None] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.topics = list(topics)
        self.clock = clock
        self.on_episode = on_episode
        self.on_error = on_error
        self.stats = RecorderStats()
        self._queue: queue.Queue = queue.Queue(maxsize=config.queue_limit)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._writer: SplitBagWriter | None = None
        self._bag_started = 0.0
        self._summaries: list[dict] = []
        self._last_t_ns = 0
        self._splitter = EpisodeSplitter()
        self._session = datetime.now().strftime("%Y%m%d_%H%M%S")
        self._step_id = next((i for i, t in enumerate(self.topics) if t.topic == config.step_topic), None)
        self._event_id = next((i for i, t in enumerate(self.topics) if t.topic == config.event_topic), None)

    # -- any thread ----------------------------------------------------------------------

    def start(self) -> Path:
        """Open the first bag (raises BagError) and start the writer thread; returns the bag path."""
        self._open_bag()
        self._thread = threading.Thread(target=self._run, name="recorder-writer", daemon=True)
        self._thread.start()
        assert self._writer is not None
        return self._writer.path

    def put(self, topic_id: int, t_ns: int, data: bytes) -> bool:
        """Queue one received message; never blocks. False if it was dropped."""
        self.stats.received += 1
        if self.stats.error is not None or self._stop.is_set():
            self.stats.dropped += 1
            return False
        try:
            self._queue.put_nowait((topic_id, t_ns, data, self.clock()))  # receipt: the writer's deadlines run from it
        except queue.Full:
            self.stats.dropped += 1
            return False
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Write everything queued, close the bag (final metadata.yaml) and end the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def bag_path(self) -> Path | None:
        return self._writer.path if self._writer is not None else None

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    # -- writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                try:
                    item = self._queue.get(timeout=self._wait())
                except queue.Empty:
                    if self._stop.is_set():
                        break
                    item = None
                if item is not None:
                    self._write(*item)
                self._maintain()
            self._finish()
        except BagError as err:
            self._fail(str(err))

    def _wait(self) -> float:
        """How long the writer may wait for the next message: until its next rotation or flush is due."""
        assert self._writer is not None
        due = self._writer.next_due()
        return max(0.001, min(self.config.flush_period / 2, self.config.flush_period if due is None else due))

    def _write(self, topic_id: int, t_ns: int, data: bytes, received: float) -> None:
        assert self._writer is not None
        self._writer.write(topic_id, t_ns, data, received)
        self.stats.written += 1
        self._last_t_ns = t_ns
        if topic_id == self._step_id or topic_id == self._event_id:
            self._follow_episodes(topic_id, t_ns, data)

    def _follow_episodes(self, topic_id: int, t_ns: int, data: bytes) -> None:
        try:
            text = typestore().deserialize_cdr(data, STRING).data
            if topic_id == self._step_id:
                step = StepRecord.decode(text)
                self.stats.ticks.add(step.tick)
                done = self._splitter.add_step(step)
            else:
                done = self._splitter.add_event(EpisodeEvent.decode(text))
        except (RecordError, ValueError, KeyError) as err:  # ValueError, KeyError: not CDR of a std_msgs/String
            self.stats.undecodable += 1
            self.stats.last_undecodable = f"{self.topics[topic_id].topic}: {str(err)[:300]}"
            return
        for episode in done:
            self._summarise(EpisodeSummary.of(episode, self.config.operator, self.config.task), t_ns)

    def _summarise(self, summary: EpisodeSummary, t_ns: int) -> None:
        assert self._writer is not None
        self._writer.write(self._summary_id, t_ns, typestore().serialize_cdr(
            typestore().types[STRING](data=summary.encode()), STRING))
        self._summaries.append(summary.to_dict())
        self._writer.set_custom_data("iil_robot.data.episodes", json.dumps(self._summaries))
        self.stats.episodes += 1
        if self.on_episode is not None:
            self.on_episode(summary)

    def _maintain(self) -> None:
        assert self._writer is not None
        self._writer.tick()
        if self.clock() - self._bag_started >= self.config.max_bag_duration:
            self._writer.close()
            self._open_bag()

    def _finish(self) -> None:
        assert self._writer is not None
        for episode in self._splitter.flush():
            self._summarise(EpisodeSummary.of(episode, self.config.operator, self.config.task), self._last_t_ns)
        self._writer.close()

    def _open_bag(self) -> None:
        part = len(self.stats.bags)
        path = Path(self.config.output_dir) / f"{self.config.prefix}_{self._session}_{part:03d}"
        n = 1
        while path.exists():
            path = path.with_name(f"{self.config.prefix}_{self._session}_{part:03d}-{n}")
            n += 1
        writer = SplitBagWriter(path, split_period=self.config.split_period, flush_period=self.config.flush_period,
                                compression=self.config.compression, clock=self.clock)
        writer.open()
        for spec in self.topics:
            writer.add_topic(spec)
        self._summary_id = writer.add_topic(TopicSpec(SUMMARY_TOPIC, STRING, "latched"))
        recording = {"session": self._session, "part": part, "operator": self.config.operator,
                     "task": self.config.task, "config": asdict(self.config)}
        writer.set_custom_data("iil_robot.recording", json.dumps(recording))
        self._summaries = []
        self._writer = writer
        self._bag_started = self.clock()
        self.stats.bags.append(str(path))

    def _fail(self, message: str) -> None:
        self.stats.error = message
        # Whatever is still queued cannot be written: count it as dropped.
        while True:
            try:
                self._queue.get_nowait()
                self.stats.dropped += 1
            except queue.Empty:
                break
        if self.on_error is not None:
            self.on_error(message)
