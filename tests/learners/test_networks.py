import torch

from iil_robot.learners.networks import EnsembleCritic, Policy, PolicyShape, doubt


def test_batched_ensemble_equals_each_member_computed_alone():
    torch.manual_seed(0)
    critic = EnsembleCritic(3, 2, (8, 8), members=4, layer_norm=True)
    obs, act = torch.randn(5, 3), torch.randn(5, 2)
    qs = critic(obs, act)
    assert qs.shape == (4, 5)
    for m in range(4):
        x = torch.cat([obs, act], -1)
        for lin, norm in zip(critic.net.linears, critic.net.norms):
            x = torch.relu(torch.nn.functional.layer_norm(x @ lin.weight[m] + lin.bias[m], (8,)) * norm.weight[m] + norm.bias[m])
        expected = (x @ critic.net.out.weight[m] + critic.net.out.bias[m]).squeeze(-1)
        torch.testing.assert_close(qs[m], expected)


def test_a_subset_of_members_computes_only_those():
    critic = EnsembleCritic(3, 2, (8,), members=5, layer_norm=True)
    obs, act = torch.randn(4, 3), torch.randn(4, 2)
    subset = torch.tensor([3, 1])
    torch.testing.assert_close(critic(obs, act, subset), critic(obs, act)[subset])


def test_policy_maps_unit_actions_to_the_action_box_and_reports_doubt_for_ensembles():
    policy = Policy(PolicyShape("hgdagger", 2, 4, (8,), ensemble=3))
    policy.action_low.copy_(torch.tensor([-0.25, -0.25, -0.25, 0.0]))
    policy.action_high.copy_(torch.tensor([0.25, 0.25, 0.25, 1.0]))
    action, uncertainty = policy(torch.randn(6, 2))
    assert action.shape == (6, 4) and uncertainty.shape == (6,)
    assert (action[:, :3].abs() <= 0.25).all() and ((action[:, 3] >= 0) & (action[:, 3] <= 1)).all()
    assert doubt(torch.zeros(3, 6, 4)).abs().max() == 0


def test_batched_ensemble_gradients_equal_each_member_computed_alone():
    torch.manual_seed(0)
    critic = EnsembleCritic(3, 2, (8, 8), members=3, layer_norm=True)
    obs, act = torch.randn(5, 3), torch.randn(5, 2)
    critic(obs, act).pow(2).sum().backward()
    for m in range(3):
        params = [p.detach()[m].clone().requires_grad_(True) for p in critic.parameters()]
        (w1, b1, w2, b2), (g1, c1, g2, c2), (wo, bo) = params[0:4], params[4:8], params[8:10]
        x = torch.cat([obs, act], -1)
        for w, b, g, c in ((w1, b1, g1, c1), (w2, b2, g2, c2)):
            x = torch.relu(torch.nn.functional.layer_norm(x @ w + b, (8,)) * g + c)
        (x @ wo + bo).pow(2).sum().backward()
        for p, alone in zip(critic.parameters(), params):
            torch.testing.assert_close(p.grad[m], alone.grad)


def test_a_frozen_ensemble_passes_the_gradient_to_its_input_actions():
    """The actor update: critics frozen, the gradient flows only to the actions (no parameter gradients)."""
    torch.manual_seed(0)
    critic = EnsembleCritic(3, 2, (8, 8), members=3, layer_norm=True).requires_grad_(False)
    obs, act = torch.randn(5, 3), torch.randn(5, 2, requires_grad=True)
    critic(obs, act).mean(0).sum().backward()
    assert all(p.grad is None for p in critic.parameters())
    alone = act.detach().clone().requires_grad_(True)
    total = 0
    for m in range(3):
        x = torch.cat([obs, alone], -1)
        for lin, norm in zip(critic.net.linears, critic.net.norms):
            x = torch.relu(torch.nn.functional.layer_norm(x @ lin.weight[m] + lin.bias[m], (8,)) * norm.weight[m] + norm.bias[m])
        total = total + (x @ critic.net.out.weight[m] + critic.net.out.bias[m]).sum() / 3
    total.backward()
    torch.testing.assert_close(act.grad, alone.grad)


def test_keep_freed_memory_applies_on_glibc():
    import platform

    from iil_robot.learners.memory import keep_freed_memory

    assert keep_freed_memory() == (platform.libc_ver()[0] == "glibc")


def test_the_normalisation_fitted_on_data_standardises_it_with_a_floor_on_the_std():
    policy = Policy(PolicyShape("rlpd", 3, 4, (8,)))
    obs = torch.stack([torch.full((100,), 1.3), torch.linspace(0.6, 0.8, 100), torch.full((100,), 0.05)], dim=1)
    policy.fit_normalization(obs, min_std=0.01)
    normalized = policy.normalize(obs)
    torch.testing.assert_close(normalized.mean(0), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(normalized[:, 1].std(unbiased=False), torch.tensor(1.0), atol=1e-4, rtol=0)
    assert policy.obs_std[0] == policy.obs_std[2] == 0.01  # constant features: the floor, not a division by zero
    assert torch.isfinite(policy.normalize(obs + 0.1)).all()
