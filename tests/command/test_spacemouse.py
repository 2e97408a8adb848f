"""Tests of iil_robot.command.spacemouse: report parsing through pyspacemouse, the reader thread,
and the diagnosis of open failures. No hidapi and no device needed."""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import pyspacemouse
import pytest
from easyhid import HIDException
from pyspacemouse import AxisConvention, SpaceMouseDevice, apply_axis_convention, get_device_specs

from iil_robot.command.hidraw import diagnose_open_error
from iil_robot.command.spacemouse import DeviceSample, ReaderConfig, SpaceMouseReader
from tests.fakes import FakeHidrawTree, wait_until

REPORTS_FILE = Path(__file__).parent / "spacemouse_reports.txt"
AXES = ("x", "y", "z", "roll", "pitch", "yaw")


def load_reports() -> dict[str, bytes]:
    reports = {}
    for line in REPORTS_FILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, hex_bytes = line.split(":", 1)
            reports[name.strip()] = bytes.fromhex(hex_bytes)
    return reports


REPORTS = load_reports()


class FakeHid:
    """Stands in for easyhid.HIDDevice: what SpaceMouseDevice calls, reading queued reports.

    ``read`` behaves like easyhid's non-blocking read: an empty bytearray when nothing is
    queued, else the report zero-padded to ``size``; an Exception in the queue is raised.
    """

    product_string = "SpaceMouse Compact"
    manufacturer_string = "3Dconnexion"
    release_number = 0x0437
    serial_number = "fake"

    def __init__(self, reports: list[bytes | Exception] = ()) -> None:
        self.queue: deque[bytes | Exception] = deque(reports)
        self.lock = threading.Lock()
        self.is_open = False
        self.closed = 0
        self.nonblocking: bool | None = None

    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        self.is_open = False
        self.closed += 1

    def set_nonblocking(self, enable: bool) -> None:
        self.nonblocking = enable

    def push(self, *items: bytes | Exception) -> None:
        with self.lock:
            self.queue.extend(items)

    def read(self, size: int = 64) -> bytearray:
        with self.lock:
            if not self.queue:
                return bytearray()
            item = self.queue.popleft()
        if isinstance(item, Exception):
            raise item
        return bytearray(item[:size].ljust(size, b"\0"))


def open_fake(model: str, hid: FakeHid) -> SpaceMouseDevice:
    """Open a FakeHid the way pyspacemouse.open() opens a real one, axes in REP-103."""
    spec = apply_axis_convention(get_device_specs()[model], AxisConvention.ROS)
    device = SpaceMouseDevice(info=spec, device=hid)
    device.open()
    hid.set_nonblocking(True)
    return device


def state_after(model: str, *names: str) -> pyspacemouse.SpaceMouseState:
    device = open_fake(model, FakeHid([REPORTS[n] for n in names]))
    for _ in names:
        state = device.read()
    return state


# --------------------------------------------------------------------------------------
# Reports through pyspacemouse's own parsing, in REP-103
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["SpaceNavigator", "SpaceMouseCompact"])
@pytest.mark.parametrize(
    ("report", "axis", "value"),
    [
        ("push_forward", "x", 1.0),
        ("push_left", "y", 1.0),
        ("lift_up", "z", 1.0),
        ("tilt_right", "roll", 0.5),
        ("tilt_forward", "pitch", 0.5),
        ("twist_ccw", "yaw", 0.5),
    ],
)
def test_report_moves_one_axis_in_rep103(model, report, axis, value):
    state = state_after(model, report)
    assert {a: getattr(state, a) for a in AXES} == {a: (value if a == axis else 0.0) for a in AXES}


@pytest.mark.parametrize("model", ["SpaceNavigator", "SpaceMouseCompact"])
@pytest.mark.parametrize(
    ("reports", "buttons"),
    [
        (["press_left"], [1, 0]),
        (["press_both"], [1, 1]),
        (["press_both", "release_buttons"], [0, 0]),
    ],
)
def test_button_reports_set_buttons_in_device_order(model, reports, buttons):
    assert list(state_after(model, *reports).buttons) == buttons


