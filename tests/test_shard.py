"""The per-task terms of a meta-batch: a meta-batch split into slices of tasks gives the numbers of one slice
of every task (what a Ray shard computes for its slice, computed here in one process)."""

from __future__ import annotations

import copy
import threading

import pytest
import torch
from helpers import trpo_update

from maml_rl.config import from_dict
from maml_rl.experiment import Experiment
from maml_rl.metabatch import LocalSlices, TaskSlice, combine_reports, split_tasks
from maml_rl.metalearner import leave_one_out_baseline, mean_valid_returns
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
    whole = Experiment.build(config, threads=1)
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
    a = Experiment.build(from_dict(CONFIG), threads=1)
    b = copy.deepcopy(a)
    a.meta_batch(0)
    slice_ = b.local_slices().slices[0]
    slice_.prepare(0)
    (terms,) = slice_._prepared()
    trpo_update(b.learner, terms.train, terms.valid, terms.adaptation)
    for p, q in zip(a.policy.parameters(), b.policy.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("count,parts", [(1, 1), (1, 4), (5, 2), (40, 2), (40, 3), (7, 7), (3, 8)])
def test_split_tasks_covers_every_task_once_in_near_equal_parts(count, parts):
    ranges = split_tasks(count, parts)
    assert len(ranges) == min(count, parts)
    assert [t for r in ranges for t in r] == list(range(count))
    assert all(len(r) > 0 for r in ranges)
    assert max(map(len, ranges)) - min(map(len, ranges)) <= 1


def test_select_tasks_views_every_per_task_field():
    experiment = Experiment.build(from_dict(CONFIG), threads=1)
    slice_ = experiment.local_slices().slices[0]
    slice_.prepare(0)
    (terms,) = slice_._prepared()
    valid = terms.valid
    part = valid.select_tasks(range(1, 3))
    assert part.num_tasks == 2
    for name in ("observations", "actions", "rewards", "mask", "log_probs", "advantages", "advantage_scale"):
        whole, view = getattr(valid, name), getattr(part, name)
        assert torch.equal(view, whole[1:3]), name
        assert view.data_ptr() == whole[1:3].data_ptr(), f"{name} is a copy, not a view"
    for bad in (range(0), range(2, 9), range(0, 4, 2)):
        with pytest.raises(ValueError, match="tasks must be"):
            valid.select_tasks(bad)


@pytest.mark.parametrize("policy,inner_loss", [("mlp", "reinforce"), ("rnn", "reinforce"), ("mlp", "dice")])
def test_parts_on_threads_give_the_numbers_of_one_part(policy, inner_loss):
    """Two learner threads split a slice's 5 tasks into parts of 3 and 2, computed side by side: every term
    equals the one-part term up to the rounding of the sums over tasks (DiCE's baseline stays the slice's)."""
    config = from_dict(
        {**CONFIG, "meta-batch-size": 5, "inner-loss": inner_loss, "policy": {**CONFIG["policy"], "type": policy}}
    )
    one, two = Experiment.build(config, threads=1), Experiment.build(config, threads=2)
    a, b = one.local_slices(), two.local_slices()
    assert b.slices[0].parts == [range(0, 3), range(3, 5)]
    names = set()
    adapt = two.learner.adapt
    two.learner.adapt = lambda *args, **kw: names.add(threading.current_thread().name) or adapt(*args, **kw)
    rows = [combine_reports(s.prepare(2)) for s in (a, b)]
    assert names == {threading.current_thread().name, "learner-part_0"}, names
    for key in ("returns_before", "returns_after", "env_steps"):
        assert rows[0][key] == pytest.approx(rows[1][key], rel=1e-6), key
    (l1, g1), (l2, g2) = a.gradient(), b.gradient()
    assert l1 == pytest.approx(l2, rel=1e-4, abs=1e-7)
    assert_close_in_norm(g1, g2)
    v = torch.randn(g1.shape, generator=torch.Generator().manual_seed(0))
    assert_close_in_norm(a.fisher_product(v), b.fisher_product(v))
    theta = flatten(one.policy.meta_params()).detach()
    for x, y in zip(a.losses(theta + 0.01 * v), b.losses(theta + 0.01 * v)):
        assert x == pytest.approx(y, rel=1e-4, abs=1e-7)
    if inner_loss == "dice":  # the check can fail: a part's own leave-one-out baseline is another one
        (whole,) = a.slices[0]._prepared()
        returns = mean_valid_returns(whole.valid, config.gamma)
        assert not torch.allclose(leave_one_out_baseline(returns)[:3], leave_one_out_baseline(returns[:3]))
    a.close(), b.close()


@pytest.mark.parametrize("policy", ["mlp", "rnn"])
def test_the_part_count_not_the_threads_fixes_the_numbers(policy):
    """``learner-parts`` parts on one thread (one after another) or spread over two give the same numbers, bit for
    bit, as the default two-thread slice (one part per thread) does with two parts; one part gives one thread's
    numbers on two intra-op threads too."""
    base = {**CONFIG, "meta-batch-size": 5, "policy": {**CONFIG["policy"], "type": policy}}
    default_two = Experiment.build(from_dict(base), threads=2)
    one_thread = Experiment.build(from_dict({**base, "learner-parts": 2}), threads=1)
    assert default_two.learner_parts == one_thread.learner_parts == 2
    three_on_two = Experiment.build(from_dict({**base, "learner-parts": 3}), threads=2)
    three_on_one = Experiment.build(from_dict({**base, "learner-parts": 3}), threads=1)
    one_on_two = Experiment.build(from_dict({**base, "learner-parts": 1}), threads=2)  # intra-op threads (the MLP)
    one_on_one = Experiment.build(from_dict(base), threads=1)
    experiments = (default_two, one_thread, three_on_two, three_on_one, one_on_two, one_on_one)
    slices = [e.local_slices() for e in experiments]
    assert [s.slices[0].parts for s in slices[:2]] == [[range(0, 3), range(3, 5)]] * 2
    assert slices[2].slices[0]._groups == [range(0, 2), range(2, 3)] and len(slices[3].slices[0]._groups) == 1
    for s in slices:
        s.prepare(1)
    results = [(s.gradient(), s) for s in slices]
    v = torch.randn(results[0][0][1].shape, generator=torch.Generator().manual_seed(0))
    theta = flatten(default_two.policy.meta_params()).detach() + 0.01 * v
    numbers = [(loss, grad, s.fisher_product(v), s.losses(theta)) for (loss, grad), s in results]
    for a, b in ((numbers[0], numbers[1]), (numbers[2], numbers[3]), (numbers[4], numbers[5])):
        assert a[0] == b[0] and torch.equal(a[1], b[1]) and torch.equal(a[2], b[2]) and a[3] == b[3]
    assert numbers[0][1].norm() > 0
    for s in slices:
        s.close()
