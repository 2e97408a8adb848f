"""Operator-frame calibration: from one push and the operator's answers to operator_yaw."""
import itertools
import math

import pytest

from iil_robot.command.calibration import CalibrationConfig, CalibrationError, calibrate, operator_yaw
from iil_robot.command.gate import Gate, GateConfig


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def run_calibration(push_deg: float, gate_yaw: float, away_deg: float, answers: list[str], config=CalibrationConfig()):
    """The operator pushes at ``push_deg`` in the device's axes through a gate at ``gate_yaw``; away from them is
    ``away_deg`` in the command frame; the arm moves where the gate sends it. Returns the yaw and what was asked."""
    clock = FakeClock()
    push = (math.cos(math.radians(push_deg)), math.sin(math.radians(push_deg)), 0.0, 0.0, 0.0, 0.0)
    velocity = Gate(GateConfig(operator_yaw=gate_yaw)).update(push, (0, 0), 0.0).twist
    questions: list[str] = []
    replies = iter([""] + answers)

    def ask(question: str) -> str:
        questions.append(question)
        return next(replies)

    def arm():
        return (0.5 + velocity[0] * clock.now, velocity[1] * clock.now, 0.3)

    yaw = calibrate(lambda: push, arm, ask, lambda text: None, config, clock=clock, sleep=clock.sleep)
    # what the operator will see with the calibrated yaw: the same push now moves the arm away from them
    moved = Gate(GateConfig(operator_yaw=yaw)).update(push, (0, 0), 0.0).twist
    assert abs(math.remainder(math.degrees(math.atan2(moved[1], moved[0])) - away_deg, 360.0)) < 1.0
    return yaw, questions


def where_it_went(arm_deg: float, away_deg: float) -> list[str]:
    """The operator's honest answers for an arm that went ``arm_deg`` when away is ``away_deg``."""
    relative = math.remainder(arm_deg - away_deg, 360.0)
    answer = {0: "y", 90: "l", 180: "t", -180: "t", -90: "r"}[round(relative)]
    return [answer] if answer == "y" else ["n", answer]


@pytest.mark.parametrize("push_deg, gate_yaw, away_deg", list(itertools.product((0.0, -90.0), (0.0, 90.0, 180.0),
                                                                                  (0.0, 90.0, 180.0, -90.0))))
def test_calibration_finds_the_yaw_that_moves_the_arm_away_from_the_operator(push_deg, gate_yaw, away_deg):
    answers = where_it_went(gate_yaw + push_deg, away_deg)
    yaw, questions = run_calibration(push_deg, gate_yaw, away_deg, answers)
    assert abs(math.remainder(yaw - (away_deg - push_deg), 360.0)) < 1e-9 and -180.0 < yaw <= 180.0
    assert "Did the arm move away from you?" in questions[1]
    assert len(questions) == 2 + (answers[0] == "n")


def test_an_unclear_answer_is_asked_again():
    yaw, questions = run_calibration(0.0, 0.0, 180.0, ["maybe", "n", "t"])
    assert abs(yaw) == 180.0 and questions[1] == questions[2]


@pytest.mark.parametrize("yaw_in, expected", [((0.0, 90.0, 0.0), 90.0), ((0.0, 0.0, 180.0), 180.0), ((90.0, 0.0, 0.0), -90.0),
                                              ((0.0, 270.0, 0.0), -90.0)])
def test_operator_yaw_formula(yaw_in, expected):
    assert operator_yaw(*yaw_in) == expected


def test_no_push_says_so():
    clock = FakeClock()
    with pytest.raises(CalibrationError, match="no push"):
        calibrate(lambda: (0.1, 0.0, 0, 0, 0, 0), lambda: (0.0, 0.0, 0.0), lambda q: "", lambda t: None,
                  CalibrationConfig(seconds=0.1), clock=clock, sleep=clock.sleep)


def test_no_pose_and_no_motion_say_what_to_check():
    clock = FakeClock()
    with pytest.raises(CalibrationError, match="no end-effector pose"):
        calibrate(lambda: (1.0, 0.0, 0, 0, 0, 0), lambda: None, lambda q: "", lambda t: None,
                  CalibrationConfig(seconds=0.1), clock=clock, sleep=clock.sleep)
    with pytest.raises(CalibrationError, match="the arm moved 0 mm"):
        calibrate(lambda: (1.0, 0.0, 0, 0, 0, 0), lambda: (0.5, 0.0, 0.3), lambda q: "", lambda t: None,
                  CalibrationConfig(seconds=0.1), clock=clock, sleep=clock.sleep)