def test_translation_and_rotation_reports_combine():
    state = state_after("SpaceNavigator", "push_forward", "twist_ccw", "release_translation")
    assert (state.x, state.yaw) == (0.0, 0.5)


def test_empty_read_leaves_state_and_stamp_unchanged():
    device = open_fake("SpaceNavigator", FakeHid([REPORTS["push_forward"]]))
    t = device.read().t
    assert device.read().t == t
    assert device.read().x == 1.0


# --------------------------------------------------------------------------------------
# The reader thread
# --------------------------------------------------------------------------------------
@dataclass
class Opener:
    """open_device fake: hands out scripted devices or raises scripted errors, in order;
    blocks (raising ``waiting``) on an item of None until ``release`` is set."""

    script: list[object]
    waiting: Exception = field(default_factory=lambda: RuntimeError("No connected or supported devices found."))
    release: threading.Event = field(default_factory=threading.Event)
    calls: int = 0

    def __call__(self):
        self.calls += 1
        item = self.script[0] if len(self.script) == 1 else self.script.pop(0)
        if item is None:
            if not self.release.is_set():
                raise self.waiting
            self.script.pop(0)
            return self()
        if isinstance(item, Exception):
            raise item
        return item


@pytest.fixture
def run_reader():
    readers: list[SpaceMouseReader] = []

    def make(opener, logs: list[str] | None = None, **config) -> SpaceMouseReader:
        config = {"poll_period": 0.001, "reconnect_period": 0.005} | config
        reader = SpaceMouseReader(
            ReaderConfig(**config),
            open_device=opener,
            log=(logs.append if logs is not None else lambda line: None),
            diagnose=lambda err: f"diagnosed {err}",
        )
        readers.append(reader)
        reader.start()
        return reader

    yield make
    for reader in readers:
        reader.stop()


def test_latest_before_start_is_zero_and_disconnected():
    sample = SpaceMouseReader(ReaderConfig(), open_device=lambda: None, clock=lambda: 7.0).latest()
    assert sample == DeviceSample((0.0,) * 6, (), 7.0, False, "SpaceMouse reader not started: call start()")


def test_reader_publishes_rep103_sample_from_reports(run_reader):
    hid = FakeHid([REPORTS["push_left"], REPORTS["press_left"]])
    reader = run_reader(Opener([open_fake("SpaceMouseCompact", hid)]))
    wait_until(lambda: reader.latest().buttons == (1, 0), what="the button report")
    sample = reader.latest()
    assert (sample.axes, sample.connected, sample.error) == ((0.0, 1.0, 0.0, 0.0, 0.0, 0.0), True, None)


def test_reader_drains_the_queue_before_publishing():
    hid = FakeHid([REPORTS["push_forward"]] * 200 + [REPORTS["release_translation"]])
    device = open_fake("SpaceNavigator", hid)
    seen: list[DeviceSample] = []  # what other threads could see before each read

    class Spy:
        name = device.name

        def read(self):
            seen.append(reader.latest())
            return device.read()

        def close(self):
            device.close()

    # A long poll period: a reader that took one report per period would need 200 s.
    reader = SpaceMouseReader(ReaderConfig(poll_period=1.0), open_device=Spy, log=lambda line: None)
    reader.start()
    try:
        wait_until(lambda: reader.latest().connected, what="the first sample")
        assert reader.latest().axes == (0.0,) * 6
        assert len(seen) >= 202  # 201 reports, then the read that found the queue empty
        assert not any(s.connected for s in seen[:202])  # nothing published mid-queue
    finally:
        reader.stop()


def test_reader_reports_a_device_at_rest_as_connected(run_reader):
    reader = run_reader(Opener([open_fake("SpaceMouseCompact", FakeHid())]))
    wait_until(lambda: reader.latest().connected, what="the connected sample")
    assert reader.latest().buttons == (0, 0)


def test_reader_clamps_axes_beyond_full_scale(run_reader):
    reader = run_reader(Opener([open_fake("SpaceNavigator", FakeHid([REPORTS["push_forward_hard"]]))]))
    wait_until(lambda: reader.latest().connected, what="the first sample")
    assert reader.latest().axes[0] == 1.0


