import pytest

from iil_robot.cli.report import learner_summary

SIZES = "cpu sizes: 5 critics [128, 128], UTD 2, batch 128"


@pytest.mark.parametrize("values, expected", [
    ({"updates": "400", "sizes": SIZES, "updates_per_env_step": "0.81", "budget_per_env_step": "0.5"},
     f"400 updates ({SIZES}), 0.81 updates per env step over its last 30 s (budget 0.5)"),
    ({"updates": "40", "sizes": SIZES, "updates_per_env_step": "0.12", "budget_per_env_step": "0.5"},
     f"40 updates ({SIZES}), 0.12 updates per env step over its last 30 s (budget 0.5: fell behind)"),
    ({"updates": "0", "sizes": SIZES, "updates_per_env_step": "-", "budget_per_env_step": "0.5"}, f"0 updates ({SIZES})"),
    ({"updates": "7"}, "7 updates (sizes not reported)"),
])
def test_the_report_says_what_sizes_the_learner_trained_with_and_whether_it_kept_up(values, expected):
    assert learner_summary(values) == expected
