"""The learning rules: each lowers the loss, SGD's gradient is right, NP and WP are unbiased."""

from __future__ import annotations

import pytest
import torch

from maml_rl.rules.config import TaskConfig
from maml_rl.rules.data import Dataset, teacher_student
from maml_rl.rules.network import flatten, forward, init_weights, loss_fn
from maml_rl.rules.updates import SGD, NodePerturbation, WeightPerturbation, standardize


def small_task(dtype=torch.float64, n=64, sizes=(5, 12, 3), seed=0) -> Dataset:
    task = TaskConfig(
        name="teacher-student", n_train=n, n_test=n, input_dim=sizes[0], hidden_dim=sizes[1], output_dim=sizes[2]
    )
    return teacher_student(task, seed, dtype)


def train_loss(weights, data):
    return float(loss_fn(forward(weights, data.x_train, data.output_activation), data.y_train, data.loss))


def start(data, seed=1):
    sizes = (data.x_train.shape[1], 12, data.y_train.shape[1])
    return init_weights(sizes, torch.Generator().manual_seed(seed), dtype=data.x_train.dtype)


@pytest.mark.parametrize(
    "rule", [SGD(0.01), WeightPerturbation(0.002, 1e-3, 4), NodePerturbation(0.002, 1e-3, 4)], ids=["sgd", "wp", "np"]
)
def test_each_rule_lowers_the_teacher_student_training_loss(rule):
    data = small_task(torch.float32)
    w = start(data)
    before = train_loss(w, data)
    gen = torch.Generator().manual_seed(3)
    for _ in range(300):
        w, _ = rule.step(w, data, gen)
    after = train_loss(w, data)
    assert after < 0.7 * before, f"{rule.name}: loss {before:.4g} -> {after:.4g}"


def test_sgd_gradient_matches_finite_differences():
    data = small_task()
    w = start(data)
    grads, loss = SGD(1.0).gradient(w, data)
    assert loss == pytest.approx(train_loss(w, data))
    eps = 1e-6
    gen = torch.Generator().manual_seed(0)
    for layer in range(len(w)):
        for _ in range(5):  # random entries of each matrix
            i = int(torch.randint(w[layer].shape[0], (1,), generator=gen))
            j = int(torch.randint(w[layer].shape[1], (1,), generator=gen))
            plus = [x.clone() for x in w]
            minus = [x.clone() for x in w]
            plus[layer][i, j] += eps
            minus[layer][i, j] -= eps
            fd = (train_loss(tuple(plus), data) - train_loss(tuple(minus), data)) / (2 * eps)
            assert grads[layer][i, j].item() == pytest.approx(fd, rel=1e-5, abs=1e-9)


def test_sgd_step_is_minus_lr_times_gradient():
    data = small_task()
    w = start(data)
    grads, _ = SGD(1.0).gradient(w, data)
    new, _ = SGD(0.3).step(w, data, torch.Generator())
    for a, b, g in zip(new, w, grads):
        torch.testing.assert_close(a, b - 0.3 * g)


def cosine(a, b):
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


@pytest.mark.parametrize("cls", [WeightPerturbation, NodePerturbation], ids=["wp", "np"])
def test_mean_perturbation_update_points_along_minus_gradient(cls):
    """sigma is the noise variance, so E[dW] = -lr grad E: the mean of many updates matches the SGD step."""
    data = small_task(n=32)
    w = start(data)
    lr, sigma = 0.1, 1e-4
    grads, _ = SGD(lr).gradient(w, data)
    sgd_step = -lr * flatten(grads)
    rule = cls(lr, sigma, perturbations=20_000)  # one batched call averages 20k perturbations
    delta, _ = rule.update(w, data, torch.Generator().manual_seed(0))
    mean = flatten(delta)
    assert cosine(mean, sgd_step) > 0.9
    # unbiased in size too, not only in direction (a std-vs-variance mix-up would be off by 1/sqrt(sigma) = 100x)
    assert float(mean.norm() / sgd_step.norm()) == pytest.approx(1.0, abs=0.25)
    # a single perturbation is a much noisier estimate: the averaging is what makes the test pass
    single, _ = cls(lr, sigma, perturbations=1).update(w, data, torch.Generator().manual_seed(1))
    assert cosine(flatten(single), sgd_step) < 0.9


def test_wp_noise_has_variance_sigma():
    """With a linear loss in the weights (E = sum of outputs of a linear net), WP's update is exactly
    -(lr/sigma) <Xi Xi^T> g, so its size pins down the variance convention."""
    data = small_task(n=16)
    w = start(data)
    rule = WeightPerturbation(1.0, 0.04, perturbations=1)
    gen = torch.Generator().manual_seed(5)
    delta, _ = rule.update(w, data, gen)
    # replay the same noise draw: the first randn calls of update() are the noise of each layer
    gen2 = torch.Generator().manual_seed(5)
    noise = [torch.randn((1, *x.shape), generator=gen2, dtype=x.dtype)[0] * 0.2 for x in w]
    e0 = train_loss(w, data)
    e1 = train_loss(tuple(x + n for x, n in zip(w, noise)), data)
    for d, n in zip(delta, noise):
        torch.testing.assert_close(d, -(1.0 / 0.04) * (e1 - e0) * n)


def test_standardize_keeps_mean_zero_and_given_scale():
    w = (torch.randn(4, 3) * 5 + 2, torch.randn(2, 4))
    out = standardize(w, (0.5, 1.5))
    for o, s in zip(out, (0.5, 1.5)):
        assert abs(float(o.mean())) < 1e-6
        assert float(o.std()) == pytest.approx(s, rel=1e-5)


@pytest.mark.parametrize("cls", [WeightPerturbation, NodePerturbation], ids=["wp", "np"])
def test_k_batched_perturbations_equal_the_mean_of_k_single_ones(cls):
    """The batched path (one forward pass for k noisy networks) is the average of k one-at-a-time updates."""
    data = small_task(n=16)
    w = start(data)
    rule = cls(0.05, 1e-3, perturbations=5)
    noise = rule.draw_noise(w, data, torch.Generator().manual_seed(2))
    batched, loss = rule.update_from_noise(w, data, noise)
    singles = [rule.update_from_noise(w, data, tuple(n[i : i + 1] for n in noise))[0] for i in range(5)]
    assert loss == pytest.approx(train_loss(w, data))
    for layer, b in enumerate(batched):
        torch.testing.assert_close(b, torch.stack([s[layer] for s in singles]).mean(0))
    # and the single update really is -(lr/sigma)(E_pert - E) * noise for that draw (WP: the noise itself)
    if cls is WeightPerturbation:
        one = tuple(n[0] for n in noise)
        e1 = train_loss(tuple(x + n for x, n in zip(w, one)), data)
        for d, n in zip(singles[0], one):
            torch.testing.assert_close(d, -(0.05 / 1e-3) * (e1 - loss) * n)
