"""The policy node's help requests (``iil_robot.policy.HelpRequester``): a table of ticks -> request."""
import dataclasses

import pytest

from iil_robot.policy import HelpConfig, HelpRequester
from iil_robot.records import Proposal
from tests.records_factory import step


def proposal(uncertainty):
    return Proposal((0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0), (0.0,), 1, 0.0, 0.0, uncertainty)


def operator_step(policy_vx, human_vx):
    """A mux tick driven by the operator, with the policy's proposal beside the operator's command."""
    record = step(1, "human", human=(human_vx, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0))
    return dataclasses.replace(record, policy_action=(policy_vx, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0))


# (uncertainty of the proposal, operator's step before the tick as (policy vx, operator vx) or None,
#  expected request after the tick, expected change)
FIXED_THRESHOLD = [
    (0.1, None, False, False),         # familiar state: the robot drives
    (0.5, None, True, True),           # doubt above 0.3: ask
    (0.1, None, True, False),          # still asking: only the operator's agreement hands back
    (0.1, (0.1, 0.5), True, False),    # the operator drives and disagrees (0.16 > 0.01)
    (0.1, (0.1, 0.15), False, True),   # agrees (0.0025 <= 0.01): hand back
    (None, None, False, False),        # no uncertainty (not an ensemble): no decision
    (0.9, None, True, True),
]


def test_fixed_threshold_asks_on_doubt_and_hands_back_when_the_operator_agrees():
    requester = HelpRequester(HelpConfig(enabled=True, novelty_threshold=0.3, handback_disagreement=0.01))
    for i, (uncertainty, operator, requesting, changed) in enumerate(FIXED_THRESHOLD):
        if operator is not None:
            requester.on_step(operator_step(*operator))
        decision = requester.on_proposal(proposal(uncertainty))
        assert requester.requesting == requesting, f"row {i}"
        assert (decision is not None and decision.changed) == changed, f"row {i}"
    assert requester.gate.raised == 2


def test_fitted_threshold_waits_for_data_then_asks_on_about_the_target_rate():
    requester = HelpRequester(HelpConfig(enabled=True, target_rate=0.1, min_ticks=100))
    for i in range(99):
        assert requester.on_proposal(proposal(i / 100)) is None  # too few ticks to fit on
    asked = 0
    for i in range(1000):
        decision = requester.on_proposal(proposal((i % 100) / 100))
        if decision.requesting:  # answer at once: the operator agrees, hand back
            asked += 1
            requester.on_step(operator_step(0.1, 0.1))
            requester.on_proposal(proposal(0.0))
    assert 0.05 * 1000 <= asked <= 0.15 * 1000  # fires on ~10 % of the robot's ticks (uniform doubt)
    assert requester.gate.thresholds.novelty == pytest.approx(0.9, abs=0.02)


def test_bad_help_parameters_say_what_is_wrong():
    with pytest.raises(ValueError, match="target_rate"):
        HelpConfig(enabled=True, target_rate=0.0)
    with pytest.raises(ValueError, match="novelty_threshold"):
        HelpConfig(novelty_threshold=-1.0)
