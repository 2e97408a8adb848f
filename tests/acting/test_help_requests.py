import numpy as np
import pytest

from iil_robot.acting.help_requests import HelpGate, HelpRequestConfig, Thresholds, fit_thresholds, novelty

T = Thresholds(novelty=0.1, risk=0.5, handback_disagreement=0.02, handback_risk=0.5)


def test_novelty_is_the_mean_over_action_dimensions_of_the_members_variance():
    members = np.array([[[0.0, 1.0]], [[2.0, 1.0]]])  # 2 members, 1 state, 2 action dims
    np.testing.assert_allclose(novelty(members), [(1.0 + 0.0) / 2])
    with pytest.raises(ValueError, match="2 ensemble members"):
        novelty(np.zeros((1, 3, 2)))


@pytest.mark.parametrize("novelty_value, risk, expected", [
    (0.05, 0.2, (False, False, "")),
    (0.2, 0.2, (True, True, "novelty")),
    (0.05, 0.7, (True, True, "risk")),
    (0.2, 0.7, (True, True, "novelty+risk")),
    (0.1, 0.5, (False, False, "")),  # at the thresholds: no request (strictly above)
])
def test_robot_mode_requests_help_when_novelty_or_risk_is_above_its_threshold(novelty_value, risk, expected):
    decision = HelpGate(T).step(novelty_value, risk)
    assert (decision.requesting, decision.changed, decision.reason) == expected


@pytest.mark.parametrize("disagreement, human_risk, hands_back", [
    (0.01, 0.3, True),
    (0.05, 0.3, False),  # the policy still disagrees with the operator
    (0.01, 0.8, False),  # the state is still risky
    (None, None, False),  # no operator command yet: keep asking
])
def test_help_is_handed_back_only_when_the_policy_agrees_and_the_risk_is_low(disagreement, human_risk, hands_back):
    gate = HelpGate(T)
    assert gate.step(0.2, 0.0).requesting
    decision = gate.step(0.9, 0.9, disagreement, human_risk)  # robot-mode signals do not matter while asking
    assert decision.requesting is not hands_back and decision.changed is hands_back
    assert gate.raised == 1


def test_requests_raised_and_needed_are_counted():
    gate = HelpGate(T)
    for needed in (True, False, True):
        gate.step(0.2, 0.0)
        gate.judge(needed)
        gate.step(0.0, 0.0, 0.0, 0.0)
    assert (gate.raised, gate.needed) == (3, 2)


def test_thresholds_fitted_to_a_target_rate_fire_on_that_share_of_recent_states():
    rng = np.random.default_rng(0)
    novelties, risks = rng.exponential(size=20_000), rng.uniform(size=20_000)
    config = HelpRequestConfig(target_rate=0.1, recent=10_000)
    t = fit_thresholds(novelties, risks, np.array([0.01, 0.03]), config)
    recent_n, recent_r = novelties[-10_000:], risks[-10_000:]
    assert np.mean(recent_n > t.novelty) == pytest.approx(0.05, abs=0.002)
    assert np.mean(recent_r > t.risk) == pytest.approx(0.05, abs=0.002)
    assert np.mean((recent_n > t.novelty) | (recent_r > t.risk)) <= 0.1  # the budget holds for both together
    assert t.handback_disagreement == pytest.approx(0.02) and t.handback_risk == t.risk
    # a single signal (EnsembleDAgger: novelty only) spends the whole budget on it, and never asks on risk
    only = fit_thresholds(novelties, risks, np.array([0.02]), HelpRequestConfig(target_rate=0.1, recent=10_000, use_risk=False))
    assert np.mean(recent_n > only.novelty) == pytest.approx(0.1, abs=0.002) and only.risk == float("inf")


def test_fitting_without_recent_data_says_what_is_missing():
    with pytest.raises(ValueError, match="no recent risks"):
        fit_thresholds(np.ones(5), np.zeros(0), np.ones(2))
    with pytest.raises(ValueError, match="both off"):
        HelpRequestConfig(use_novelty=False, use_risk=False)
