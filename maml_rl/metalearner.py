"""MAML-TRPO (Finn et al. 2017, Sec. 5.3; Schulman et al. 2015), batched over tasks.

Inner loop, for every task i at once: θ'_i = θ − α ∇_θ L_inner(θ; train_i), with L_inner the REINFORCE loss
on the task's train episodes. The meta-parameters θ are expanded to a task axis, so the per-task gradients
of the summed loss come out of one backward pass. With ``first_order=False`` the graph of that gradient is
kept, making the outer gradient second-order.

Outer step: TRPO on the mean over tasks of the post-adaptation surrogate
L_outer(θ) = −mean_t[π_θ'(a|s)/π_old(a|s) · A] on the valid episodes, with the Hessian of the mean
KL(π_old ‖ π_θ') as the metric (π_old: the adapted policy at the current θ, held fixed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Collection, Protocol

import torch
from torch import Tensor

from maml_rl.episodes import Episodes, masked_mean
from maml_rl.optim import conjugate_gradient, flatten, unflatten
from maml_rl.policies.base import Params, Policy, gaussian_kl, gaussian_log_prob


def reinforce_loss(policy: Policy, params: Params, episodes: Episodes) -> Tensor:
    """Per-task REINFORCE loss ``(tasks,)``: −mean over valid steps of log π(a|history) · advantage."""
    mean, log_std = policy.sequence_of(episodes, params)
    log_probs = gaussian_log_prob(episodes.actions, mean, log_std)
    return -masked_mean(log_probs * episodes.advantages, episodes.mask)


@dataclass
class Adaptation:
    """Adapted per-task parameters θ' and, per inner step j, the point θ^(j) and the gradient taken there.

    The trace lets the Fisher-vector product apply the Jacobian J = ∂θ'/∂θ without third-order graphs.
    """

    params: Params
    points: list[Params]
    grads: list[Params]


def adapt(
    policy: Policy,
    params: Params,
    episodes: Episodes,
    fast_lr: float,
    num_steps: int = 1,
    first_order: bool = False,
    adapted: Collection[str] | None = None,
) -> Adaptation:
    """``num_steps`` gradient steps of every task on its own episodes; ``params`` carry a task axis.

    ``adapted`` names the parameters the inner loop changes (default: all); the others pass through as they
    are. With ``first_order=False`` the result stays differentiable through the inner gradients (second order),
    and the trace holds the gradient of *every* parameter, so that the Fisher-vector product can apply the
    Hessian of the inner loss to any vector (see :meth:`MAMLTRPO.jtfj_fvp`).
    """
    adapted = set(params) if adapted is None else set(adapted)
    points, grads_trace = [], []
    for _ in range(num_steps):
        names = list(params) if not first_order else [k for k in params if k in adapted]
        loss = reinforce_loss(policy, params, episodes).sum()
        grads = dict(zip(names, torch.autograd.grad(loss, [params[k] for k in names], create_graph=not first_order)))
        points.append(params)
        grads_trace.append(grads)
        # a parameter that does not adapt still becomes a new graph node (a view), so that a derivative with
        # respect to the next point is the partial one at that point, not a total one through earlier steps
        params = {name: p - fast_lr * grads[name] if name in adapted else p.view_as(p) for name, p in params.items()}
    return Adaptation(params, points, grads_trace)


def surrogate_and_kl(
    policy: Policy, params: Params, episodes: Episodes, old_mean: Tensor, old_log_std: Tensor
) -> tuple[Tensor, Tensor]:
    """Per-task TRPO surrogate loss and mean KL(π_old ‖ π_params) over valid steps, each ``(tasks,)``."""
    mean, log_std = policy.sequence_of(episodes, params)
    return surrogate_and_kl_of(mean, log_std, episodes, old_mean, old_log_std)


def surrogate_and_kl_of(
    mean: Tensor, log_std: Tensor, episodes: Episodes, old_mean: Tensor, old_log_std: Tensor
) -> tuple[Tensor, Tensor]:
    """:func:`surrogate_and_kl` given the policy's action means and log-std on ``episodes``."""
    log_probs = gaussian_log_prob(episodes.actions, mean, log_std)
    ratio = torch.exp(log_probs - episodes.log_probs)
    loss = -masked_mean(ratio * episodes.advantages, episodes.mask)
    kl = masked_mean(gaussian_kl(old_mean, old_log_std, mean, log_std), episodes.mask)
    return loss, kl


