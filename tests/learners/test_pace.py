import pytest

from iil_robot.learners.pace import Pace


def test_the_ratio_is_updates_per_env_step_over_the_window():
    pace = Pace(budget=0.5, span=10.0, min_steps=20)
    for t in range(0, 31):  # 20 env steps/s, 6 updates/s
        pace.add(float(t), env_steps=20 * t, updates=6 * t, training=True)
    assert pace.ratio() == pytest.approx(0.3)
    assert pace.behind()


def test_the_window_forgets_what_is_older_than_its_span():
    pace = Pace(budget=0.5, span=10.0)
    for t in range(0, 11):  # slow at first: 2 updates/s
        pace.add(float(t), 20 * t, 2 * t, True)
    for t in range(11, 31):  # then 15 updates/s
        pace.add(float(t), 20 * t, 20 + 15 * (t - 10), True)
    assert pace.ratio() == pytest.approx(0.75)
    assert not pace.behind()


def test_no_ratio_while_not_training_or_while_the_arm_barely_moves():
    pace = Pace(budget=0.5, min_steps=20)
    pace.add(0.0, 0, 0, True)
    pace.add(1.0, 10, 0, True)
    assert pace.ratio() is None and not pace.behind()  # 10 env steps: too few to judge
    pace.add(2.0, 400, 0, False)  # waiting for data / warm start: the window starts afresh
    pace.add(3.0, 420, 5, True)
    assert pace.ratio() is None
    pace.add(4.0, 440, 25, True)
    assert pace.ratio() == 1.0
