"""Exactness of the meta-learner's derivatives, on tiny float64 policies and synthetic episodes."""

import pytest
import torch
from helpers import autograd_fisher_product, learner_config, synthetic_episodes, tiny_policy, trpo_update

from maml_rl.episodes import masked_mean
from maml_rl.metalearner import MetaLearner, adapt, surrogate_and_kl
from maml_rl.optim import flatten, unflatten
from maml_rl.policies.base import gaussian_kl

TASKS = 3


FULL_INPUTS = ("observation", "previous-action", "previous-reward", "episode-start")


def _setup(
    kind, num_steps=1, first_order=False, fast_lr=0.5, inner_params="all", inner_loss="reinforce", **policy_kwargs
):
    policy = tiny_policy(kind, **policy_kwargs).double()
    if policy_kwargs.get("plasticity", "none") != "none":
        with torch.no_grad():  # α starts at 0 (no plasticity yet); give the trace a part in the derivatives
            for layer in policy.cells:
                layer.plastic_alpha.normal_(0, 0.5, generator=torch.Generator().manual_seed(5))
    train = synthetic_episodes(policy, tasks=TASKS, seed=1)
    valid = synthetic_episodes(policy, tasks=TASKS, seed=2)
    config = learner_config(
        fast_lr=fast_lr,
        num_steps=num_steps,
        first_order=first_order,
        cg_damping=1e-3,
        inner_params=inner_params,
        inner_loss=inner_loss,
    )
    return policy, train, valid, MetaLearner(policy, config)


def _fisher_product(learner, train, valid, adaptation):
    """The learner's damped Fisher-vector product, as the outer step uses it."""
    terms = learner.terms(train, valid, adaptation, train.num_tasks)
    terms.gradient()  # fixes π_old and builds the product
    return lambda v: terms.fisher_product(v) + learner.config.cg_damping * v


def _kl(policy, params, valid, old):
    return surrogate_and_kl(*policy.sequence_of(valid, params), valid, *old)[1]


def _post_adaptation(policy, learner, train, valid, theta_flat, old=None):
    """Mean surrogate loss and KL to ``old`` after adapting from the flat parameter vector."""
    like = policy.meta_params()
    s = learner.config
    if not theta_flat.requires_grad:  # the inner step differentiates with respect to it
        theta_flat = theta_flat.clone().requires_grad_()
    params = policy.task_params(TASKS, unflatten(theta_flat, like))
    adapted = adapt(
        policy, params, train, s.fast_lr, s.num_steps, s.first_order, learner.adapted_names, s.inner_loss
    ).params
    if old is None:
        with torch.no_grad():
            old = policy.sequence_of(valid, {k: v.detach() for k, v in adapted.items()})
    loss, kl = surrogate_and_kl(*policy.sequence_of(valid, adapted), valid, *old)
    return loss.mean(), kl.mean(), old


FVP_CASES = [
    ("mlp", 1, "all", {}),
    ("mlp", 2, "all", {}),
    ("rnn", 1, "all", {}),
    ("rnn", 2, "all", {}),
    # only the readout adapts in the inner loop (ANIL); every parameter still moves in the outer step
    ("mlp", 1, "readout", {}),
    ("mlp", 2, "readout", {}),
    ("rnn", 1, "readout", {}),
    ("rnn", 2, "readout", {}),
    # the policy also sees its previous action and reward, and a leaky, rescaled reservoir
    ("mlp", 1, "all", {"inputs": FULL_INPUTS}),
    ("rnn", 2, "readout", {"inputs": FULL_INPUTS, "spectral_radius": 0.95, "leak": 0.5}),
    # plastic recurrent synapses, the plasticity adapted in the inner loop or only in the outer step
    ("rnn", 1, "all", {"inputs": FULL_INPUTS, "plasticity": "hebbian"}),
    ("rnn", 2, "all", {"plasticity": "neuromodulated", "leak": 0.5}),
    ("rnn", 1, "readout", {"inputs": FULL_INPUTS, "plasticity": "neuromodulated"}),
    ("rnn", 2, "readout", {"plasticity": "hebbian"}),
]


