"""The ``ppo`` outer step: ProMP's proximal meta-policy search (Rothfuss et al. 2019, "ProMP", ICLR), read top
to bottom.

Instead of one trust-region step, ``ppo-steps`` Adam steps on the same meta-batch's episodes, each on ProMP's
objective (:meth:`maml_rl.metalearner.EpisodeTerms.proximal_objective`: the clipped likelihood-ratio
surrogate of the adapted policy, plus ``ppo-kl-penalty`` times the pre-update policy's KL from the one that
sampled the episodes), with the inner step recomputed from the current parameters at each. Like
:func:`maml_rl.trpo.trpo_step` it sees the meta-batch only through its per-task terms, so it serves tasks in this
process and on Ray shards alike. The defaults are those of ProMP's own HalfCheetah script (``pro-mp_run_mujoco.py``
in jonasrothfuss/ProMP): 5 steps, clip range 0.3, KL penalty 5e-4 (fixed), learning rate 1e-3.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from maml_rl.config import Config
from maml_rl.metalearner import MetaBatchTerms


def outer_optimizer(theta: Tensor, config: Config) -> torch.optim.Adam:
    """The Adam optimiser of the ``ppo`` outer step over the flat meta-parameters; it lives as long as the run (as
    in ProMP), and its state travels in the run's checkpoint."""
    return torch.optim.Adam([torch.nn.Parameter(theta.detach().clone())], lr=config.ppo_lr)


def ppo_step(
    terms: MetaBatchTerms, theta: Tensor, config: Config, optimizer: torch.optim.Adam
) -> tuple[dict[str, Any], Tensor | None]:
    """``ppo-steps`` Adam steps from the flat meta-parameters ``theta``: the metrics and the new parameters.

    ``loss_before`` is ProMP's objective at θ; ``loss_after`` and ``kl_after`` are the TRPO surrogate and the
    mean KL of the adapted policy at the new parameters (the same measures as the ``trpo`` step reports). A
    non-finite objective or gradient at any step rejects the whole step (``metrics["nonfinite"]`` names it).
    """
    (param,) = optimizer.param_groups[0]["params"]
    with torch.no_grad():
        param.copy_(theta)
    metrics: dict[str, Any] = {}
    for k in range(config.ppo_steps):
        loss, grads = terms.proximal_objective(param.detach().clone())
        if k == 0:
            metrics = {"loss_before": loss, "grad_norm": grads.norm().item()}
        for name, value in (("loss", torch.tensor(loss)), ("gradient", grads)):
            if not torch.isfinite(value).all():
                rejected = {"loss_after": metrics["loss_before"], "kl_after": 0.0, "accepted": False, "ls_steps": 0}
                return {**metrics, **rejected, "nonfinite": name}, None
        param.grad = grads.to(param.dtype)
        optimizer.step()
    new = param.detach().clone()
    loss_after, kl_after = terms.losses(new)
    return {**metrics, "loss_after": loss_after, "kl_after": kl_after, "ls_steps": 0, "accepted": True}, new
