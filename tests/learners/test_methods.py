"""The registry of methods and algorithms is the one place that lists them."""
import ast
from dataclasses import fields
from pathlib import Path

import pytest

import iil_robot
from iil_robot.data.labels import LabelConfig
from iil_robot.learners.configs import LearnerConfigs, configure
from iil_robot.learners.hgdagger import HGDAggerConfig
from iil_robot.learners.methods import ALGORITHMS, METHODS, algorithm, method

PACKAGE = Path(iil_robot.__file__).parent
REGISTRY = {"learners/methods.py"}


def test_every_algorithm_loads_its_learner_and_config_and_has_a_config_in_the_bundle():
    assert [f.name for f in fields(LearnerConfigs)] == list(ALGORITHMS)
    for a in ALGORITHMS.values():
        assert a.learner_class().ALGORITHM == a.name
        assert isinstance(LearnerConfigs().of(a.name), a.config_class())


def test_unknown_names_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="method 'rlpd' is unknown; choose one of .*'rlif'"):
        method("rlpd")
    with pytest.raises(ValueError, match="algorithm 'sac' is unknown"):
        algorithm("sac")


def test_seeded_reaches_every_learner():
    assert {c.seed for c in LearnerConfigs().seeded(7).as_dict().values()} == {7}


@pytest.mark.parametrize("name", list(METHODS))
def test_configure_sets_the_methods_labelling_weighting_and_goal_critic(name):
    m = METHODS[name]
    configs, labels = configure(m, LearnerConfigs(), LabelConfig())
    assert (configs.hgdagger.weighting, configs.hgdagger.goal_critic, labels.label_every_step) == (
        m.weighting, m.goal_critic, m.label_every_step)


def test_configure_refuses_a_config_that_contradicts_the_method_and_keeps_an_asked_for_goal_critic():
    with pytest.raises(ValueError, match="hgdagger.weighting 'sirius' does not fit method 'iwr'"):
        configure(METHODS["iwr"], LearnerConfigs(hgdagger=HGDAggerConfig(weighting="sirius")), LabelConfig())
    configs, _ = configure(METHODS["hgdagger"], LearnerConfigs(hgdagger=HGDAggerConfig(goal_critic=True)), LabelConfig())
    assert configs.hgdagger.goal_critic


def _names_listed(node: ast.AST) -> set[str]:
    """Method or algorithm names that a tuple, list, set or dict literal spells out."""
    if isinstance(node, ast.Dict):
        items = node.keys
    elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        items = node.elts
    else:
        return set()
    names = set(METHODS) | set(ALGORITHMS)
    return {i.value for i in items if isinstance(i, ast.Constant) and i.value in names}


def test_no_module_but_the_registry_lists_methods_or_algorithms():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative in REGISTRY:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            listed = _names_listed(node)
            if len(listed) >= 3:
                offenders.append(f"{relative}:{node.lineno} {sorted(listed)}")
    assert offenders == []


def test_the_listing_check_finds_a_list():
    assert _names_listed(ast.parse('("rlif", "hgdagger", "pvp")').body[0].value) == {"rlif", "hgdagger", "pvp"}
