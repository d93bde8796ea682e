"""The outer step: TRPO (Schulman et al. 2015) on the meta-batch's post-adaptation surrogate, read top to bottom.

It sees the meta-batch only through its per-task terms (:class:`~maml_rl.metalearner.MetaBatchTerms`: the
gradient, Fisher-vector products and losses at candidate parameters, each a sum over tasks), so the same
function serves tasks in this process and tasks on Ray shards. Hyperparameters are the config's ``max-kl``,
``cg-iters``, ``cg-damping``, ``ls-max-steps`` and ``ls-backtrack-ratio``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from maml_rl.config import Config
from maml_rl.metalearner import MetaBatchTerms
from maml_rl.optim import conjugate_gradient


def trpo_step(terms: MetaBatchTerms, theta: Tensor, config: Config) -> tuple[dict[str, Any], Tensor | None]:
    """One TRPO step from the flat meta-parameters ``theta``: the metrics and the accepted parameters.

    1. the surrogate loss and its gradient g at θ;
    2. the search direction s ≈ (F + damping·I)⁻¹ g by ``cg-iters`` conjugate-gradient iterations on
       Fisher-vector products;
    3. the full step s·√(max-kl / ½ sᵀ(F + damping·I)s), so that the quadratic model of the KL equals ``max-kl``;
    4. a backtracking line search: the first of ``ls-max-steps`` candidates θ − ratioᵏ·step whose surrogate is
       below the current one and whose mean KL is below ``max-kl``.

    Returns ``None`` as the parameters when no step is accepted (the policy keeps θ). A non-finite loss,
    gradient or search direction rejects the step; ``metrics["nonfinite"]`` then names it.
    """
    loss_before, grads = terms.gradient()
    metrics: dict[str, Any] = {"loss_before": loss_before, "grad_norm": grads.norm().item()}
    rejected = {**metrics, "loss_after": loss_before, "kl_after": 0.0, "accepted": False, "ls_steps": 0}
    for name, value in (("loss", torch.tensor(loss_before)), ("gradient", grads)):
        if not torch.isfinite(value).all():
            return {**rejected, "nonfinite": name}, None

    def damped_fisher_product(vector: Tensor) -> Tensor:
        return terms.fisher_product(vector) + config.cg_damping * vector

    stepdir, h_stepdir = conjugate_gradient(damped_fisher_product, grads, config.cg_iters)
    shs = 0.5 * stepdir.dot(h_stepdir)
    if not (torch.isfinite(stepdir).all() and torch.isfinite(shs)):
        return {**rejected, "nonfinite": "search direction"}, None
    if shs <= 0:  # no direction to move in (e.g. a zero gradient)
        return rejected, None
    full_step = stepdir * torch.sqrt(config.max_kl / shs)

    for k in range(config.ls_max_steps):
        candidate = theta - config.ls_backtrack_ratio**k * full_step
        loss_new, kl_new = terms.losses(candidate)
        if loss_new < loss_before and kl_new < config.max_kl:
            return {
                **metrics,
                "loss_after": loss_new,
                "kl_after": kl_new,
                "ls_steps": k + 1,
                "accepted": True,
            }, candidate
    return {**rejected, "ls_steps": config.ls_max_steps}, None  # nothing improved inside the trust region
