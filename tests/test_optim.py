import torch

from maml_rl.optim import conjugate_gradient, flatten, unflatten


def test_conjugate_gradient_solves_random_spd_system():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(20, 20, generator=g, dtype=torch.float64)
    a = m @ m.T + 0.5 * torch.eye(20, dtype=torch.float64)
    b = torch.randn(20, generator=g, dtype=torch.float64)
    # with the default tolerance CG stops once |r|² < 1e-10, where x can still be 1e-5 / λ_min off (the last bits
    # of a @ v differ between CPU kinds); a tolerance far below float64's rounding runs it to convergence
    x, ax = conjugate_gradient(lambda v: a @ v, b, iterations=60, tolerance=1e-28)
    torch.testing.assert_close(x, torch.linalg.solve(a, b), atol=1e-8, rtol=1e-8)
    torch.testing.assert_close(ax, a @ x, atol=1e-8, rtol=1e-8)
    x, ax = conjugate_gradient(lambda v: a @ v, b, iterations=60)  # the default: stopped by its residual
    assert (b - a @ x).square().sum() < 1e-10


def test_conjugate_gradient_few_iterations_is_approximate_but_descends():
    g = torch.Generator().manual_seed(1)
    m = torch.randn(30, 30, generator=g, dtype=torch.float64)
    a = m @ m.T + torch.eye(30, dtype=torch.float64)
    b = torch.randn(30, generator=g, dtype=torch.float64)
    x, ax = conjugate_gradient(lambda v: a @ v, b, iterations=3)
    torch.testing.assert_close(ax, a @ x)  # the accumulated product is exact at any iteration
    # the CG iterate lowers the quadratic ½xᵀAx − bᵀx below its value at 0
    assert 0.5 * x @ a @ x - b @ x < 0


def test_flatten_unflatten_round_trip():
    like = {"a": torch.zeros(2, 3), "b": torch.zeros(4)}
    vec = torch.arange(10.0)
    back = unflatten(vec, like)
    assert back["a"].shape == (2, 3) and back["b"].shape == (4,)
    assert torch.equal(flatten(back), vec)
