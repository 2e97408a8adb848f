import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from iil_robot.data.labels import label_episodes
from iil_robot.data.transitions import Transitions
from iil_robot.learners import fusion
from iil_robot.learners import rlpd as rlpd_module
from iil_robot.learners.buffers import ActionBox, Batch, ReplayBuffer
from iil_robot.learners.rlpd import RLPDConfig, RLPDLearner, compiler

from .helpers import as_episodes, boundary_task_records

torch.set_num_threads(1)
TINY = dict(hidden=(32, 32), num_qs=4, batch_size=64, utd_ratio=1)


def fixed_batch(n=64, obs_dim=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(n, obs_dim, generator=g), torch.rand(n, 4, generator=g) * 2 - 1,
                 -(torch.rand(n, generator=g) < 0.2).float(), torch.randn(n, obs_dim, generator=g), torch.ones(n))


def test_defaults_follow_the_paper():
    c = RLPDConfig()
    assert (c.actor_lr, c.critic_lr, c.batch_size, c.discount, c.tau, c.num_qs, c.num_min_qs) \
        == (3e-4, 3e-4, 256, 0.99, 0.005, 10, 2)
    assert c.critic_layer_norm and c.init_temperature == 1.0 and c.hidden == (256, 256)
    assert RLPDLearner(3, 4, RLPDConfig(**TINY)).target_entropy == -2.0


def test_critic_target_is_reward_plus_discounted_min_of_the_subset_minus_entropy():
    learner = RLPDLearner(3, 4, RLPDConfig(**TINY, discount=0.9))
    batch = fixed_batch(8)
    subset = torch.tensor([2, 0])
    torch.manual_seed(5)
    _, info = learner.critic_loss(batch, subset)
    torch.manual_seed(5)
    with torch.no_grad():
        a, logp = learner.actor.sample(batch.next_observations)
        q = learner.target_critic(batch.next_observations, a)[subset].min(0).values
        expected = batch.rewards + 0.9 * batch.masks * (q - 1.0 * logp)
    torch.testing.assert_close(info["target_q"], expected.mean())


def test_the_critic_loss_falls_on_a_fixed_dataset():
    learner = RLPDLearner(3, 4, RLPDConfig(**TINY, discount=0.0, critic_lr=3e-3))
    batch = fixed_batch()
    first = float(learner.update(batch)["critic_loss"])
    for _ in range(150):
        last = float(learner.update(batch)["critic_loss"])
    assert last < 0.3 * first


def test_the_utd_loop_runs_utd_critic_updates_per_actor_update():
    learner = RLPDLearner(3, 4, RLPDConfig(**{**TINY, "utd_ratio": 3}))
    steps = []
    learner.critic_opt.register_step_post_hook(lambda *a: steps.append("critic"))
    learner.actor_opt.register_step_post_hook(lambda *a: steps.append("actor"))
    learner.update(fixed_batch(3 * 64))
    assert steps == ["critic", "critic", "critic", "actor"]


@pytest.mark.parametrize("cql_alpha", [0.0, 1.0])  # as published, and with the shipped conservative penalty
def test_rlpd_learns_to_avoid_interventions_from_their_labels_alone(cql_alpha):
    """The only reward is -1 on the step that made the simulated operator take over (|x| > 0.5)."""
    data = label_episodes(as_episodes(boundary_task_records(60, 40))).rlif
    assert (data.rewards < 0).sum() > 20
    box = ActionBox()
    prior, online = ReplayBuffer(1, 4, 10_000), ReplayBuffer(1, 4, 10_000)
    human = data.interventions
    for buffer, keep in ((prior, human), (online, ~human)):
        buffer.add(data.take(keep), box.to_unit(data.actions[keep]))
    learner = RLPDLearner(1, 4, RLPDConfig(hidden=(64, 64), num_qs=4, batch_size=128, utd_ratio=2, discount=0.8, seed=1,
                                          cql_alpha=cql_alpha))
    rng = np.random.default_rng(0)
    for _ in range(400):
        learner.train_step(prior, online, rng)
    with torch.no_grad():
        x = torch.tensor([[-0.45], [-0.4], [0.4], [0.45]])
        vx = learner.policy(x)[0][:, 0]
        outward, inward = torch.tensor([[1.0, 0, 0, 0]]), torch.tensor([[-1.0, 0, 0, 0]])
        q_out = learner.critic(torch.tensor([[0.45]]), outward).mean()
        q_in = learner.critic(torch.tensor([[0.45]]), inward).mean()
    assert q_out < q_in - 0.05, (q_out, q_in)
    assert (vx * x[:, 0] < 0).all(), vx  # pushes back towards the centre near the boundary


