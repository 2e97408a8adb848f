"""The mixture head keeps a bimodal operator's two modes; the L2 head averages them into a crash.

A hand-made 2-D task: a point below a round obstacle must reach a goal above it. The action is the
next waypoint; the point moves straight to it, and a segment through the obstacle is a crash. The
operators send the point past the left or the right of the obstacle, at random (the side does
not depend on the start), then to the goal. Both heads are trained with the supervised learner on
the same demonstrations and budget, then act deterministically from new start states.
"""
import numpy as np
import pytest
import torch

from iil_robot.data.transitions import StepClass, Transitions
from iil_robot.learners.buffers import ActionBox, ReplayBuffer
from iil_robot.learners.hgdagger import HGDAggerConfig, HGDAggerLearner

torch.set_num_threads(1)

GOAL, OBSTACLE_RADIUS, SEGMENTS = np.array([0.0, 1.0]), 0.3, 4
BOX = ActionBox(low=(-1.5, -1.5), high=(1.5, 1.5))


def operator(position: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """Below the obstacle: a waypoint beside it on ``side``; beside or above it: the goal."""
    waypoint = np.array([0.6 * side, 0.0]) if position[1] < -0.5 else GOAL
    return waypoint + rng.normal(0.0, 0.03, 2)


def hits_obstacle(a: np.ndarray, b: np.ndarray) -> bool:
    t = np.clip(np.dot(-a, b - a) / max(np.dot(b - a, b - a), 1e-12), 0.0, 1.0)
    return bool(np.linalg.norm(a + t * (b - a)) < OBSTACLE_RADIUS)


def rollout(act, rng: np.random.Generator) -> tuple[bool, list, list]:
    """One episode from below the obstacle; returns success (goal reached without a segment through
    the obstacle), the states and the waypoints."""
    position = np.array([rng.uniform(-0.1, 0.1), rng.uniform(-1.1, -0.9)])
    states, actions = [], []
    for _ in range(SEGMENTS):
        waypoint = np.asarray(act(position), np.float64)
        states.append(position.copy())
        actions.append(waypoint)
        if hits_obstacle(position, waypoint):
            return False, states, actions
        position = waypoint
        if np.linalg.norm(position - GOAL) < 0.15:
            return True, states, actions
    return False, states, actions


def demonstrations(episodes: int, rng: np.random.Generator) -> Transitions:
    states, actions = [], []
    for _ in range(episodes):
        side = rng.choice([-1, 1])
        success, s, a = rollout(lambda p: operator(p, side, rng), rng)  # noqa: B023 (used here)
        assert success, "the operator itself must succeed"
        states += s
        actions += a
    n = len(states)
    obs = np.asarray(states, np.float32)
    return Transitions(obs, np.asarray(actions, np.float32), np.zeros(n, np.float32), obs, np.zeros(n, bool),
                       np.ones(n, bool), np.ones(n, bool), np.full(n, StepClass.DEMO, np.int8))


def success_rate(head: str, data: Transitions, updates: int = 1000, trials: int = 20) -> float:
    config = HGDAggerConfig(hidden=(64, 64), ensemble=2, batch_size=128, head=head, mixture_components=4, seed=0)
    learner = HGDAggerLearner(2, 2, config, BOX)
    prior, online = ReplayBuffer(2, 2, len(data)), ReplayBuffer(2, 2, 1)
    prior.add(data, BOX.to_unit(data.actions))
    rng = np.random.default_rng(0)
    for _ in range(updates):
        learner.train_step(prior, online, rng)
    policy = learner.policy.eval()

    def act(position: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return policy(torch.tensor(position, dtype=torch.float32)[None])[0][0].numpy()

    test_rng = np.random.default_rng(1)
    return float(np.mean([rollout(act, test_rng)[0] for _ in range(trials)]))


@pytest.fixture(scope="module")
def bimodal_demos() -> Transitions:
    return demonstrations(200, np.random.default_rng(0))


def test_the_operators_go_both_ways_from_the_same_starts(bimodal_demos):
    first = bimodal_demos.observations[:, 1] < -0.5
    sides = np.sign(bimodal_demos.actions[first, 0])
    assert 0.4 < (sides > 0).mean() < 0.6


def test_l2_head_averages_the_two_ways_round_into_the_obstacle(bimodal_demos):
    assert success_rate("l2", bimodal_demos) <= 0.1


def test_mixture_head_goes_round_one_side(bimodal_demos):
    assert success_rate("mixture", bimodal_demos) >= 0.9
