"""Run the configured learning rules on one task and collect everything results.json and the plots need."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .config import RulesConfig, config_to_dict
from .data import Dataset, make_dataset
from .meta import PolicyRule, train_ppo
from .network import Weights, accuracy, flatten, forward, init_weights, loss_fn
from .updates import SGD, NodePerturbation, Rule, WeightPerturbation, standardize

# Fixed per-rule seed offsets: a rule's noise does not depend on which other rules were selected.
_RULE_SEED = {"sgd": 1, "wp": 2, "np": 3, "meta": 4}
PAPER_EPOCHS = 100_000


def layer_sizes(cfg: RulesConfig) -> tuple[int, int, int]:
    t = cfg.task
    return (t.input_dim, t.hidden_dim, t.output_dim)


def evaluate(weights: Weights, data: Dataset) -> dict[str, float]:
    """Training loss, test loss and (classification) test accuracy of the given weights."""
    with torch.no_grad():
        out_tr = forward(weights, data.x_train, data.output_activation)
        out_te = forward(weights, data.x_test, data.output_activation)
        res = {
            "train_loss": float(loss_fn(out_tr, data.y_train, data.loss)),
            "test_loss": float(loss_fn(out_te, data.y_test, data.loss)),
        }
        if data.loss == "cross_entropy":
            res["train_accuracy"] = float(accuracy(out_tr, data.y_train))
            res["test_accuracy"] = float(accuracy(out_te, data.y_test))
    return res


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def run_rule(
    rule: Rule,
    weights: Weights,
    data: Dataset,
    epochs: int,
    log_every: int,
    generator: torch.Generator,
    standardize_scales: tuple[float, ...] | None = None,
    desc: str = "",
    progress: bool = True,
) -> tuple[dict[str, Any], Weights]:
    """Apply ``rule`` for ``epochs`` full-batch steps from ``weights``; curves are logged every ``log_every``.

    A rule whose loss stops being finite is stopped there and marked ``diverged_at_epoch``.
    """
    curves: dict[str, list] = {"epoch": []}

    def log(epoch: int, w: Weights) -> bool:
        ev = evaluate(w, data)
        curves["epoch"].append(epoch)
        for k, v in ev.items():
            curves.setdefault(k, []).append(_finite_or_none(v))
        return all(math.isfinite(v) for v in ev.values())

    log(0, weights)
    # a few early points too, so a rule that jumps in its first steps (the meta rule) is drawn as a jump
    early = {e for e in (1, 2, 5, 10, 20, 50, 100, 200, 500) if e < log_every}
    diverged = None
    start = time.perf_counter()
    with tqdm(
        total=epochs,
        desc=desc or rule.name,
        unit="epoch",
        disable=not progress,
        leave=True,
        dynamic_ncols=True,
        mininterval=0.5,
    ) as bar:
        for epoch in range(1, epochs + 1):
            weights, loss = rule.step(weights, data, generator)
            if standardize_scales is not None:
                weights = standardize(weights, standardize_scales)
            if not math.isfinite(loss):
                diverged = epoch - 1  # the loss before this step was already non-finite
                log(epoch, weights)
                break
            if epoch % log_every == 0 or epoch == epochs or epoch in early:
                if not log(epoch, weights):
                    diverged = epoch
                    break
                bar.update(epoch - bar.n)
                bar.set_postfix(train=f"{curves['train_loss'][-1]:.4g}", refresh=False)
        bar.update(epoch - bar.n)
    wall = time.perf_counter() - start
    final = {k: v[-1] for k, v in curves.items() if k != "epoch"}
    result = {
        "curves": curves,
        "final": final,
        "epochs_run": epoch,
        "wall_time_s": wall,
        "seconds_per_epoch": wall / max(epoch, 1),
        "diverged_at_epoch": diverged,
    }
    return result, weights


def build_rule(name: str, cfg: RulesConfig) -> Rule:
    if name == "sgd":
        return SGD(cfg.sgd.lr)
    if name == "wp":
        return WeightPerturbation(cfg.wp.lr, cfg.wp.sigma, cfg.wp.perturbations)
    if name == "np":
        return NodePerturbation(cfg.np.lr, cfg.np.sigma, cfg.np.perturbations)
    raise ValueError(f"no direct constructor for rule {name!r}")


def run_experiment(cfg: RulesConfig, progress: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Everything for one results.json: per-rule curves and finals, data source, timings, held-out task."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dtype = getattr(torch, cfg.dtype)
    data = make_dataset(cfg.task, cfg.seed, dtype)
    log(f"data: {data.source}")
    sizes = layer_sizes(cfg)
    w0 = init_weights(sizes, torch.Generator().manual_seed(cfg.seed + 7), cfg.task.init_std, dtype)
    scales = tuple(float(w.std()) for w in w0) if cfg.standardize_weights else None
    results: dict[str, Any] = {
        "task": cfg.task.name,
        "data_source": data.source,
        "layer_sizes": list(sizes),
        "n_train": int(data.x_train.shape[0]),
        "n_test": int(data.x_test.shape[0]),
        "epochs": cfg.epochs,
        "seed": cfg.seed,
        "config": config_to_dict(cfg),
        "rules": {},
    }
    for name in cfg.rules:
        gen = torch.Generator().manual_seed(cfg.seed * 100 + _RULE_SEED[name])
        extra: dict[str, Any] = {}
        if name == "meta":
            rule, extra = _train_meta(cfg, data, sizes, dtype, progress)
        else:
            rule = build_rule(name, cfg)
        res, w_end = run_rule(rule, w0, data, cfg.epochs, cfg.log_every, gen, scales, desc=name, progress=progress)
        res.update(extra)
        res["hyperparameters"] = config_to_dict(getattr(cfg, name))
        res["paper_epochs_estimate_s"] = res["seconds_per_epoch"] * PAPER_EPOCHS
        if name == "meta":
            res.update(_meta_diagnostics(cfg, rule, w0, w_end, data, sizes, dtype, progress))
        results["rules"][name] = res
    return results


def _init_fn(sizes, std, dtype):
    def init(rng: np.random.Generator) -> Weights:
        return init_weights(sizes, torch.Generator().manual_seed(int(rng.integers(2**62))), std, dtype)

    return init


def _train_meta(cfg: RulesConfig, data: Dataset, sizes, dtype, progress: bool):
    m = cfg.meta
    start = time.perf_counter()
    with tqdm(
        total=m.total_timesteps,
        desc="meta (PPO)",
        unit="step",
        disable=not progress,
        leave=True,
        dynamic_ncols=True,
        mininterval=0.5,
    ) as bar:
        model, env = train_ppo(
            data,
            _init_fn(sizes, cfg.task.init_std, dtype),
            m,
            cfg.seed,
            progress=lambda n: bar.update(min(n, bar.total - bar.n)),
        )
    extra = {"ppo_train_time_s": time.perf_counter() - start, "ppo_timesteps": int(model.num_timesteps)}
    return PolicyRule(model, env), extra


def _meta_diagnostics(cfg, rule, w0, w_end, data, sizes, dtype, progress):
    """Does the learned rule generalise? Run it (and SGD as a reference) on a held-out task, and measure how far
    the weights it reaches on the two tasks are apart: ~0 means it jumps to one fixed set of weights."""
    seed = cfg.seed + cfg.meta.heldout_seed_offset
    held = make_dataset(cfg.task, seed, dtype, heldout=True)
    # the held-out task starts from a different initialisation too, so a rule that ignores its input shows up
    w0_held = init_weights(sizes, torch.Generator().manual_seed(seed + 7), cfg.task.init_std, dtype)
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, Any] = {"heldout": {"data_source": held.source}}
    res, w_held = run_rule(rule, w0_held, held, cfg.epochs, cfg.log_every, gen, None, "meta (held-out)", progress)
    out["heldout"]["meta"] = res
    if cfg.sgd is not None:
        ref, _ = run_rule(
            SGD(cfg.sgd.lr), w0_held, held, cfg.epochs, cfg.log_every, gen, None, "sgd (held-out)", progress
        )
        out["heldout"]["sgd"] = ref
    # ||rule(W_end) - W_end|| / ||W_end||: 0 when the rule has stopped at a fixed point of its own map
    again, _ = rule.step(w_end, data, gen)
    norm = max(float(flatten(w_end).norm()), 1e-12)
    out["fixed_point_residual_rel"] = float((flatten(again) - flatten(w_end)).norm()) / norm
    # ||W_end(training task) - W_end(held-out task)|| / ||W_end||: small when it lands on the same weights anyway
    out["heldout_final_weight_distance_rel"] = float((flatten(w_end) - flatten(w_held)).norm()) / norm
    return out
