"""Same seed, same config, same thread count: the same numbers in every process, even beside a busy neighbour.

The learner's numbers (baseline fit, advantages, adaptation, TRPO step) are computed on the same saved episodes
in two separate processes, one of them while another process spins on a core, and compared bit for bit.
"""

import subprocess
import sys

import torch
from conftest import REPO
from test_scripts import tiny_config

WORKER = r"""
import sys
import torch
from maml_rl.baseline import baseline_features, compute_advantages, fit_linear_baseline
from maml_rl.config import load_config
from maml_rl.episodes import Episodes, discounted_returns
from maml_rl.experiment import Experiment
from maml_rl.optim import flatten, unflatten
from maml_rl.trpo import trpo_step

config_path, episodes_path, out_path, threads = sys.argv[1:5]
experiment = Experiment.build(load_config(config_path))
torch.set_num_threads(int(threads))
saved = torch.load(episodes_path, weights_only=True)
out = {}
for name in ("train", "valid"):
    ep = Episodes(**saved[name])
    features = baseline_features(ep.observations, ep.mask).double()
    tasks, steps, count, dim = features.shape
    returns = discounted_returns(ep.rewards, ep.mask, 0.99).double().reshape(tasks, -1)
    for repeat in range(3):  # float64 weights: the float32 ones round most differences away
        out[f"{name} baseline weights (float64) #{repeat}"] = fit_linear_baseline(features.reshape(tasks, -1, dim), returns)
train, valid = (compute_advantages(Episodes(**saved[n]), 0.99, 1.0) for n in ("train", "valid"))
out["train advantages"], out["valid advantages"] = train.advantages, valid.advantages
adaptation = experiment.learner.adapt(train)
out.update({f"adapted {k}": v.detach() for k, v in adaptation.params.items()})
terms = experiment.learner.terms(train, valid, adaptation, train.num_tasks)
metrics, accepted = trpo_step(terms, flatten(experiment.policy.meta_params()).detach(), experiment.config)
if accepted is not None:
    experiment.learner.write_params(unflatten(accepted, experiment.policy.meta_params()))
out["loss_before"] = torch.tensor(metrics["loss_before"], dtype=torch.float64)
out.update({f"after TRPO {k}": v.detach().clone() for k, v in experiment.policy.named_parameters()})
torch.save(out, out_path)
"""


def _run_worker(config, episodes, out, neighbour: bool) -> dict:
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if neighbour else None
    try:
        done = subprocess.run(
            [sys.executable, "-c", WORKER, str(config), str(episodes), str(out), "2"],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=REPO,
        )
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    assert done.returncode == 0, done.stderr
    return torch.load(out, weights_only=True)


def test_learner_numbers_are_bit_identical_across_processes(tmp_path):
    from maml_rl.config import load_config
    from maml_rl.experiment import Experiment
    from maml_rl.seeding import TRAIN_STREAM, batch_rng

    config = tiny_config(tmp_path, "halfcheetah-dir", horizon=40, **{"meta-batch-size": 6, "fast-batch-size": 5})
    experiment = Experiment.build(load_config(config))
    rng = batch_rng(1, TRAIN_STREAM, 0)
    tasks = experiment.sampler.sample_tasks(6, rng)
    fields = ("observations", "actions", "rewards", "mask", "log_probs")
    saved = {}
    for name in ("train", "valid"):
        episodes = experiment.sampler.sample(experiment.policy, experiment.policy.task_params(6), tasks, rng)
        saved[name] = {f: getattr(episodes, f) for f in fields}
    experiment.sampler.close()
    torch.save(saved, tmp_path / "episodes.pt")

    a = _run_worker(config, tmp_path / "episodes.pt", tmp_path / "a.pt", neighbour=False)
    b = _run_worker(config, tmp_path / "episodes.pt", tmp_path / "b.pt", neighbour=True)
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    for name in ("train", "valid"):  # and within one process
        differ += [
            f"{name} #{r} vs #0 in one process"
            for r in (1, 2)
            if not torch.equal(b[f"{name} baseline weights (float64) #{r}"], b[f"{name} baseline weights (float64) #0"])
        ]
    assert not differ, f"not bit-identical: {differ}"


def test_baseline_fit_is_repeatable_in_one_process():
    """The float64 weights of the same fit, twenty times over (heap contents change between the calls)."""
    from maml_rl.baseline import fit_linear_baseline

    g = torch.Generator().manual_seed(0)
    features = torch.randn(8, 500, 38, generator=g, dtype=torch.float64)
    targets = torch.randn(8, 500, generator=g, dtype=torch.float64)
    first = fit_linear_baseline(features, targets)
    for _ in range(20):
        junk = [torch.randint(0, 1000, (38,), dtype=torch.int32) for _ in range(10)]  # leftovers on the heap
        del junk
        assert torch.equal(fit_linear_baseline(features, targets), first)
