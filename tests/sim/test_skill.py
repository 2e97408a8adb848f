import numpy as np
import pytest

from iil_robot.sim.skill import OperatorSkill, degrade_action, severity_for_level, skill_for_level

TASKS = ["reach", "push", "pick_and_place"]


@pytest.mark.parametrize("task", TASKS)
def test_level_one_is_the_scripted_optimum(task):
    assert skill_for_level(task, 1.0) == OperatorSkill()


@pytest.mark.parametrize("task", TASKS)
def test_lower_levels_are_more_severe_on_every_knob(task):
    levels = [1.0, 0.9, 0.7, 0.6, 0.3, 0.0]
    severities = [severity_for_level(task, level) for level in levels]
    assert severities == sorted(severities) and severities[0] == 0.0 and severities[-1] == 1.0
    skills = [skill_for_level(task, level) for level in levels]
    for worse, better in zip(skills[1:], skills[:-1]):
        assert worse.aim_error_std > better.aim_error_std
        assert worse.noise_std > better.noise_std
        assert worse.gain < better.gain
        assert worse.reaction_delay >= better.reaction_delay
        assert worse.wrong_move_prob > better.wrong_move_prob


@pytest.mark.parametrize(
    "task, level, severity",
    [
        ("reach", 1.0, 0.0),
        ("reach", 0.52, 0.14),  # a measured point of the curve
        ("push", 0.4774, 0.16),
        ("pick_and_place", 0.51, 0.3),
        ("pick_and_place", 0.0, 1.0),
        ("push", 0.05, 1.0),  # below the floor of chance successes
    ],
)
def test_severity_for_level_table(task, level, severity):
    assert severity_for_level(task, level) == pytest.approx(severity)


@pytest.mark.parametrize("level", [-0.1, 1.1])
def test_level_outside_unit_interval_is_rejected(level):
    with pytest.raises(ValueError, match="level"):
        skill_for_level("reach", level)


@pytest.mark.parametrize(
    "skill, expected",
    [
        (OperatorSkill(), [0.2, -0.1, 0.0, 1.0]),
        (OperatorSkill(gain=0.5), [0.1, -0.05, 0.0, 1.0]),
        (OperatorSkill(wrong_move_prob=1.0), [-0.2, 0.1, -0.0, 0.0]),
    ],
)
def test_degrade_action_table(skill, expected):
    action, _ = degrade_action(np.array([0.2, -0.1, 0.0, 1.0]), skill, np.random.default_rng(0))
    np.testing.assert_allclose(action, expected)


def test_noise_has_the_configured_spread():
    rng = np.random.default_rng(0)
    samples = np.array([degrade_action(np.zeros(4), OperatorSkill(noise_std=0.05), rng)[0][:3] for _ in range(4000)])
    assert samples.std() == pytest.approx(0.05, rel=0.05)
