"""Plastic recurrent synapses: the trace's rules, its state handling, and the meta-learner's derivatives through it."""

import numpy as np
import pytest
import torch
from helpers import tiny_policy

from maml_rl.config import ConfigError, from_dict
from maml_rl.experiment import Experiment
from maml_rl.policies import GaussianRNNPolicy, gaussian_log_prob
from maml_rl.policies.plasticity import ARGUMENTS, clip, trilinear_partial

RULES = ["hebbian", "neuromodulated"]
FULL_INPUTS = ["observation", "previous-action", "previous-reward", "episode-start"]


def _plastic(rule: str, leak: float = 1.0, seed: int = 0) -> GaussianRNNPolicy:
    policy = tiny_policy("rnn", hidden_sizes=(5,), plasticity=rule, leak=leak, seed=seed).double()
    with torch.no_grad():  # α starts at 0; give the trace something to do
        policy.cells[0].plastic_alpha.copy_(torch.randn(5, 5, generator=torch.Generator().manual_seed(seed)))
    return policy


def _by_hand(policy: GaussianRNNPolicy, obs: torch.Tensor, params: dict) -> torch.Tensor:
    """The plastic cell written out one task, one episode and one synapse matrix at a time, in float64."""
    layer, leak = policy.cells[0], policy.leak
    tasks, steps, episodes, _ = obs.shape
    means = torch.zeros(tasks, steps, episodes, policy.act_dim, dtype=torch.float64)
    for k in range(tasks):
        p = {name: value[k] for name, value in params.items()}
        for e in range(episodes):
            h = torch.zeros(5, dtype=torch.float64)
            hebb = torch.zeros(5, 5, dtype=torch.float64)
            for t in range(steps):
                w = layer.weight_hh + p["cells.0.plastic_alpha"] * hebb
                cell = torch.tanh(p["cells.0.weight_ih"] @ obs[k, t, e] + p["cells.0.bias_ih"] + w @ h + layer.bias_hh)
                new = h + leak * (cell - h)
                outer = torch.outer(new, h)  # post × pre
                if layer.plasticity == "hebbian":
                    eta = p["cells.0.plastic_rate"][0]
                    hebb = (1 - eta) * hebb + eta * outer
                else:
                    m = torch.tanh(p["cells.0.modulator_weight"][0] @ new + p["cells.0.modulator_bias"][0])
                    hebb = torch.clamp(hebb + m * outer, -1.0, 1.0)
                h = new
                means[k, t, e] = p["mean.weight"] @ h + p["mean.bias"]
    return means


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("leak", [1.0, 0.6])
def test_the_trace_follows_its_rule(rule, leak):
    policy = _plastic(rule, leak)
    obs = torch.randn(2, 9, 3, policy.obs_dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2
    params = policy.task_params(2)
    with torch.no_grad():
        mean, _ = policy.sequence(obs, params)
        torch.testing.assert_close(mean, _by_hand(policy, obs, params))
        # the step-by-step path the sampler uses carries the same trace
        hidden, steps = policy.initial_hidden(2, 3), []
        for t in range(9):
            step_mean, _, hidden = policy(obs[:, t], params, hidden)
            steps.append(step_mean)
    torch.testing.assert_close(torch.stack(steps, 1), mean)
    trace = hidden[1]
    assert trace.shape == (2, 3, 5, 5) and trace.abs().max() > 0
    if rule == "neuromodulated":
        assert trace.abs().max() <= 1.0


def test_the_trace_is_memory_the_frozen_circuit_lacks():
    """Without plasticity an input's effect fades with the circuit's dynamics; with it, it also changes the weights."""
    policy = _plastic("hebbian")
    obs = torch.randn(1, 12, 2, policy.obs_dim, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    perturbed = obs.clone()
    perturbed[:, 0] += 1.0
    with torch.no_grad():
        plastic_effect = (policy.sequence(perturbed)[0] - policy.sequence(obs)[0])[:, -1].abs().max()
        policy.cells[0].plastic_alpha.zero_()
        frozen_effect = (policy.sequence(perturbed)[0] - policy.sequence(obs)[0])[:, -1].abs().max()
    assert plastic_effect > 2 * frozen_effect


@pytest.mark.parametrize("rule", RULES)
def test_a_plastic_policy_starts_as_the_frozen_rnn_of_its_seed(rule):
    frozen = tiny_policy("rnn", seed=4)
    plastic = tiny_policy("rnn", seed=4, plasticity=rule)
    for name, value in frozen.state_dict().items():
        assert torch.equal(value, plastic.state_dict()[name]), name
    obs = torch.randn(2, 6, 3, frozen.obs_dim)
    with torch.no_grad():
        assert torch.equal(frozen.sequence(obs)[0], plastic.sequence(obs)[0])
    extra = set(plastic.meta_params()) - set(frozen.meta_params())
    expected = (
        {"plastic_alpha", "plastic_rate"}
        if rule == "hebbian"
        else {"plastic_alpha", "modulator_weight", "modulator_bias"}
    )
    assert extra == {f"cells.{i}.{name}" for i in range(2) for name in expected}
    assert not any("_hh" in name for name in plastic.meta_params())  # W_hh stays a frozen buffer
    assert not extra & set(plastic.readout_names())


@pytest.mark.parametrize("rule", RULES)
def test_the_trace_starts_from_zero_at_every_episode(rule):
    exp = _nav_experiment({"type": "rnn", "plasticity": rule})
    policy, sampler = exp.policy, exp.sampler
    _set_alpha(policy)
    tasks = sampler.sample_tasks(4, np.random.default_rng(0))
    params = policy.task_params(4)
    first = sampler.sample(policy, params, tasks, np.random.default_rng(1))
    sampler.sample(policy, params, tasks, np.random.default_rng(2))
    again = sampler.sample(policy, params, tasks, np.random.default_rng(1))
    torch.testing.assert_close(first.actions, again.actions)
    assert all(torch.count_nonzero(h) == 0 for h in policy.initial_hidden(4, 3))


@pytest.mark.parametrize("rule", RULES)
def test_sampling_and_losses_agree_with_a_plastic_trace_when_episodes_end_early(rule):
    cfg = from_dict(
        {
            "env-name": "AntDir-v0",
            "meta-batch-size": 3,
            "fast-batch-size": 3,
            "horizon": 60,
            "normalization-scale": 1.0,
            "policy": {"type": "rnn", "hidden-sizes": [8], "inputs": FULL_INPUTS, "plasticity": rule},
        }
    )
    exp = Experiment.build(cfg)
    _set_alpha(exp.policy)
    rng = np.random.default_rng(5)
    tasks = exp.sampler.sample_tasks(3, rng)
    params = exp.policy.task_params(3)
    episodes = exp.sampler.sample(exp.policy, params, tasks, rng)
    assert (episodes.lengths < 60).any() and (episodes.lengths > 1).all(), episodes.lengths
    with torch.no_grad():
        mean, log_std = exp.policy.sequence_of(episodes, params)
        recomputed = gaussian_log_prob(episodes.actions, mean, log_std) * episodes.mask
    torch.testing.assert_close(recomputed, episodes.log_probs, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("rule", RULES)
def test_meta_training_moves_the_plasticity_and_never_the_frozen_weights(rule):
    exp = _nav_experiment({"type": "rnn", "plasticity": rule, "inputs": FULL_INPUTS[:3]})
    before = {k: v.detach().clone() for k, v in exp.policy.state_dict().items()}
    assert sum(exp.meta_batch(b)["accepted"] for b in range(3)) >= 1
    after = exp.policy.state_dict()
    for name in before:
        changed = not torch.equal(before[name], after[name])
        assert changed == ("_hh" not in name), f"{name}: changed={changed}"


def _nav_experiment(policy: dict) -> Experiment:
    cfg = from_dict(
        {
            "env-name": "2DNavigation-v0",
            "meta-batch-size": 4,
            "fast-batch-size": 3,
            "horizon": 15,
            "policy": {"hidden-sizes": [6], **policy},
        }
    )
    return Experiment.build(cfg)


def _set_alpha(policy: GaussianRNNPolicy) -> None:
    with torch.no_grad():
        for layer in policy.cells:
            layer.plastic_alpha.normal_(0, 0.5, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize(
    "policy,message",
    [
        ({"type": "mlp", "plasticity": "hebbian"}, "needs the rnn policy"),
        ({"type": "rnn", "cell": "gru", "plasticity": "neuromodulated"}, "cell gru"),
        ({"type": "rnn", "plasticity": "stdp"}, "must be one of none, hebbian, neuromodulated"),
    ],
)
def test_plasticity_needs_the_rnn_cell(policy, message):
    with pytest.raises(ConfigError, match=message):
        from_dict({"policy": policy})


def test_preflight_counts_the_traces_and_refuses_a_meta_batch_they_would_not_fit():
    from maml_rl.training.preflight import EnvironmentInfo, check_memory, estimate_memory

    env = EnvironmentInfo(observation_dim=17, action_dim=6, slot_bytes=20_000)
    frozen = from_dict({"policy": {"type": "rnn"}})
    plastic = from_dict({"policy": {"type": "rnn", "plasticity": "hebbian"}})
    slots_steps = 40 * 20 * 100
    extra = estimate_memory(plastic, env).total - estimate_memory(frozen, env).total
    assert extra == estimate_memory(plastic, env).traces >= slots_steps * 2 * 64 * 64 * 4 * 20
    assert estimate_memory(frozen, env).traces == 0
    check_memory(frozen, "c.yaml", env, available=16 * 2**30)
    with pytest.raises(ConfigError, match="for the Hebbian traces of policy.plasticity hebbian"):
        check_memory(plastic, "c.yaml", env, available=16 * 2**30)


def _trilinear_arguments(seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    shapes = {"alpha": (2, 4, 4), "trace": (2, 3, 4, 4), "post": (2, 3, 4), "pre": (2, 3, 4)}
    return {k: torch.randn(*s, generator=gen, dtype=torch.float64, requires_grad=True) for k, s in shapes.items()}


@pytest.mark.parametrize("wrt", ARGUMENTS)
def test_each_partial_of_the_trilinear_form_is_its_derivative_to_third_order(wrt):
    args = _trilinear_arguments()
    alpha, trace, post, pre = (args[k] for k in ARGUMENTS)
    phi = torch.einsum("tij,tnij,tni,tnj->", alpha, trace, post, pre)
    (expected,) = torch.autograd.grad(phi, args[wrt])
    others = {k: v for k, v in args.items() if k != wrt}
    torch.testing.assert_close(trilinear_partial(wrt, **others), expected)
    names = list(others)
    fn = lambda *xs: trilinear_partial(wrt, **dict(zip(names, xs)))  # noqa: E731
    assert torch.autograd.gradcheck(fn, tuple(others.values()))
    assert torch.autograd.gradgradcheck(fn, tuple(others.values()))

    def gradient_of_a_probe(*xs):  # a first derivative of ⟨probe, ∂Φ⟩, so that gradgradcheck reaches third order
        value = (fn(*xs) * torch.cos(xs[0].sum()) ** 2).sum()
        return torch.autograd.grad(value, xs, create_graph=True)

    assert torch.autograd.gradgradcheck(gradient_of_a_probe, tuple(others.values()))


def test_the_clip_has_torchs_gradient_to_second_order():
    value = torch.tensor([-2.0, -1.3, -0.5, 0.0, 0.7, 0.999, 1.5], dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(clip(value), value.clamp(-1, 1))
    (ours,) = torch.autograd.grad((clip(value) * torch.arange(7.0)).sum(), value)
    (torchs,) = torch.autograd.grad((value.clamp(-1, 1) * torch.arange(7.0)).sum(), value)
    torch.testing.assert_close(ours, torchs)
    inside = torch.tensor([-0.9, 0.2, 0.8], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x: clip(x * 3) ** 2, (inside,))
    # exactly on a bound (measure zero for a trace) the gradient stops, where torch's clamp would pass it
    edge = torch.tensor([1.0, -1.0], dtype=torch.float64, requires_grad=True)
    (at_bound,) = torch.autograd.grad(clip(edge).sum(), edge)
    assert at_bound.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("rule", RULES)
def test_a_plastic_sequence_keeps_one_trace_per_step_for_its_backward(rule):
    """The trace dominates a plastic meta-batch's memory: the graph of the losses' pass keeps the trace of each
    step (for α's gradient and the clip), not the intermediates of plain tensor operations."""
    policy, (tasks, steps, episodes), hidden = _plastic(rule), (2, 12, 3), 5
    obs = torch.randn(tasks, steps, episodes, policy.obs_dim, dtype=torch.float64)
    params = policy.task_params(tasks)
    trace_numel, saved = tasks * episodes * hidden * hidden, {}

    def pack(tensor):
        if tensor.numel() == trace_numel:
            saved[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        mean, _ = policy.sequence(obs, params)
    assert sum(saved.values()) <= (steps + 1) * trace_numel * 8  # Hebb_0 … Hebb_T
    mean.sum().backward()  # and the graph is complete