@pytest.mark.parametrize("kind,num_steps,inner_params,policy_kwargs", FVP_CASES)
def test_fisher_vector_products_equal_explicit_hessian_of_kl(kind, num_steps, inner_params, policy_kwargs):
    _check_fisher_products(kind, num_steps, inner_params, **policy_kwargs)


@pytest.mark.parametrize(
    "inner_loss,kind,num_steps,inner_params",
    [("lvc", "mlp", 1, "all"), ("lvc", "rnn", 2, "readout"), ("lvc", "rnn", 2, "all"), ("dice", "rnn", 1, "all")],
)
def test_fisher_vector_products_are_exact_with_every_meta_gradient_estimator(inner_loss, kind, num_steps, inner_params):
    """The inner loss's Hessian enters Jᵀ F J through J: LVC's (with its ∇log π ∇log πᵀ term) must be the one used."""
    with_estimator = _check_fisher_products(kind, num_steps, inner_params, inner_loss=inner_loss)
    if inner_loss == "lvc":  # the ∇log π ∇log πᵀ term is there: the product differs from REINFORCE's
        assert not torch.allclose(with_estimator, _check_fisher_products(kind, num_steps, inner_params), rtol=1e-4)


def _check_fisher_products(kind, num_steps, inner_params, inner_loss="reinforce", **policy_kwargs):
    policy, train, valid, learner = _setup(
        kind, num_steps, inner_params=inner_params, inner_loss=inner_loss, **policy_kwargs
    )
    theta0 = flatten(policy.meta_params()).detach()
    _, _, old = _post_adaptation(policy, learner, train, valid, theta0)
    kl_of = lambda th: _post_adaptation(policy, learner, train, valid, th, old)[1]  # noqa: E731
    hessian = torch.autograd.functional.hessian(kl_of, theta0)
    v = torch.randn(theta0.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    expected = hessian @ v + learner.config.cg_damping * v

    adaptation = learner.adapt(train)
    theta = policy.meta_params()
    with torch.no_grad():
        old_mean, old_log_std = policy.sequence_of(valid, {k: p.detach() for k, p in adaptation.params.items()})
    kl = _kl(policy, adaptation.params, valid, (old_mean, old_log_std))
    plain = autograd_fisher_product(kl.mean(), theta)(v) + learner.config.cg_damping * v
    shortcut = _fisher_product(learner, train, valid, adaptation)(v)
    torch.testing.assert_close(plain, expected, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(shortcut, expected, rtol=1e-7, atol=1e-9)
    # the adaptation matters: the Fisher of the un-adapted policy is a different matrix
    assert not torch.allclose(hessian, _plain_fisher(policy, valid, old), rtol=1e-3, atol=1e-6)
    return shortcut


def _plain_fisher(policy, valid, old):
    theta0 = flatten(policy.meta_params()).detach()
    like = policy.meta_params()

    def kl_of(th):
        mean, log_std = policy.sequence_of(valid, policy.task_params(TASKS, unflatten(th, like)))
        return masked_mean(gaussian_kl(old[0], old[1], mean, log_std), valid.mask).mean()

    return torch.autograd.functional.hessian(kl_of, theta0)


@pytest.mark.parametrize(
    "kind,inner_params,policy_kwargs",
    [
        ("mlp", "all", {}),
        ("rnn", "all", {}),
        ("rnn", "readout", {}),
        ("rnn", "all", {"plasticity": "hebbian"}),
        ("rnn", "all", {"plasticity": "neuromodulated"}),
    ],
)
def test_second_order_meta_gradient_equals_finite_differences(kind, inner_params, policy_kwargs):
    policy, train, valid, learner = _setup(kind, inner_params=inner_params, **policy_kwargs)
    theta0 = flatten(policy.meta_params()).detach()
    _, _, old = _post_adaptation(policy, learner, train, valid, theta0)
    loss_of = lambda th: _post_adaptation(policy, learner, train, valid, th, old)[0]  # noqa: E731

    theta = theta0.clone().requires_grad_()
    analytic = torch.autograd.grad(loss_of(theta), theta)[0]
    eps = 1e-6
    numeric = torch.stack(
        [
            (loss_of(theta0 + eps * e) - loss_of(theta0 - eps * e)) / (2 * eps)
            for e in torch.eye(len(theta0), dtype=torch.float64)
        ]
    ).detach()
    torch.testing.assert_close(analytic, numeric, rtol=1e-5, atol=1e-7)

    # the first-order approximation drops the inner Hessian term and so differs measurably
    fo_policy, fo_train, fo_valid, fo_learner = _setup(
        kind, first_order=True, inner_params=inner_params, **policy_kwargs
    )
    fo_theta = theta0.clone().requires_grad_()
    first_order = torch.autograd.grad(
        _post_adaptation(fo_policy, fo_learner, fo_train, fo_valid, fo_theta, old)[0], fo_theta
    )[0]
    relative = (first_order - numeric).norm() / numeric.norm()
    assert relative > 1e-2, f"first-order gradient unexpectedly equals the second-order one (rel. diff {relative:.2e})"


def test_trpo_step_respects_trust_region_and_lowers_surrogate():
    policy, train, valid, learner = _setup("mlp")
    learner = MetaLearner(policy, learner_config(fast_lr=0.5, max_kl=1e-3))
    before = {k: v.detach().clone() for k, v in policy.meta_params().items()}
    metrics = trpo_update(learner, train, valid)
    assert metrics["accepted"]
    assert metrics["loss_after"] < metrics["loss_before"]
    assert 0 < metrics["kl_after"] < 1e-3
    assert any(not torch.equal(before[k], v) for k, v in policy.meta_params().items())


@pytest.mark.parametrize("advantage", [0.0, float("nan")])
def test_rejected_step_leaves_parameters_untouched(advantage):
    """No improving direction (zero advantages) or a non-finite one (NaN): nothing changes."""
    policy, train, valid, learner = _setup("mlp")
    valid.advantages = torch.full_like(valid.advantages, advantage)
    before = {k: v.detach().clone() for k, v in policy.meta_params().items()}
    metrics = trpo_update(learner, train, valid)
    assert not metrics["accepted"]
    assert all(torch.equal(before[k], v) for k, v in policy.meta_params().items())


@pytest.mark.parametrize(
    "kind,inner_loss", [("mlp", "reinforce"), ("rnn", "reinforce"), ("rnn", "lvc"), ("mlp", "dice")]
)
def test_first_order_fisher_vector_product_is_the_fisher_of_the_adapted_policy(kind, inner_loss):
    policy, train, valid, learner = _setup(kind, first_order=True, inner_loss=inner_loss)
    adaptation = learner.adapt(train)
    assert not any(g.requires_grad for g in adaptation.grads[0].values())
    steps = {k: (adaptation.params[k] - p).detach() for k, p in adaptation.points[0].items()}  # −α g, held fixed
    with torch.no_grad():
        old = policy.sequence_of(valid, {k: p.detach() for k, p in adaptation.params.items()})
    like = policy.meta_params()

    def kl_of(th):  # θ' = θ − α g with g constant: the first-order Jacobian is the identity
        params = {k: p + steps[k] for k, p in policy.task_params(TASKS, unflatten(th, like)).items()}
        return _kl(policy, params, valid, old).mean()

    theta0 = flatten(like).detach()
    v = torch.randn(theta0.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    expected = torch.autograd.functional.hessian(kl_of, theta0) @ v + learner.config.cg_damping * v
    torch.testing.assert_close(_fisher_product(learner, train, valid, adaptation)(v), expected, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("kind,policy_kwargs", [("mlp", {}), ("rnn", {"plasticity": "hebbian"})])
def test_without_an_inner_step_the_fisher_is_the_plain_one_and_no_inner_gradient_is_taken(kind, policy_kwargs):
    """fast-lr 0 (adaptation by memory alone): θ' = θ, J = I; the outer step needs no inner Hessian products."""
    policy, train, valid, learner = _setup(kind, fast_lr=0.0, **policy_kwargs)
    adaptation = learner.adapt(train)
    assert adaptation.points == [] and adaptation.grads == []
    theta = policy.task_params(TASKS)
    assert all(torch.equal(adaptation.params[k], theta[k]) for k in theta)
    with torch.no_grad():
        old = policy.sequence_of(valid, {k: p.detach() for k, p in adaptation.params.items()})
    v = torch.randn(
        flatten(policy.meta_params()).shape, generator=torch.Generator().manual_seed(6), dtype=torch.float64
    )
    expected = _plain_fisher(policy, valid, old) @ v + learner.config.cg_damping * v
    torch.testing.assert_close(_fisher_product(learner, train, valid, adaptation)(v), expected, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("kind", ["mlp", "rnn"])
def test_readout_adaptation_changes_only_the_gaussian_head(kind):
    policy, train, _, learner = _setup(kind, num_steps=2, inner_params="readout")
    assert set(learner.adapted_names) == {"mean.weight", "mean.bias", "log_std"}
    adaptation = learner.adapt(train)
    theta = policy.task_params(TASKS)
    for name, adapted in adaptation.params.items():
        moved = not torch.equal(adapted, theta[name])
        assert moved == (name in learner.adapted_names), f"{name}: moved={moved}"


@pytest.mark.parametrize("kind,fast_lr", [("mlp", 0.5), ("rnn", 0.5), ("rnn", 0.0)])
def test_a_subsampled_fisher_is_the_product_over_each_tasks_first_episodes(kind, fast_lr):
    """fisher-subsample f: the Fisher-vector products use the KL of the first ⌈f × episodes⌉ episodes of each task,
    through the same adaptation (the train episodes are not subsampled); f = 1 is the exact product."""
    policy, train, valid, exact = _setup(kind, fast_lr=fast_lr)
    config = learner_config(fast_lr=fast_lr, num_steps=1, cg_damping=1e-3, fisher_subsample=0.3)
    sub = MetaLearner(policy, config)
    adaptation = exact.adapt(train)
    v = torch.randn(
        flatten(policy.meta_params()).shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64
    )
    subsampled = _fisher_product(sub, train, valid, adaptation)(v)
    by_hand = _fisher_product(exact, train, valid.first_episodes(2), adaptation)(v)  # ⌈0.3 × 4⌉ = 2
    torch.testing.assert_close(subsampled, by_hand, rtol=1e-9, atol=1e-12)
    assert not torch.allclose(subsampled, _fisher_product(exact, train, valid, adaptation)(v), rtol=1e-3)
    # the gradient is the full one either way
    torch.testing.assert_close(
        sub.terms(train, valid, adaptation, TASKS).gradient()[1],
        exact.terms(train, valid, adaptation, TASKS).gradient()[1],
    )


def test_first_episodes_keeps_every_per_episode_field():
    policy = tiny_policy("mlp").double()
    episodes = synthetic_episodes(policy, tasks=TASKS, seed=1)
    episodes.terminated = torch.zeros(TASKS, episodes.num_episodes)
    episodes.reward_terms = {"forward": episodes.rewards.clone()}
    first = episodes.first_episodes(3).validate()
    assert first.num_episodes == 3 and first.terminated.shape == (TASKS, 3)
    torch.testing.assert_close(first.reward_terms["forward"], episodes.rewards[:, :, :3])
    with pytest.raises(ValueError, match="count must be in"):
        episodes.first_episodes(0)
