"""The per-task terms of a meta-batch: a meta-batch split into slices of tasks gives the numbers of one slice
of every task (what a Ray shard computes for its slice, computed here in one process)."""

from __future__ import annotations

import copy

import pytest
import torch
from helpers import trpo_update

from maml_rl.config import from_dict
from maml_rl.experiment import Experiment
from maml_rl.metabatch import LocalSlices, TaskSlice, combine_reports
from maml_rl.optim import flatten

CONFIG = {
    "env-name": "2DNavigation-v0",
    "meta-batch-size": 4,
    "fast-batch-size": 3,
    "horizon": 10,
    "policy": {"type": "mlp", "hidden-sizes": [8]},
}


def _slices(experiment: Experiment, bounds: list[int]) -> LocalSlices:
    """Slices with their own sampler, policy and learner (as separate processes would have)."""
    slices = []
    for lo, hi in zip(bounds, bounds[1:]):
        own = Experiment.build(experiment.config)
        slices.append(TaskSlice(own.sampler, own.policy, own.learner, own.config, range(lo, hi)))
    return LocalSlices(slices)


def assert_close_in_norm(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-5) -> None:
    """‖a − b‖ ≤ rel ‖a‖: float32 summation-order agreement of vectors that are sums of cancelling terms
    (different numbers of tasks per batched matrix product round differently; see test_sampler)."""
    assert (a - b).norm() <= rel * a.norm(), f"|a-b| = {(a - b).norm():.3g}, |a| = {a.norm():.3g}"


@pytest.mark.parametrize("policy", ["mlp", "rnn"])
def test_slices_sum_to_the_whole_meta_batch(policy):
    config = from_dict({**CONFIG, "policy": {**CONFIG["policy"], "type": policy}})
    whole = Experiment.build(config)
    theta = flatten(whole.policy.meta_params()).detach().clone()
    one = whole.local_slices()
    split = _slices(whole, [0, 1, 4])
    rows = [combine_reports(s.prepare(3, theta)) for s in (one, split)]
    for key in ("returns_before", "returns_after", "env_steps"):
        assert rows[0][key] == pytest.approx(rows[1][key], rel=1e-6), key
    assert rows[0]["diagnostics"].keys() == rows[1]["diagnostics"].keys()
    (l1, g1), (l2, g2) = one.gradient(), split.gradient()
    assert l1 == pytest.approx(l2, rel=1e-4, abs=1e-7)
    assert_close_in_norm(g1, g2)
    assert g1.norm() > 0
    v = torch.randn(g1.shape, generator=torch.Generator().manual_seed(0))
    assert_close_in_norm(one.fisher_product(v), split.fisher_product(v))
    candidate = theta + 0.01 * v
    for a, b in zip(one.losses(candidate), split.losses(candidate)):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-7)
    one.close(), split.close()


def test_a_slice_alone_is_not_the_whole():
    """The check above can fail: a slice's sums are a part of the whole, not the whole."""
    whole = Experiment.build(from_dict(CONFIG))
    theta = flatten(whole.policy.meta_params()).detach().clone()
    one, part = whole.local_slices(), _slices(whole, [0, 2])
    one.prepare(0, theta), part.prepare(0, theta)
    assert not torch.allclose(one.gradient()[1], part.gradient()[1], rtol=1e-3)


def test_the_in_process_step_equals_the_learners_own_step():
    """The default path (one slice of every task) is the plain TRPO step on the same episodes' terms."""
    a = Experiment.build(from_dict(CONFIG))
    b = copy.deepcopy(a)
    a.meta_batch(0)
    slice_ = b.local_slices().slices[0]
    slice_.prepare(0)
    terms = slice_._prepared()
    trpo_update(b.learner, terms.train, terms.valid, terms.adaptation)
    for p, q in zip(a.policy.parameters(), b.policy.parameters()):
        assert torch.equal(p, q)