@dataclass(frozen=True)
class TRPOSettings:
    """Hyperparameters of the inner loop and the TRPO outer step (see :class:`maml_rl.config.Config`)."""

    fast_lr: float = 0.1
    num_steps: int = 1
    first_order: bool = False
    max_kl: float = 1e-2
    cg_iters: int = 10
    cg_damping: float = 1e-5
    ls_max_steps: int = 15
    ls_backtrack_ratio: float = 0.8
    inner_params: str = "all"
    """Parameters the inner loop adapts: ``all``, or ``readout`` (the Gaussian head; ANIL, Raghu et al. 2020)."""
    fvp: str = "jtfj"
    """Fisher-vector product: ``jtfj`` (Jᵀ F J, no third-order graph) or ``autograd`` (plain double backward)."""


FVP_METHODS = ("jtfj", "autograd")
INNER_PARAMS = ("all", "readout")


class MAMLTRPO:
    """The meta-learner: adapts per-task parameters and takes TRPO steps on the policy's meta-parameters."""

    def __init__(self, policy: Policy, settings: TRPOSettings) -> None:
        if settings.fvp not in FVP_METHODS:
            raise ValueError(f"unknown fvp method {settings.fvp!r}; choose one of {FVP_METHODS}")
        if settings.inner_params not in INNER_PARAMS:
            raise ValueError(f"unknown inner_params {settings.inner_params!r}; choose one of {INNER_PARAMS}")
        self.policy, self.settings = policy, settings
        self.adapted_names: tuple[str, ...] = (
            tuple(policy.meta_params()) if settings.inner_params == "all" else policy.readout_names()
        )
        """The parameters the inner loop changes."""

    def adapt(self, train: Episodes, theta: Params | None = None, create_graph: bool | None = None) -> Adaptation:
        """θ'_i for every task of ``train`` (θ: the policy's meta-parameters unless given)."""
        s = self.settings
        theta = self.policy.meta_params() if theta is None else theta
        first_order = s.first_order if create_graph is None else not create_graph
        task_theta = self.policy.task_params(train.num_tasks, theta)
        return adapt(self.policy, task_theta, train, s.fast_lr, s.num_steps, first_order, self.adapted_names)

    def step(self, train: Episodes, valid: Episodes, adaptation: Adaptation | None = None) -> dict[str, Any]:
        """One TRPO step on the post-adaptation surrogate of these episodes; returns the step's metrics.

        ``adaptation`` may pass the θ' that sampled ``valid`` (its graph is reused); it is recomputed otherwise.
        See :meth:`outer_step`.
        """
        adaptation = self.adapt(train) if adaptation is None else adaptation
        return self.outer_step(EpisodeTerms(self, train, valid, adaptation, train.num_tasks))

    def outer_step(self, terms: "MetaBatchTerms") -> dict[str, Any]:
        """One TRPO step from the sums over tasks that ``terms`` computes, wherever its tasks live.

        Conjugate gradient and the line search run here, once; ``terms`` supplies the gradient, the
        Fisher-vector products and the losses at candidate parameters as sums over its tasks, each already
        divided by the meta-batch's task count. The policy's parameters change only if the line search accepts
        a step. A non-finite loss, gradient or search direction rejects the step; ``metrics["nonfinite"]`` then
        names it.
        """
        s, policy = self.settings, self.policy
        theta = policy.meta_params()
        loss_before, grads = terms.gradient()
        metrics: dict[str, Any] = {"loss_before": loss_before, "grad_norm": grads.norm().item()}
        rejected = {**metrics, "loss_after": metrics["loss_before"], "kl_after": 0.0, "accepted": False, "ls_steps": 0}
        for name, value in (("loss", torch.tensor(loss_before)), ("gradient", grads)):
            if not torch.isfinite(value).all():
                return {**rejected, "nonfinite": name}

        def fvp(vector: Tensor) -> Tensor:
            return terms.fisher_product(vector) + s.cg_damping * vector

        stepdir, h_stepdir = conjugate_gradient(fvp, grads, s.cg_iters)
        shs = 0.5 * stepdir.dot(h_stepdir)
        if not (torch.isfinite(stepdir).all() and torch.isfinite(shs)):
            return {**rejected, "nonfinite": "search direction"}
        if shs <= 0:  # no direction to move in (e.g. a zero gradient)
            return rejected
        full_step = stepdir * torch.sqrt(s.max_kl / shs)  # so that ½ stepᵀ H step = max_kl

        theta0 = flatten(theta).detach()
        for k in range(s.ls_max_steps):
            candidate = theta0 - s.ls_backtrack_ratio**k * full_step
            loss_new, kl_new = terms.losses(candidate)
            if loss_new < metrics["loss_before"] and kl_new < s.max_kl:
                self.write_params(unflatten(candidate, theta))
                return {**metrics, "loss_after": loss_new, "kl_after": kl_new, "ls_steps": k + 1, "accepted": True}
        return {**rejected, "ls_steps": s.ls_max_steps}  # nothing improved inside the trust region

    def autograd_fvp(self, kl: Tensor, theta: Params) -> Callable[[Tensor], Tensor]:
        """v ↦ (∇²_θ KL + damping·I) v by double backward through the whole (second-order) adaptation.

        The reference implementation: simple, but it differentiates the inner gradient twice more.
        """
        product = self.autograd_product(kl, theta)
        return lambda vector: product(vector) + self.settings.cg_damping * vector

    def autograd_product(self, kl: Tensor, theta: Params) -> Callable[[Tensor], Tensor]:
        """v ↦ ∇²_θ KL v (no damping), by double backward."""
        grad_kl = flatten(torch.autograd.grad(kl, list(theta.values()), create_graph=True))

        def product(vector: Tensor) -> Tensor:
            return flatten(torch.autograd.grad(grad_kl.dot(vector), list(theta.values()), retain_graph=True))

        return product

    def jtfj_fvp(
        self, adaptation: Adaptation, valid: Episodes, old_mean: Tensor, old_log_std: Tensor
    ) -> Callable[[Tensor], Tensor]:
        """v ↦ (Σ_i J_iᵀ F_i J_i + damping·I) v, equal to :meth:`autograd_fvp` at the current parameters
        (the Fisher of the mean KL over the tasks of ``valid``; see :meth:`jtfj_product`)."""
        product = self.jtfj_product(adaptation, valid, old_mean, old_log_std, valid.num_tasks)
        return lambda vector: product(vector) + self.settings.cg_damping * vector

    def jtfj_product(
        self, adaptation: Adaptation, valid: Episodes, old_mean: Tensor, old_log_std: Tensor, total_tasks: int
    ) -> Callable[[Tensor], Tensor]:
        """v ↦ Σ_i J_iᵀ F_i J_i v / total_tasks over the tasks of ``valid`` (no damping): the Fisher-vector
        product of the mean KL over a meta-batch of ``total_tasks`` tasks, of which ``valid`` holds some.

        At θ the adapted policy equals π_old, so ∂KL/∂θ' = 0 and the Hessian of KL(θ'(θ)) reduces to
        Jᵀ (∇²_θ' KL) J, with J = ∂θ'/∂θ and ∇²_θ' KL the Fisher of the adapted policy. Each inner step
        θ^(j+1) = θ^(j) − α g_j contributes a factor (I − α H_j), with H_j v the (symmetric) product of the
        inner Hessian, one backward through g_j's graph. Nothing is differentiated three times.

        The Fisher itself is applied in Gauss-Newton form F = J_yᵀ H_y J_y (Martens 2014, "New insights and
        perspectives on the natural gradient method", Sec. 9), y = (action means, log-std) the policy's outputs
        and H_y the KL's Hessian in y: exact here because ∂KL/∂y = 0 at π_old. J_y x comes from differentiating
        the linear map u ↦ J_yᵀ u (built once) with respect to u, so each product costs about two backward
        passes through the policy instead of a double backward through its gradient.
        """
        policy, s = self.policy, self.settings
        num_tasks = valid.num_tasks
        second_order = any(g.requires_grad for grads in adaptation.grads for g in grads.values())
        leaf = {k: v.detach().requires_grad_() for k, v in adaptation.params.items()}
        outputs = policy.sequence_of(valid, leaf)
        at_outputs = [y.detach().requires_grad_() for y in outputs]
        kl = masked_mean(gaussian_kl(old_mean, old_log_std, *at_outputs), valid.mask).sum() / total_tasks
        grad_kl_y = torch.autograd.grad(kl, at_outputs, create_graph=True)
        probes = [torch.zeros_like(y, requires_grad=True) for y in outputs]
        jt_probes = torch.autograd.grad(outputs, list(leaf.values()), probes, create_graph=True)  # u ↦ J_yᵀ u
        like = policy.meta_params()

        adapted = set(self.adapted_names)
        everything = adapted >= set(like)

        def through_inner_steps(x: Params, steps: range, transposed: bool) -> Params:
            # Each inner step's Jacobian is I − α P H_j, with P the projection onto the adapted parameters
            # (P = I when all adapt) and H_j v one backward through the (full) inner gradient's graph.
            for j in steps:
                point, grads = adaptation.points[j], adaptation.grads[j]
                if everything:  # I − α H_j is symmetric
                    hx = torch.autograd.grad(list(grads.values()), list(point.values()), list(x.values()), retain_graph=True)
                    x = {k: x[k] - s.fast_lr * h for k, h in zip(x, hx)}
                elif not transposed:  # (I − α P H_j) x
                    hx = torch.autograd.grad(list(grads.values()), list(point.values()), [x[k] for k in grads], retain_graph=True,
                                             materialize_grads=True)
                    x = {k: x[k] - s.fast_lr * h if k in adapted else x[k] for k, h in zip(point, hx)}
                else:  # (I − α H_j P) x
                    rows = [k for k in grads if k in adapted]
                    hx = torch.autograd.grad([grads[k] for k in rows], list(point.values()), [x[k] for k in rows],
                                             retain_graph=True, materialize_grads=True)
                    x = {k: x[k] - s.fast_lr * h for k, h in zip(point, hx)}
            return x

        def fisher(x: Params) -> Params:
            jx = torch.autograd.grad(jt_probes, probes, list(x.values()), retain_graph=True)  # J_y x
            hjx = torch.autograd.grad(grad_kl_y, at_outputs, jx, retain_graph=True)  # H_y J_y x
            return dict(zip(leaf, torch.autograd.grad(outputs, list(leaf.values()), hjx, retain_graph=True)))

        def product(vector: Tensor) -> Tensor:
            u = {k: v.expand(num_tasks, *v.shape) for k, v in unflatten(vector, like).items()}
            if second_order:
                u = through_inner_steps(u, range(len(adaptation.points)), transposed=False)  # J v
            w = fisher(u)  # F J v
            if second_order:
                w = through_inner_steps(w, range(len(adaptation.points) - 1, -1, -1), transposed=True)  # Jᵀ F J v
            return flatten({k: t.sum(0) for k, t in w.items()})

        return product

    def evaluate(
        self, theta: Params, train: Episodes, valid: Episodes, old_mean: Tensor, old_log_std: Tensor,
        total_tasks: int | None = None,
    ) -> tuple[float, float]:
        """Surrogate loss and KL after adapting from ``theta`` (no outer graph), summed over the tasks and divided
        by ``total_tasks`` (default: the tasks of ``valid``, giving their means)."""
        total = valid.num_tasks if total_tasks is None else total_tasks
        theta = {k: v.detach().requires_grad_() for k, v in theta.items()}
        adapted = self.adapt(train, theta, create_graph=False).params
        with torch.no_grad():
            loss, kl = surrogate_and_kl(self.policy, adapted, valid, old_mean, old_log_std)
        return (loss.sum() / total).item(), (kl.sum() / total).item()

    @torch.no_grad()
    def write_params(self, params: Params) -> None:
        """The one place the meta-parameters change."""
        for name, p in self.policy.named_parameters():
            p.copy_(params[name])