@pytest.mark.parametrize("impl", ["batched", "loop"])
def test_both_critic_implementations_run_the_same_step(impl):
    learner = RLPDLearner(3, 4, RLPDConfig(**TINY, critic_impl=impl))
    info = learner.update(fixed_batch())
    assert set(info) >= {"critic_loss", "actor_loss", "entropy", "temperature", "q"}


def test_the_warm_start_clones_the_operator_into_the_actor_mean_and_fits_the_critics():
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(256, 3)).astype(np.float32)
    actions = np.tanh(obs @ np.array([[0.8, -0.5, 0.0, 0.3], [0.2, 0.4, -0.7, 0.0], [0.0, 0.1, 0.5, -0.6]], np.float32))
    prior = ReplayBuffer(3, 4, 1000)
    n = len(obs)
    prior.add(Transitions(obs, actions, np.zeros(n, np.float32), obs, np.zeros(n, bool), np.zeros(n, bool),
                          np.ones(n, bool), np.zeros(n, np.int8)), actions)
    learner = RLPDLearner(3, 4, RLPDConfig(**{**TINY, "actor_lr": 3e-3}))
    first = learner.warm_start_step(prior, rng)
    for _ in range(300):
        last = learner.warm_start_step(prior, rng)
    assert float(last["bc_loss"]) < 0.1 * float(first["bc_loss"])
    with torch.no_grad():
        cloned = learner.actor(torch.from_numpy(obs))
    assert float(((cloned - torch.from_numpy(actions)) ** 2).mean()) < 0.02
    assert learner.updates == 0  # warm-start steps are not RL updates


def test_bc_term_adds_the_squared_distance_to_the_operator_on_operator_rows_only():
    from dataclasses import replace

    learner = RLPDLearner(3, 4, RLPDConfig(**TINY, bc_weight=2.0))
    base = fixed_batch(8)
    human = torch.tensor([True, False, True, False, False, False, False, True])
    batch = replace(base, interventions=human)
    torch.manual_seed(3)
    with_bc, info = learner.actor_loss(batch)
    learner.config = replace(learner.config, bc_weight=0.0)
    torch.manual_seed(3)
    without, _ = learner.actor_loss(batch)
    with torch.no_grad():
        expected = ((learner.actor(batch.observations) - batch.actions) ** 2).sum(-1)[human].mean()
    torch.testing.assert_close(info["bc_loss"], expected)
    torch.testing.assert_close(with_bc - without, 2.0 * expected)
    with pytest.raises(ValueError, match="bc_weight"):
        RLPDConfig(bc_weight=-1.0)
    with pytest.raises(ValueError, match="cql_alpha"):
        RLPDConfig(cql_alpha=-1.0)


class _PrefersZeroAction(torch.nn.Module):
    """A stand-in ensemble of 2 critics: Q(s, a) = -|a|^2, so the action nearer zero ranks higher."""

    def forward(self, obs, act):
        return -(act ** 2).sum(-1).expand(2, -1)


