"""The policy node's help requests (``iil_robot.acting.policy.HelpRequester``): a table of ticks -> request."""
import dataclasses

import numpy as np
import pytest

from iil_robot.acting.policy import HelpConfig, HelpRequester
from iil_robot.data.records import Proposal
from tests.records_factory import step


def proposal(uncertainty, risk=None):
    return Proposal((0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0), (0.0,), 1, 0.0, 0.0, uncertainty, risk)


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


# ThriftyDAgger proper (weights with Q_G): (uncertainty, risk, operator's step before the tick as
# (policy vx, operator vx, risk of the operator's command) or None, expected request, expected change)
WITH_RISK = [
    (0.1, 0.2, None, False, False),               # familiar and likely to succeed: the robot drives
    (0.1, 0.7, None, True, True),                 # risk above 0.5: ask
    (0.1, 0.1, (0.1, 0.15, 0.8), True, False),    # the operator agrees, but their command is risky: keep asking
    (0.1, 0.1, (0.1, 0.15, None), True, False),   # no risk for the operator's command: keep asking
    (0.1, 0.1, (0.1, 0.15, 0.3), False, True),    # agrees and low risk: hand back
    (0.5, 0.1, None, True, True),                 # novelty alone asks too
]


def test_with_a_goal_critic_the_robot_asks_on_novelty_or_risk_and_hands_back_only_when_safe():
    requester = HelpRequester(HelpConfig(enabled=True, novelty_threshold=0.3, risk_threshold=0.5, handback_disagreement=0.01))
    for i, (uncertainty, risk, operator, requesting, changed) in enumerate(WITH_RISK):
        if operator is not None:
            requester.on_step(operator_step(*operator[:2]), human_risk=operator[2])
        decision = requester.on_proposal(proposal(uncertainty, risk))
        assert requester.requesting == requesting, f"row {i}"
        assert (decision is not None and decision.changed) == changed, f"row {i}"
    assert requester.gate.raised == 2 and requester.reason == "novelty"


@pytest.mark.parametrize("config, uncertainty, risk, asks", [
    (HelpConfig(enabled=True, novelty_threshold=0.3, risk_threshold=0.5, use_novelty=False), 0.9, 0.1, False),  # SafeDAgger
    (HelpConfig(enabled=True, novelty_threshold=0.3, risk_threshold=0.5, use_novelty=False), 0.1, 0.9, True),
    (HelpConfig(enabled=True, novelty_threshold=0.3, risk_threshold=0.5, use_risk=False), 0.1, 0.9, False),  # EnsembleDAgger
    (HelpConfig(enabled=True, novelty_threshold=0.3, risk_threshold=0.5), None, 0.9, True),  # risk without an ensemble
])
def test_the_special_cases_ask_on_their_signal_only(config, uncertainty, risk, asks):
    requester = HelpRequester(config)
    requester.on_proposal(proposal(uncertainty, risk))
    assert requester.requesting is asks


def test_the_operator_letting_go_withdraws_the_request():
    requester = HelpRequester(HelpConfig(enabled=True, novelty_threshold=0.3))
    requester.on_proposal(proposal(0.9))
    assert requester.requesting
    assert requester.on_step(operator_step(0.1, 0.9)) is None  # driving, disagreeing: still asked
    release = dataclasses.replace(operator_step(0.1, 0.9), intervention=False, offset=True)
    decision = requester.on_step(release)
    assert decision is not None and decision.changed and not decision.requesting and decision.reason == "operator"
    assert not requester.requesting and requester.on_step(release) is None


def test_fitted_novelty_and_risk_share_the_budget_and_refit_every_n_ticks():
    rng = np.random.default_rng(0)
    requester = HelpRequester(HelpConfig(enabled=True, target_rate=0.1, min_ticks=100, refit_every=50))
    for _ in range(99):
        assert requester.on_proposal(proposal(rng.uniform(), rng.uniform())) is None
    asked, seen = 0, []

    def tick(uncertainty, risk):
        decision = requester.on_proposal(proposal(uncertainty, risk))
        seen.append(requester.gate.thresholds)
        return decision

    for _ in range(3000):
        if tick(rng.uniform(), rng.uniform()).requesting:  # the operator agrees at low risk: hand back at once
            asked += 1
            requester.on_step(operator_step(0.1, 0.1), human_risk=0.0)
            tick(0.0, 0.0)
    refits = sum(a != b for a, b in zip(seen, seen[1:]))
    assert len(seen) // 50 - 2 <= refits <= len(seen) // 50  # once per 50 ticks, not every tick
    t = requester.gate.thresholds
    assert t.novelty == pytest.approx(0.95, abs=0.02) and t.risk == pytest.approx(0.95, abs=0.02)  # alpha/2 each
    assert t.handback_risk == t.risk
    assert 0.06 * 3000 <= asked <= 0.1 * 3000  # about 1 - 0.95^2 of the ticks, within the budget


def test_bad_help_parameters_say_what_is_wrong():
    with pytest.raises(ValueError, match="target_rate"):
        HelpConfig(enabled=True, target_rate=0.0)
    with pytest.raises(ValueError, match="novelty_threshold"):
        HelpConfig(novelty_threshold=-1.0)
    with pytest.raises(ValueError, match="both off"):
        HelpConfig(use_novelty=False, use_risk=False)
    with pytest.raises(ValueError, match="refit_every"):
        HelpConfig(refit_every=0)