class MetaBatchTerms(Protocol):
    """The per-task terms of a meta-batch's TRPO step, summed over the tasks it holds and divided by the
    meta-batch's task count. :class:`EpisodeTerms` computes them in this process; a Ray shard holds one for
    its slice of tasks and the driver adds the slices up (:mod:`maml_rl.scale.ray_shards`)."""

    def gradient(self) -> tuple[float, Tensor]:
        """The surrogate loss at the current θ and its flat gradient. Called first, once per meta-batch."""

    def fisher_product(self, vector: Tensor) -> Tensor:
        """Σ_i J_iᵀ F_i J_i v (divided by the task count; no damping)."""

    def losses(self, theta: Tensor) -> tuple[float, float]:
        """Surrogate loss and KL after adapting from the flat parameters ``theta``."""


class EpisodeTerms:
    """:class:`MetaBatchTerms` of the tasks whose episodes this process holds (``total_tasks``: the meta-batch's
    task count, of which these are some or all)."""

    def __init__(self, learner: MAMLTRPO, train: Episodes, valid: Episodes, adaptation: Adaptation,
                 total_tasks: int) -> None:
        self.learner, self.train, self.valid, self.adaptation = learner, train, valid, adaptation
        self.total_tasks = total_tasks
        self._product: Callable[[Tensor], Tensor] | None = None

    def gradient(self) -> tuple[float, Tensor]:
        learner, valid = self.learner, self.valid
        theta = learner.policy.meta_params()
        mean, log_std = learner.policy.sequence_of(valid, self.adaptation.params)
        self.old = mean.detach(), log_std.detach()  # π_old: the adapted policy at the current θ
        loss, kl = surrogate_and_kl_of(mean, log_std, valid, *self.old)
        loss_sum = loss.sum() / self.total_tasks
        grads = flatten(torch.autograd.grad(loss_sum, list(theta.values()), retain_graph=True))
        if learner.settings.fvp == "autograd":
            self._product = learner.autograd_product(kl.sum() / self.total_tasks, theta)
        else:
            self._product = learner.jtfj_product(self.adaptation, valid, *self.old, self.total_tasks)
        return loss_sum.item(), grads

    def fisher_product(self, vector: Tensor) -> Tensor:
        if self._product is None:
            raise RuntimeError("EpisodeTerms.fisher_product before gradient(): call gradient() first")
        return self._product(vector)

    def losses(self, theta: Tensor) -> tuple[float, float]:
        like = self.learner.policy.meta_params()
        return self.learner.evaluate(unflatten(theta, like), self.train, self.valid, *self.old, self.total_tasks)