def test_operator_agreement_ranks_the_actors_action_against_the_operators_on_operator_rows_only():
    learner = RLPDLearner(3, 4, RLPDConfig(**TINY))
    learner.critic = _PrefersZeroAction()
    batch = fixed_batch(16)
    with torch.no_grad():
        policy = learner.actor(learner.features(batch.observations, None))
    human = torch.arange(16) < 10
    worse = Batch(**{**batch.__dict__, "actions": torch.where(human[:, None], policy.sign(), policy), "interventions": human})
    info = learner.operator_agreement(worse)  # the operator's actions (corners of the box) are further from zero
    assert info["critic_prefers_policy"] == 1.0
    expected_gap = (policy.sign() - policy)[:10].norm(dim=-1).mean()
    assert info["policy_operator_gap"] == pytest.approx(float(expected_gap), rel=1e-5)

    better = Batch(**{**batch.__dict__, "actions": torch.zeros_like(policy), "interventions": human})
    assert learner.operator_agreement(better)["critic_prefers_policy"] == 0.0

    nobody = Batch(**{**batch.__dict__, "interventions": torch.zeros(16, dtype=torch.bool)})
    assert all(np.isnan(v) for v in learner.operator_agreement(nobody).values())


def test_conservative_penalty_is_the_ensembles_excess_of_the_actors_actions_over_the_operators_on_operator_rows():
    learner = RLPDLearner(3, 4, RLPDConfig(**TINY, cql_alpha=2.0))
    batch = fixed_batch(16)
    operator_rows = torch.arange(16) % 3 == 0
    batch = Batch(**{**batch.__dict__, "interventions": operator_rows})
    obs = learner.features(batch.observations, None)
    qs = learner.critic(obs, batch.actions)
    torch.manual_seed(3)
    penalty = learner.conservative_penalty(obs, qs, operator_rows)
    torch.manual_seed(3)
    with torch.no_grad():
        actions, _ = learner.actor.sample(obs)
        expected = (learner.critic(obs, actions) - qs).clamp(min=0).mean(0)[operator_rows].mean()
    torch.testing.assert_close(penalty.detach(), expected)

    plain = RLPDLearner(3, 4, RLPDConfig(**TINY))  # seeds its init as ``learner`` did, and the global generator
    torch.manual_seed(3)
    td_only, _ = plain.critic_loss(batch, torch.tensor([0, 1]))
    torch.manual_seed(3)
    with_penalty, info = learner.critic_loss(batch, torch.tensor([0, 1]))
    assert "cql_penalty" in info  # same seeds and init: the loss is the TD loss plus alpha times the penalty
    torch.testing.assert_close(with_penalty.detach(), td_only.detach() + 2.0 * info["cql_penalty"])


def test_conservative_penalty_lowers_the_actors_actions_against_the_operators_in_the_operators_states():
    """Critics fitted on the same operator rows (reward -1, no bootstrap), from the same init, with and without the
    penalty: without it they keep valuing the actor's unseen actions above the operator's (extrapolation), with it they
    do not (the excess is the penalty itself, measured)."""
    def fitted_gap(cql_alpha):
        torch.manual_seed(0)
        learner = RLPDLearner(3, 4, RLPDConfig(**TINY, discount=0.0, cql_alpha=cql_alpha))
        g = torch.Generator().manual_seed(1)
        obs = torch.randn(64, 3, generator=g)
        operator = torch.ones(64, dtype=torch.bool)
        batch = Batch(obs, torch.tanh(obs @ torch.randn(3, 4, generator=g)), -torch.ones(64), obs, torch.ones(64),
                      interventions=operator)
        for _ in range(150):
            learner.update_critic(batch)
        with torch.no_grad():
            return float(learner.conservative_penalty(obs, learner.critic(obs, batch.actions), operator))

    without, with_penalty = fitted_gap(0.0), fitted_gap(1.0)
    assert with_penalty < 0.03 < 0.1 < without, (with_penalty, without)


def test_conservative_penalty_stops_at_the_operators_value_and_leaves_the_values_bounded():
    """Operator rows only, a random actor far from the operator's actions: CQL's plain difference Q(s, pi) - Q(s, a_op)
    drove every value down without bound here (mean Q -17 after 600 updates, -54 after 1200, with rewards in [-1, 0] and
    gamma 0.8, so no return is below -5). The hinge stops once the actor's actions are valued at most the operator's."""
    data = label_episodes(as_episodes(boundary_task_records(60, 40))).rlif
    box = ActionBox()
    prior, online = ReplayBuffer(1, 4, 10_000), ReplayBuffer(1, 4, 10_000)
    for buffer, keep in ((prior, data.interventions), (online, ~data.interventions)):
        buffer.add(data.take(keep), box.to_unit(data.actions[keep]))
    learner = RLPDLearner(1, 4, RLPDConfig(hidden=(64, 64), num_qs=4, batch_size=128, utd_ratio=2, discount=0.8, seed=1,
                                           cql_alpha=1.0))
    rng = np.random.default_rng(0)
    for _ in range(600):
        info = learner.train_step(prior, online, rng)
    assert float(info["q"]) > -1.0 / (1.0 - 0.8), float(info["q"])
    assert 0.0 <= float(info["cql_penalty"]) < 0.5


