"""Weights on their way to the acting policy: screened on arrival, checked on a worker thread, newest good one wins."""
from __future__ import annotations

import time

from iil_robot.acting.inbox import WeightsInbox
from iil_robot.acting.policy import PolicyConfig, PolicyRunner
from iil_robot.data.records import Observation
from iil_robot.learners.weights import WeightsError
from iil_robot.nodes.peers.hostile import encode_weights, hostile_weights

SPEC, OBS_DIM = "toy/v1", 6


def wait_idle(inbox: WeightsInbox, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not inbox.idle():
        assert time.monotonic() < end, "the inbox never finished its checks"
        time.sleep(0.01)


def make_inbox():
    runner = PolicyRunner(PolicyConfig(observation_spec=SPEC))
    runner.act(Observation((0.0,) * OBS_DIM, SPEC, 1.0), now=1.0)  # the arm's observations: their size is known
    refused: list[str] = []
    return runner, WeightsInbox(runner, lambda err: refused.append(str(err))), refused


def test_a_stream_of_hostile_weights_does_not_push_out_a_real_message():
    runner, inbox, refused = make_inbox()
    try:
        inbox.offer(encode_weights(3, OBS_DIM, SPEC, hidden=(16, 16)))
        while inbox.waiting():  # the real message is being checked when the stream begins
            time.sleep(0.001)
        screened_out = 0
        for _ in range(3):  # each kind three times, all claiming a version far above the real one
            for _name, data in hostile_weights(OBS_DIM, SPEC):
                try:
                    inbox.offer(data)
                except WeightsError:
                    screened_out += 1
        wait_idle(inbox)
        ready = inbox.take()
        assert ready is not None and ready.version == 3
        assert screened_out >= 3 * 9  # most are dropped on arrival, without touching a tensor
        assert len(refused) >= 1  # the rest were refused by the full check, on the worker thread
    finally:
        inbox.close()


def test_the_newest_good_message_wins_and_is_taken_once():
    runner, inbox, _ = make_inbox()
    try:
        for version in (2, 5, 4):
            inbox.offer(encode_weights(version, OBS_DIM, SPEC, hidden=(16, 16)))
        wait_idle(inbox)
        ready = inbox.take()
        assert ready.version == 5 and inbox.take() is None
        runner.install(ready)
        inbox.offer(encode_weights(6, OBS_DIM, SPEC, hidden=(16, 16)))
        wait_idle(inbox)
        assert inbox.take().version == 6
    finally:
        inbox.close()


def test_a_message_no_newer_than_the_active_policy_is_refused_on_arrival():
    runner, inbox, _ = make_inbox()
    try:
        inbox.offer(encode_weights(4, OBS_DIM, SPEC, hidden=(16, 16)))
        wait_idle(inbox)
        runner.install(inbox.take())
        try:
            inbox.offer(encode_weights(4, OBS_DIM, SPEC, hidden=(16, 16)))
        except WeightsError as err:
            assert "not newer than the active version 4" in str(err)
        else:
            raise AssertionError("an old version passed the screen")
    finally:
        inbox.close()