def test_read_error_publishes_zero_disconnected_sample_at_once(run_reader):
    hid = FakeHid([REPORTS["push_forward"], REPORTS["press_both"]])
    opener = Opener([open_fake("SpaceNavigator", hid), None])
    logs: list[str] = []
    reader = run_reader(opener, logs)
    wait_until(lambda: reader.latest().buttons == (1, 1), what="the pressed buttons")
    assert reader.latest().axes[0] == 1.0

    hid.push(HIDException("Failed to read from HID device: -1"))
    wait_until(lambda: not reader.latest().connected, what="the disconnect")
    sample = reader.latest()
    assert (sample.axes, sample.buttons) == ((0.0,) * 6, (0, 0))
    assert sample.error is not None
    assert any(
        "SpaceMouse disconnected: HIDException: Failed to read from HID device: -1; reconnecting" in line
        for line in logs
    )
    wait_until(lambda: hid.closed == 1, what="the device to be closed")


def test_reader_reconnects_when_open_succeeds_again(run_reader):
    first, second = FakeHid([REPORTS["push_forward"]]), FakeHid()
    opener = Opener([open_fake("SpaceNavigator", first), None, open_fake("SpaceMouseCompact", second)])
    logs: list[str] = []
    reader = run_reader(opener, logs)
    wait_until(lambda: reader.latest().connected, what="the first connection")
    first.push(HIDException("Failed to read from HID device: -1"))
    wait_until(lambda: reader.latest().error == "diagnosed No connected or supported devices found.",
               what="the diagnosed open error")

    opener.release.set()
    second.push(REPORTS["twist_ccw"])
    wait_until(lambda: reader.latest().axes == (0.0, 0.0, 0.0, 0.0, 0.0, 0.5), what="the reconnection")
    assert reader.latest().connected
    assert [line for line in logs if line.startswith("SpaceMouse connected")] == [
        "SpaceMouse connected: SpaceNavigator",
        "SpaceMouse connected: SpaceMouseCompact",
    ]


def test_open_errors_become_diagnosed_errors_logged_once(hidraw_tree: FakeHidrawTree):
    missing = RuntimeError("HID API is probably not installed. See https://spacemouse.kubaandrysek.cz for details.")
    opener = Opener([missing])
    logs: list[str] = []
    reader = SpaceMouseReader(
        ReaderConfig(reconnect_period=0.001), open_device=opener, log=logs.append,
        diagnose=lambda err: diagnose_open_error(err, hidraw_tree.sys_root, hidraw_tree.dev_root),
    )
    reader.start()
    try:
        wait_until(lambda: opener.calls >= 3, what="three open attempts")
        sample = reader.latest()
    finally:
        reader.stop()
    assert not sample.connected
    assert sample.error == (
        "libhidapi-hidraw0 is not installed: run `sudo apt-get install libhidapi-hidraw0` "
        "(or `sudo udev/install.sh`)"
    )
    assert logs == [f"SpaceMouse unavailable: {sample.error} (retrying every 0.001 s)"]


def test_stop_joins_the_thread_and_closes_the_device(run_reader):
    hid = FakeHid([REPORTS["push_forward"]])
    reader = run_reader(Opener([open_fake("SpaceNavigator", hid)]))
    wait_until(lambda: reader.latest().connected, what="the first sample")
    reader.stop()
    assert not reader._thread.is_alive()
    assert hid.closed == 1
    sample = reader.latest()
    assert (sample.connected, sample.axes, sample.error) == (False, (0.0,) * 6, "SpaceMouse reader stopped")


def test_start_twice_is_an_error(run_reader):
    reader = run_reader(Opener([RuntimeError("No connected or supported devices found.")]))
    with pytest.raises(RuntimeError, match=r"start\(\) called twice"):
        reader.start()


@pytest.mark.parametrize(
    ("field_name", "value", "message"),
    [
        ("poll_period", 0.0, r"poll_period must be > 0 seconds, got 0\.0"),
        ("reconnect_period", -1.0, r"reconnect_period must be > 0"),
        ("max_reports_per_drain", 0, r"max_reports_per_drain must be >= 1"),
    ],
)
def test_config_rejects_bad_values(field_name, value, message):
    with pytest.raises(ValueError, match=message):
        ReaderConfig(**{field_name: value})