NO_COMPILER = shutil.which(compiler()) is None


def test_without_a_cxx_compiler_the_learner_stays_eager_and_says_what_to_install(monkeypatch):
    import torch._inductor.config  # noqa: F401  (it reads CXX once, on import: keep this test's CXX out of later tests)

    monkeypatch.setenv("CXX", "no-such-compiler++")
    learner = RLPDLearner(3, 4, RLPDConfig(**TINY, compile=True))
    assert learner.fusion.startswith("off: ") and "'no-such-compiler++'" in learner.fusion
    assert "apt-get install g++" in learner.fusion
    learner.update(fixed_batch())
    assert learner.wait_for_fusion(timeout=1.0) == learner.fusion and learner.fusion.startswith("off: ")
    assert RLPDLearner(3, 4, RLPDConfig(**TINY)).fusion == "off"


@pytest.mark.skipif(NO_COMPILER, reason="torch.compile on CPU needs a C++ compiler")
def test_fusion_compiles_in_a_child_then_runs_the_eager_step_fused(monkeypatch, tmp_path):
    """``compile=True``: the first update starts a child process compiling and runs eagerly; the first update after the
    child ends switches to the compiled losses, in place. With inductor drawing its random numbers as eager does,
    that update gives the same metrics and the same critic weights as the eager learner's."""
    import torch._inductor.config as inductor

    monkeypatch.setattr(inductor, "fallback_random", True)
    monkeypatch.setenv("TORCHINDUCTOR_FALLBACK_RANDOM", "1")  # the child's inductor too: the same kernels, from its cache
    torch._dynamo.reset()
    eager, fused = (RLPDLearner(3, 4, RLPDConfig(**TINY, compile=flag)) for flag in (False, True))
    assert fused.fusion == "waiting"
    for seed in (5, 7, 8):  # eager while the child compiles, then fused
        torch.manual_seed(seed)
        expected = eager.update(fixed_batch(seed=seed))
        torch.manual_seed(seed)
        got = fused.update(fixed_batch(seed=seed))
        for key in ("critic_loss", "q", "target_q", "actor_loss", "entropy"):
            torch.testing.assert_close(got[key], expected[key], rtol=1e-4, atol=1e-5)
        if seed == 5:
            assert fused.fusion == "compiling" and fused._critic_loss == fused.critic_loss
            assert fused.wait_for_fusion(timeout=600) == "compiling"  # the child ended; the next update switches
            assert fused._warm_up.poll() == "done", fused._warm_up.log_path.read_text()[-2000:]
        if seed == 7:  # its critic and actor updates were the first fused ones
            assert fused.fusion == "on" and fused._critic_loss != fused.critic_loss
    assert fused.fusion_seconds > 0 and fused.fusion_wait > 0
    for a, b in zip(fused.critic.parameters(), eager.critic.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(NO_COMPILER, reason="torch.compile on CPU needs a C++ compiler")
def test_a_failed_compile_leaves_the_updates_eager_and_says_why(monkeypatch, tmp_path):
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'compiling ...'\necho 'RuntimeError: inductor: C++ compile failed'\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setattr(fusion.sys, "executable", str(broken))
    learner = RLPDLearner(3, 4, RLPDConfig(**TINY, compile=True))
    learner.update(fixed_batch())
    learner.wait_for_fusion(timeout=60)
    info = learner.update(fixed_batch(seed=1))
    assert learner.fusion.startswith("off: the compile failed, updates stay eager: RuntimeError: inductor: C++ compile "
                                     "failed (full output: "), learner.fusion
    assert learner._critic_loss == learner.critic_loss and torch.isfinite(info["critic_loss"])
    assert "RuntimeError" in learner._warm_up.log_path.read_text()  # the child's output is kept for the message
    shutil.rmtree(learner._warm_up.folder)


@pytest.mark.skipif(NO_COMPILER, reason="torch.compile on CPU needs a C++ compiler")
def test_the_compile_child_ends_with_a_killed_learner():
    import os
    import signal
    import subprocess
    import sys
    import time

    code = ("from tests.learners.test_rlpd import TINY, fixed_batch\n"
            "from iil_robot.learners.rlpd import RLPDConfig, RLPDLearner\n"
            "learner = RLPDLearner(3, 4, RLPDConfig(**TINY, compile=True))\n"
            "learner.update(fixed_batch())\n"
            "print(learner._warm_up.process.pid, learner._warm_up.log_path, flush=True)\n"
            "import time; time.sleep(120)\n")
    learner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        pid, log = learner.stdout.readline().split()
        child, started = int(pid), time.monotonic()
        while "compiling the losses" not in Path(log).read_text() and time.monotonic() < started + 120:
            time.sleep(0.1)  # until the child has set its death signal (it says so once it has)
        assert "compiling the losses" in Path(log).read_text()
    finally:
        learner.send_signal(signal.SIGKILL)
        learner.wait()

    def ended() -> bool:  # gone, or a zombie until its new parent reaps it
        try:
            return Path(f"/proc/{child}/stat").read_text().split(")")[-1].split()[0] == "Z"
        except OSError:
            return True

    deadline = time.monotonic() + 5.0  # less than its compile takes
    while not ended() and time.monotonic() < deadline:
        time.sleep(0.1)  # no event to wait on for a process that is not ours
    folder = Path(log).parent  # a killed learner leaves its child's folder: the next learner's warm-up removes it
    assert folder.is_dir() and fusion.remove_orphans(folder.parent) == [folder] and not folder.exists()
    if not ended():
        os.kill(child, signal.SIGKILL)
        raise AssertionError(f"the compile's child {child} outlived its learner")


def test_only_the_folders_of_learners_no_longer_running_are_removed(tmp_path):
    import os
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    orphan, ours = tmp_path / f"iil_fusion_{gone.pid}_abc", tmp_path / f"iil_fusion_{os.getpid()}_def"
    unrelated = tmp_path / "iil_fusion_notapid_x"
    for folder in (orphan, ours, unrelated):
        folder.mkdir()
        (folder / "compile.log").write_text("...")
    assert fusion.remove_orphans(tmp_path) == [orphan]
    assert ours.is_dir() and unrelated.is_dir() and not orphan.exists()


def test_the_compile_child_gets_the_learners_configuration_and_minibatch_shapes():
    learner = RLPDLearner(3, 4, RLPDConfig(**TINY, compile=True, cql_alpha=1.0))
    batch = fixed_batch()
    spec = fusion.warm_up_spec(learner, batch)
    assert spec["config"]["compile"] is False and spec["config"]["cql_alpha"] == 1.0 and spec["config"]["hidden"] == [32, 32]
    assert spec["batch"]["observations"] == [[64, 3], "float32"] and spec["batch"]["images"] is None
    example = fusion._example(spec, torch.device("cpu"))
    assert example.actions.shape == (64, 4) and example.images is None


@pytest.mark.skipif(NO_COMPILER, reason="torch.compile on CPU needs a C++ compiler")
def test_the_compiled_loop_compiles_each_critic_and_computes_the_eager_loop():
    """The benchmark's compiled loop: each critic compiled in place (the state dict keeps its keys, so the loop's
    checkpoints load either way) and two updates, with different random target subsets, as the eager loop."""
    torch._dynamo.reset()
    config = dict(TINY, critic_impl="loop")
    eager, compiled = (RLPDLearner(3, 4, RLPDConfig(**config, compile=flag)) for flag in (False, True))
    assert all(critic._compiled_call_impl is not None for critic in compiled.critic.critics)
    assert compiled.critic.state_dict().keys() == eager.critic.state_dict().keys()
    compiled.critic.load_state_dict(eager.critic.state_dict())
    compiled.target_critic.load_state_dict(eager.target_critic.state_dict())
    for seed in (1, 2):
        batch = fixed_batch(seed=seed)
        torch.manual_seed(seed)
        expected = eager.update(batch)
        torch.manual_seed(seed)
        got = compiled.update(batch)
        for key in ("critic_loss", "q", "target_q", "actor_loss"):
            torch.testing.assert_close(got[key], expected[key], rtol=1e-4, atol=1e-5)
    for a, b in zip(compiled.critic.parameters(), eager.critic.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(rlpd_module.native_bfloat16(torch.device("cpu")) is not None,
                    reason="this CPU does not multiply bfloat16 natively")
def test_mixed_precision_multiplies_in_bfloat16_and_keeps_weights_targets_and_losses_in_float32():
    exact, mixed = (RLPDLearner(3, 4, RLPDConfig(**TINY, mixed_precision=flag, cql_alpha=1.0)) for flag in (False, True))
    batch = replace(fixed_batch(), interventions=torch.rand(64, generator=torch.Generator().manual_seed(3)) < 0.3)
    seen = {id(learner): set() for learner in (exact, mixed)}
    for learner in (exact, mixed):  # the dtype each hidden layer's matmul gives
        for linear in learner.critic.net.linears:
            linear.register_forward_hook(lambda module, args, out, key=id(learner): seen[key].add(out.dtype))
    for _ in range(3):
        torch.manual_seed(1)
        want = exact.update(batch)
        torch.manual_seed(1)
        got = mixed.update(batch)
    for key in ("critic_loss", "q", "target_q", "actor_loss", "entropy", "cql_penalty"):
        assert got[key].dtype == torch.float32 and torch.isfinite(got[key]), key
        torch.testing.assert_close(got[key], want[key], rtol=0.05, atol=0.05)  # bfloat16 keeps ~3 significant digits
    assert seen[id(mixed)] == {torch.bfloat16} and seen[id(exact)] == {torch.float32}
    assert all(p.dtype == torch.float32 for p in (*mixed.critic.parameters(), *mixed.actor.parameters()))
    moved = [(a - b).abs().max() for a, b in zip(mixed.critic.parameters(), exact.critic.parameters())]
    assert 0 < max(moved) < 1e-2  # the same three steps, apart from rounding


def test_without_native_bfloat16_mixed_precision_stays_float32_and_says_why(monkeypatch):
    from iil_robot.learners import rlpd

    monkeypatch.setattr(rlpd, "native_bfloat16", lambda device: "this CPU has neither AVX-512 BF16 nor AMX: ...")
    learner = RLPDLearner(3, 4, RLPDConfig(**TINY, mixed_precision=True))
    assert not learner.mixed_precision
    assert learner.precision == "float32: mixed_precision is off because this CPU has neither AVX-512 BF16 nor AMX: ..."
    assert RLPDLearner(3, 4, RLPDConfig(**TINY)).precision == "float32"


def test_native_bfloat16_reads_the_cpus_flags(monkeypatch, tmp_path):
    from iil_robot.learners import cpu, rlpd

    for flags, native in (("fpu avx2 avx512f avx512_bf16", True), ("fpu amx_bf16 amx_tile", True), ("fpu avx2 avx512f", False)):
        cpuinfo = tmp_path / f"cpuinfo_{native}_{len(flags)}"
        cpuinfo.write_text(f"processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: {flags}\n")
        monkeypatch.setattr(cpu, "CPUINFO", cpuinfo)
        assert (rlpd.native_bfloat16(torch.device("cpu")) is None) == native, flags
        assert cpu.cpu_info() == ("AMD EPYC", set(flags.split()))
    monkeypatch.setattr(cpu, "CPUINFO", tmp_path / "missing")
    assert rlpd.native_bfloat16(torch.device("cpu")) == "/proc/cpuinfo cannot be read to check the CPU for AVX-512 BF16 or AMX"
