"""A thread's CPU share from the scheduler's statistics (iil_robot.learners.cpu)."""
import threading
import time

import pytest

from iil_robot.learners.cpu import ThreadCpu, read_schedstat


def test_a_window_covers_the_last_span_of_seconds():
    clock, stats = iter([10.0, 12.0, 13.0, 15.5]), iter([(1.0, 0.0), (2.0, 0.5), (2.1, 1.4), (2.6, 2.4)])
    cpu = ThreadCpu(7, span=2.0, clock=lambda: next(clock), read=lambda tid: next(stats))
    first = cpu.window()  # since it was made
    assert (first.seconds, first.running, first.waiting) == (2.0, 0.5, 0.25)
    second = cpu.window()  # still from 10.0: the sample at 12.0 is not yet 2 s old
    assert second.seconds == 3.0 and second.running == pytest.approx(1.1 / 3) and second.waiting == pytest.approx(1.4 / 3)
    third = cpu.window()  # from 13.0, the newest sample at least 2 s old
    assert third.seconds == 2.5 and third.running == pytest.approx(0.2) and third.waiting == pytest.approx(0.4)


def test_no_share_where_the_statistics_cannot_be_read():
    reads = iter([None, (1.0, 0.0), (2.0, 0.0)])
    clock = iter([1.0, 2.0])
    cpu = ThreadCpu(7, clock=lambda: next(clock), read=lambda tid: next(reads))
    assert cpu.window() is None  # nothing to subtract from yet
    assert cpu.window().running == 1.0
    assert read_schedstat(2**31 - 1) is None  # no such thread


@pytest.mark.skipif(read_schedstat(threading.get_native_id()) is None, reason="a kernel without scheduler statistics")
def test_a_busy_thread_shows_running_time_and_a_sleeping_one_none():
    tids, done = {}, threading.Event()

    def busy():
        tids["busy"] = threading.get_native_id()
        end = time.thread_time() + 0.3
        while time.thread_time() < end:
            pass
        done.wait()

    def sleeper():
        tids["sleeper"] = threading.get_native_id()
        done.wait()

    threads = [threading.Thread(target=f) for f in (busy, sleeper)]
    for thread in threads:
        thread.start()
    while len(tids) < 2:
        time.sleep(0.001)
    busy_cpu, sleeper_cpu = ThreadCpu(tids["busy"]), ThreadCpu(tids["sleeper"])
    time.sleep(0.5)
    busy_share, sleeper_share = busy_cpu.window(), sleeper_cpu.window()
    done.set()
    for thread in threads:
        thread.join()
    assert busy_share.running > 0.1 and sleeper_share.running < 0.05
