"""The pluggable image success classifier: loading it by name, judging images, and what goes wrong."""
from __future__ import annotations

import numpy as np
import pytest

from iil_robot.acting.success import ClassifierError, ImageSuccess, load_classifier

WHITE = np.full((8, 8, 3), 255, np.uint8)
BLACK = np.zeros((8, 8, 3), np.uint8)


def test_a_function_and_a_class_load_by_module_and_name():
    assert load_classifier("tests.acting.classifiers:bright")(WHITE) == 1.0
    assert callable(load_classifier("tests.acting.classifiers:Broken"))


@pytest.mark.parametrize("spec, match", [
    ("tests.acting.classifiers", "must be 'module:attribute'"),
    ("no_such_module_here:model", "cannot import 'no_such_module_here'"),
    ("tests.acting.classifiers:missing", "has no 'missing'"),
    ("tests.acting.classifiers:NOT_CALLABLE", "is a int, not a callable"),
])
def test_a_classifier_that_cannot_be_loaded_is_named_with_the_reason(spec, match):
    with pytest.raises(ClassifierError, match=match):
        load_classifier(spec)


def test_success_needs_the_frames_in_a_row_and_the_rate_skips_images_between():
    judge = ImageSuccess(load_classifier("tests.acting.classifiers:bright"), threshold=0.9, frames=2, rate=10.0)
    assert judge.judge(WHITE, 0.0) is False  # one in a row
    assert judge.judge(WHITE, 0.05) is None  # inside the 0.1 s period: skipped
    assert judge.judge(BLACK, 0.1) is False  # the streak breaks
    assert [judge.judge(WHITE, t) for t in (0.25, 0.4)] == [False, True]
    judge.restart()
    assert judge.judge(WHITE, 0.55) is False


@pytest.mark.parametrize("classifier, match", [
    (lambda rgb: float("nan"), "returned nan, not a probability"),
    (lambda rgb: 7.0, "returned 7.0"),
    (load_classifier("tests.acting.classifiers:Broken"), "raised RuntimeError: CUDA out of memory"),
])
def test_a_classifier_that_answers_nonsense_or_raises_is_reported_and_breaks_the_streak(classifier, match):
    judge = ImageSuccess(classifier, frames=1)
    with pytest.raises(ClassifierError, match=match):
        judge.judge(WHITE, 0.0)
