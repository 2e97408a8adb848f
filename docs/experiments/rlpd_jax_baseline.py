"""The RLPD update of ikostrikov/rlpd (the RLIF authors' learner) in plain JAX, timed like ``iil-robot bench learner``.

The baseline that ``bench learner``'s figures are held against (issue #24, item 6) must come from the same machine:
the development machines differ from day to day (one has AVX-512 BF16, another only AVX2). This script runs the same
update as ``rlpd/agents/sac/sac_learner.py`` (SAC, 10 critics with LayerNorm stacked and vmapped, the target the
minimum over a random subset of 2 target critics, the soft backup, Adam, one jitted update), without flax and optax
(same arithmetic: Adam with bias correction, Polyak averaging), at ``bench learner``'s shapes: observation 25,
action 4, 256x256, batch 256, UTD 1. Rounds and busy loops follow ``bench learner --busy-cores``: N single-threaded
busy loops, stopped for the idle rounds and resumed for the busy ones, alternating.

It needs JAX, which the project does not install; in a venv of its own::

    python3 -m venv /tmp/jaxvenv && /tmp/jaxvenv/bin/pip install "jax[cpu]"
    /tmp/jaxvenv/bin/python docs/experiments/rlpd_jax_baseline.py --busy-cores 1 --rounds 4

It prints one JSON object: ``updates_per_s_jax`` (median round) and ``updates_per_s_jax_busy_N``.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time

import jax
import jax.numpy as jnp

OBS_DIM, ACT_DIM = 25, 4


def dense(key, fan_in: int, fan_out: int, members: int = 0) -> dict:
    shape = (members, fan_in, fan_out) if members else (fan_in, fan_out)
    scale = jnp.sqrt(2.0 / fan_in)  # the initialisation does not change the update's cost
    return {"w": jax.random.normal(key, shape) * scale, "b": jnp.zeros(shape[:-2] + (fan_out,))}


def init(key, hidden: tuple[int, ...], num_qs: int) -> dict:
    keys = iter(jax.random.split(key, 16))
    sizes = (OBS_DIM, *hidden)
    actor = [dense(next(keys), a, b) for a, b in zip(sizes, sizes[1:])] + [dense(next(keys), hidden[-1], 2 * ACT_DIM)]
    sizes = (OBS_DIM + ACT_DIM, *hidden)
    critic = [dict(dense(next(keys), a, b, num_qs), g=jnp.ones((num_qs, b)), beta=jnp.zeros((num_qs, b)))
              for a, b in zip(sizes, sizes[1:])] + [dense(next(keys), hidden[-1], 1, num_qs)]
    return {"actor": actor, "critic": critic, "target": critic, "log_temp": jnp.log(jnp.array(1.0))}


def actor_dist(params, obs):
    x = obs
    for layer in params[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
    out = x @ params[-1]["w"] + params[-1]["b"]
    mean, log_std = jnp.split(out, 2, axis=-1)
    return mean, jnp.clip(log_std, -10.0, 2.0)


def sample(params, obs, key):
    """A tanh-squashed Gaussian sample and its log-probability (distrax's TanhNormal, as rlpd's)."""
    mean, log_std = actor_dist(params, obs)
    std = jnp.exp(log_std)
    pre = mean + std * jax.random.normal(key, mean.shape)
    log_prob = (-0.5 * ((pre - mean) / std) ** 2 - log_std - 0.5 * jnp.log(2 * jnp.pi)).sum(-1)
    log_prob -= (2 * (jnp.log(2.0) - pre - jax.nn.softplus(-2 * pre))).sum(-1)
    return jnp.tanh(pre), log_prob


def critic_one(params, obs, act):
    x = jnp.concatenate([obs, act], -1)
    for layer in params[:-1]:
        x = x @ layer["w"] + layer["b"]
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        x = jax.nn.relu((x - mu) / jnp.sqrt(var + 1e-6) * layer["g"] + layer["beta"])
    return (x @ params[-1]["w"] + params[-1]["b"])[..., 0]


critics = jax.vmap(critic_one, in_axes=(0, None, None))  # the ensemble: stacked parameters, one vmapped call


def adam(params, grads, state, lr=3e-4, b1=0.9, b2=0.999, eps=1e-8):
    m, v, t = state
    t = t + 1
    m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
    v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
    params = jax.tree_util.tree_map(
        lambda p, m, v: p - lr * (m / (1 - b1 ** t)) / (jnp.sqrt(v / (1 - b2 ** t)) + eps), params, m, v)
    return params, (m, v, t)


def zeros_like_state(params):
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    return (zeros, zeros, jnp.array(0))


@jax.jit
def update(state, batch, key):
    params, opt = state
    k_next, k_subset, k_actor = jax.random.split(key, 3)
    obs, act, rew, next_obs, mask = batch
    temp = jnp.exp(params["log_temp"])
    num_qs = params["critic"][0]["w"].shape[0]

    # critic: target from a random subset of 2 target critics at (s', a' ~ pi), soft backup
    next_act, next_logp = sample(params["actor"], next_obs, k_next)
    subset = jax.random.permutation(k_subset, num_qs)[:2]
    target = jax.tree_util.tree_map(lambda p: p[subset], params["target"])
    next_q = critics(target, next_obs, next_act).min(0)
    target_q = rew + 0.99 * mask * next_q - 0.99 * mask * temp * next_logp

    def critic_loss(cp):
        return ((critics(cp, obs, act) - target_q) ** 2).mean()

    critic, opt_critic = adam(params["critic"], jax.grad(critic_loss)(params["critic"]), opt["critic"])
    target = jax.tree_util.tree_map(lambda t, c: t * 0.995 + c * 0.005, params["target"], critic)

    # actor: mean over all critics of Q(s, a ~ pi)
    def actor_loss(ap):
        a, logp = sample(ap, obs, k_actor)
        return (logp * temp - critics(critic, obs, a).mean(0)).mean(), -logp.mean()

    grads, entropy = jax.grad(actor_loss, has_aux=True)(params["actor"])
    actor, opt_actor = adam(params["actor"], grads, opt["actor"])

    # temperature: towards -|A|/2
    temp_grad = jax.grad(lambda lt: jnp.exp(lt) * (entropy + ACT_DIM / 2))(params["log_temp"])
    log_temp, opt_temp = adam(params["log_temp"], temp_grad, opt["temp"])
    params = {"actor": actor, "critic": critic, "target": target, "log_temp": log_temp}
    return params, {"critic": opt_critic, "actor": opt_actor, "temp": opt_temp}


def batches(size: int) -> list[tuple]:
    out = []
    for seed in range(4):
        k = jax.random.split(jax.random.PRNGKey(100 + seed), 4)
        out.append((jax.random.normal(k[0], (size, OBS_DIM)), jax.random.uniform(k[1], (size, ACT_DIM), minval=-1, maxval=1),
                    -(jax.random.uniform(k[2], (size,)) < 0.05).astype(jnp.float32), jax.random.normal(k[3], (size, OBS_DIM)),
                    jnp.ones(size)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--updates", type=int, default=30)
    parser.add_argument("--busy-cores", type=int, default=0)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--num-qs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()

    params = init(jax.random.PRNGKey(0), tuple(args.hidden), args.num_qs)
    opt = {"critic": zeros_like_state(params["critic"]), "actor": zeros_like_state(params["actor"]),
           "temp": zeros_like_state(params["log_temp"])}
    state, data, key = (params, opt), batches(args.batch_size), jax.random.PRNGKey(1)
    for i in range(3):  # compile and warm up
        key, sub = jax.random.split(key)
        state = update(state, data[i % 4], sub)
    jax.block_until_ready(state)

    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy_cores)]
    for p in busy:
        os.kill(p.pid, signal.SIGSTOP)
    loads = [""] + ([f"_busy_{args.busy_cores}"] if busy else [])
    rates: dict[str, list[float]] = {load: [] for load in loads}
    try:
        for round_ in range(args.rounds):
            for load in loads if round_ % 2 == 0 else reversed(loads):
                for p in busy:
                    os.kill(p.pid, signal.SIGCONT if load else signal.SIGSTOP)
                start = time.perf_counter()
                for i in range(args.updates):
                    key, sub = jax.random.split(key)
                    state = update(state, data[i % 4], sub)
                jax.block_until_ready(state)
                rates[load].append(args.updates / (time.perf_counter() - start))
    finally:
        for p in busy:
            p.kill()
            p.wait()
    result = {"jax": jax.__version__, "devices": [str(d) for d in jax.devices()], "num_qs": args.num_qs,
              "hidden": args.hidden, "batch_size": args.batch_size, "busy_cores": args.busy_cores}
    result |= {f"updates_per_s_jax{load}": round(statistics.median(r), 2) for load, r in rates.items()}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
