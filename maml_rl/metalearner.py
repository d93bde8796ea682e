"""MAML's inner loop and the per-task terms of its outer step (Finn et al. 2017, Sec. 5.3), batched over tasks.

Inner loop, for every task i at once: θ'_i = θ − α ∇_θ L_inner(θ; train_i), with L_inner the REINFORCE loss
on the task's train episodes. The meta-parameters θ are expanded to a task axis, so the per-task gradients
of the summed loss come out of one backward pass. With ``first-order: false`` the graph of that gradient is
kept, making the outer gradient second-order.

The outer step (:func:`maml_rl.trpo.trpo_step`) needs three sums over the meta-batch's tasks, which
:class:`EpisodeTerms` computes for the tasks whose episodes this process holds: the gradient of the
post-adaptation surrogate L_outer(θ) = −mean_t[π_θ'(a|s)/π_old(a|s) · A] on the valid episodes, the
Fisher-vector product of the mean KL(π_old ‖ π_θ') (π_old: the adapted policy at the current θ, held fixed),
and the surrogate and KL at candidate parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from maml_rl.config import Config
from maml_rl.episodes import Episodes, discounted_returns, masked_mean
from maml_rl.optim import flatten, unflatten
from maml_rl.policies.base import Params, Policy, gaussian_kl, gaussian_log_prob


def reinforce_loss(policy: Policy, params: Params, episodes: Episodes) -> Tensor:
    """Per-task REINFORCE loss ``(tasks,)``: −mean over valid steps of log π(a|history) · advantage."""
    mean, log_std = policy.sequence_of(episodes, params)
    log_probs = gaussian_log_prob(episodes.actions, mean, log_std)
    return -masked_mean(log_probs * episodes.advantages, episodes.mask)


def lvc_loss(policy: Policy, params: Params, episodes: Episodes) -> Tensor:
    """Per-task low-variance curvature loss ``(tasks,)``: −mean over valid steps of π/⊥π · advantage (⊥: stop
    gradient; Rothfuss et al. 2019, "ProMP", Eq. 9). Its value is −mean(A) and its gradient REINFORCE's; its
    Hessian adds mean(A · ∇log π ∇log πᵀ), the curvature the pre-update sampling distribution contributes."""
    mean, log_std = policy.sequence_of(episodes, params)
    log_probs = gaussian_log_prob(episodes.actions, mean, log_std)
    return -masked_mean(torch.exp(log_probs - log_probs.detach()) * episodes.advantages, episodes.mask)


def importance_weighted_reinforce_loss(policy: Policy, params: Params, episodes: Episodes) -> Tensor:
    """REINFORCE on episodes sampled by another policy: −mean(⊥(π/π_sample) · log π · A). At the sampling
    parameters it is :func:`reinforce_loss` (up to the rounding of the recomputed log-probabilities)."""
    mean, log_std = policy.sequence_of(episodes, params)
    log_probs = gaussian_log_prob(episodes.actions, mean, log_std)
    weights = torch.exp(log_probs - episodes.log_probs).detach()
    return -masked_mean(weights * log_probs * episodes.advantages, episodes.mask)


def likelihood_ratio_loss(policy: Policy, params: Params, episodes: Episodes) -> Tensor:
    """−mean(π/π_sample · A): ProMP's likelihood-ratio inner objective J^LR (Rothfuss et al. 2019, Eq. 11), which
    reuses episodes sampled by an older policy; at the sampling parameters, :func:`lvc_loss`."""
    mean, log_std = policy.sequence_of(episodes, params)
    log_probs = gaussian_log_prob(episodes.actions, mean, log_std)
    return -masked_mean(torch.exp(log_probs - episodes.log_probs) * episodes.advantages, episodes.mask)


REUSE_INNER_LOSS_FUNCTIONS: dict[str, Callable[[Policy, Params, Episodes], Tensor]] = {
    "reinforce": importance_weighted_reinforce_loss,
    "lvc": likelihood_ratio_loss,
}
"""The inner loss of each estimator when the pre-update episodes are reused away from the parameters that
sampled them (ProMP's several outer steps per meta-batch)."""


INNER_LOSS_FUNCTIONS: dict[str, Callable[[Policy, Params, Episodes], Tensor]] = {
    "reinforce": reinforce_loss,
    "lvc": lvc_loss,
    "dice": reinforce_loss,  # DiCE's credit for the pre-update episodes is a term of the outer loss
}
"""The inner loss of each ``inner-loss`` estimator."""


def mean_valid_returns(valid: Episodes, gamma: float) -> Tensor:
    """Each task's mean discounted return R̂ of its episodes ``(tasks,)``."""
    return discounted_returns(valid.rewards, valid.mask, gamma)[:, 0].mean(-1)


def leave_one_out_baseline(returns: Tensor) -> Tensor:
    """For each task, the mean of the *other* tasks' ``returns`` (0 for a single task; Mao et al. 2019)."""
    tasks = returns.shape[0]
    return (returns.sum() - returns) / (tasks - 1) if tasks > 1 else torch.zeros_like(returns)


def pre_update_score_term(
    policy: Policy, params: Params, train: Episodes, valid: Episodes, gamma: float, baseline: Tensor | None = None
) -> Tensor:
    """Per-task DiCE term ``(tasks,)`` for the pre-update episodes' sampling distribution; value 0.

    MAML's objective is J(θ) = E_{τ∼π_θ}[R(θ'(θ, τ))]: the pre-update episodes τ are drawn from π_θ, so
    ∇J = E[∇_θ R(θ') + R(θ') ∇_θ log π_θ(τ)] (the score-function identity; the magic-box operator of DiCE,
    Foerster et al. 2018, applied to the pre-update episodes). This term is −(⊡(S) − 1) · (R̂ − b) / c, with
    ⊡(S) = exp(S − ⊥S), S the summed log-probability of the task's train episodes under ``params`` (θ), R̂ the
    mean discounted return of its valid episodes, b a baseline that does not depend on this task's episodes
    (``baseline``, by default :func:`leave_one_out_baseline` of these tasks' R̂), and c = the valid advantages'
    normalisation scale × mean episode length, which puts R̂ in the units of the surrogate loss (the gradient of
    −mean(ratio · A/σ) over N·T̄ steps estimates −∇R/(σ·T̄)).
    """
    mean, log_std = policy.sequence_of(train, params)
    log_probs = gaussian_log_prob(train.actions, mean, log_std) * train.mask
    score = log_probs.sum((1, 2))
    magic = torch.exp(score - score.detach())
    returns = mean_valid_returns(valid, gamma)
    baseline = leave_one_out_baseline(returns) if baseline is None else baseline
    scale = valid.advantage_scale if valid.advantage_scale is not None else torch.ones_like(returns)
    mean_length = valid.mask.sum((1, 2)) / valid.num_episodes
    return -(magic - 1) * (returns - baseline) / (scale * mean_length)


def surrogate_and_kl(
    mean: Tensor, log_std: Tensor, episodes: Episodes, old_mean: Tensor, old_log_std: Tensor
) -> tuple[Tensor, Tensor]:
    """Per-task TRPO surrogate loss and mean KL(π_old ‖ π) over valid steps, each ``(tasks,)``, given the
    policy's action means and log-std on ``episodes``."""
    log_probs = gaussian_log_prob(episodes.actions, mean, log_std)
    ratio = torch.exp(log_probs - episodes.log_probs)
    loss = -masked_mean(ratio * episodes.advantages, episodes.mask)
    kl = masked_mean(gaussian_kl(old_mean, old_log_std, mean, log_std), episodes.mask)
    return loss, kl


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
    inner_loss: str | Callable[[Policy, Params, Episodes], Tensor] = "reinforce",
) -> Adaptation:
    """``num_steps`` gradient steps of every task on its own episodes; ``params`` carry a task axis.

    ``adapted`` names the parameters the inner loop changes (default: all); the others pass through as they
    are; ``inner_loss`` names the loss (see :data:`INNER_LOSS_FUNCTIONS`) or is the loss function itself. With
    ``first_order=False`` the result stays differentiable through the inner gradients (second order), and the
    trace holds the gradient of *every* parameter, so that the Fisher-vector product can apply the Hessian of the
    inner loss to any vector (see :meth:`EpisodeTerms.fisher_product`).

    With ``fast_lr == 0`` (adaptation by memory alone, as RL²) θ' = θ and J = I exactly: no inner gradient is
    computed and the trace is empty, so the outer step costs no inner Hessian products.
    """
    if fast_lr == 0:
        return Adaptation(dict(params), [], [])
    adapted = set(params) if adapted is None else set(adapted)
    loss_of = INNER_LOSS_FUNCTIONS[inner_loss] if isinstance(inner_loss, str) else inner_loss
    points, grads_trace = [], []
    for _ in range(num_steps):
        names = list(params) if not first_order else [k for k in params if k in adapted]
        loss = loss_of(policy, params, episodes).sum()
        grads = dict(zip(names, torch.autograd.grad(loss, [params[k] for k in names], create_graph=not first_order)))
        points.append(params)
        grads_trace.append(grads)
        # a parameter that does not adapt still becomes a new graph node (a view), so that a derivative with
        # respect to the next point is the partial one at that point, not a total one through earlier steps
        params = {name: p - fast_lr * grads[name] if name in adapted else p.view_as(p) for name, p in params.items()}
    return Adaptation(params, points, grads_trace)


class MetaLearner:
    """A policy's inner loop, with the config's ``fast-lr``, ``num-steps``, ``first-order`` and ``inner-params``,
    and the one place the policy's meta-parameters change (:meth:`write_params`)."""

    def __init__(self, policy: Policy, config: Config) -> None:
        self.policy, self.config = policy, config
        self.adapted_names: tuple[str, ...] = (
            tuple(policy.meta_params()) if config.inner_params == "all" else policy.readout_names()
        )
        """The parameters the inner loop changes (``inner-params: readout``: the Gaussian head's; ANIL,
        Raghu et al. 2020)."""

    def adapt(self, train: Episodes, params: Params | None = None, create_graph: bool | None = None) -> Adaptation:
        """θ'_i for every task of ``train``, from per-task ``params`` (default: the meta-parameters θ).

        ``create_graph`` keeps the inner gradients' graph (default: unless ``first-order``); ``False`` for
        values alone (evaluation, the line search)."""
        cfg = self.config
        params = self.policy.task_params(train.num_tasks) if params is None else params
        first_order = cfg.first_order if create_graph is None else not create_graph
        return adapt(
            self.policy, params, train, cfg.fast_lr, cfg.num_steps, first_order, self.adapted_names, cfg.inner_loss
        )

    def terms(
        self,
        train: Episodes,
        valid: Episodes,
        adaptation: Adaptation,
        total_tasks: int,
        dice_baseline: Tensor | None = None,
    ) -> EpisodeTerms:
        """The outer step's terms of these episodes' tasks, out of a meta-batch of ``total_tasks`` tasks
        (``dice_baseline``: see :class:`EpisodeTerms`)."""
        return EpisodeTerms(self, train, valid, adaptation, total_tasks, dice_baseline)

    @torch.no_grad()
    def write_params(self, params: Params) -> None:
        """The one place the meta-parameters change."""
        for name, p in self.policy.named_parameters():
            p.copy_(params[name])


class MetaBatchTerms(Protocol):
    """The per-task terms of a meta-batch's outer step, summed over the tasks it holds and divided by the
    meta-batch's task count. :class:`EpisodeTerms` computes them in this process; a set of task slices
    (:class:`maml_rl.metabatch.LocalSlices`, :class:`maml_rl.scale.ray_shards.RayShards`) adds its slices' up."""

    def gradient(self) -> tuple[float, Tensor]:
        """The surrogate loss at the current θ and its flat gradient. Called first, once per meta-batch."""

    def fisher_product(self, vector: Tensor) -> Tensor:
        """Σ_i J_iᵀ F_i J_i v (divided by the task count; no damping)."""

    def losses(self, theta: Tensor) -> tuple[float, float]:
        """Surrogate loss and KL after adapting from the flat parameters ``theta``."""

    def proximal_objective(self, theta: Tensor) -> tuple[float, Tensor]:
        """ProMP's loss at the flat parameters ``theta`` and its flat gradient (the ``ppo`` outer step)."""


class EpisodeTerms:
    """:class:`MetaBatchTerms` of the tasks whose episodes this process holds (``total_tasks``: the meta-batch's
    task count, of which these are some or all). ``dice_baseline``: the baseline of each task's DiCE term
    (default: the leave-one-out mean over these tasks; a part of a slice is given its slice's)."""

    def __init__(
        self,
        learner: MetaLearner,
        train: Episodes,
        valid: Episodes,
        adaptation: Adaptation,
        total_tasks: int,
        dice_baseline: Tensor | None = None,
    ) -> None:
        self.learner, self.train, self.valid, self.adaptation = learner, train, valid, adaptation
        self.total_tasks, self.dice_baseline = total_tasks, dice_baseline
        self._product: Callable[[Tensor], Tensor] | None = None
        self._pre_update: tuple[Tensor, Tensor] | None = None

    def gradient(self) -> tuple[float, Tensor]:
        """The surrogate loss at θ and its flat gradient; fixes π_old and builds the Fisher-vector product."""
        policy, valid = self.learner.policy, self.valid
        theta = policy.meta_params()
        mean, log_std = policy.sequence_of(valid, self.adaptation.params)
        self.old = mean.detach(), log_std.detach()  # π_old: the adapted policy at the current θ
        loss, _ = surrogate_and_kl(mean, log_std, valid, *self.old)
        loss_sum = loss.sum() / self.total_tasks
        objective = loss_sum
        cfg = self.learner.config
        if cfg.inner_loss == "dice" and cfg.fast_lr != 0:  # without an inner step θ' does not depend on τ
            at_theta = policy.task_params(self.train.num_tasks)
            term = pre_update_score_term(policy, at_theta, self.train, valid, cfg.gamma, self.dice_baseline)
            objective = loss_sum + term.sum() / self.total_tasks  # the same value: the term's is 0
        # the inner steps' graphs serve the Fisher products too; without them, free this pass's graph before
        # the products build their own (the same values either way)
        inner_graph = any(g.requires_grad for grads in self.adaptation.grads for g in grads.values())
        grads = flatten(torch.autograd.grad(objective, list(theta.values()), retain_graph=inner_graph))
        self._product = self._jtfj_product()
        return loss_sum.item(), grads

    def fisher_product(self, vector: Tensor) -> Tensor:
        """Σ_i J_iᵀ F_i J_i v over these tasks, divided by the meta-batch's task count (no damping)."""
        if self._product is None:
            raise RuntimeError("EpisodeTerms.fisher_product before gradient(): call gradient() first")
        return self._product(vector)

    def losses(self, theta: Tensor) -> tuple[float, float]:
        """Surrogate loss and KL after adapting from ``theta`` (no outer graph), summed over these tasks and
        divided by the meta-batch's task count."""
        policy = self.learner.policy
        leaf = {k: v.detach().requires_grad_() for k, v in unflatten(theta, policy.meta_params()).items()}
        adapted = self.learner.adapt(self.train, policy.task_params(self.train.num_tasks, leaf), create_graph=False)
        with torch.no_grad():
            mean, log_std = policy.sequence_of(self.valid, adapted.params)
            loss, kl = surrogate_and_kl(mean, log_std, self.valid, *self.old)
        return (loss.sum() / self.total_tasks).item(), (kl.sum() / self.total_tasks).item()

    def proximal_objective(self, theta: Tensor) -> tuple[float, Tensor]:
        """ProMP's loss (Rothfuss et al. 2019, Eq. 12) at flat ``theta`` and its flat gradient, summed over these
        tasks and divided by the meta-batch's task count:

        −mean over valid steps of min(r·A, clip(r, 1 − ε, 1 + ε)·A) + η · mean over train steps of
        KL(π_θ_old ‖ π_θ), with r = π_θ'(a)/π_θ'_old(a) on the valid episodes, θ' the inner step from θ with the
        likelihood-ratio inner objective (the train episodes reused; :data:`REUSE_INNER_LOSS_FUNCTIONS`), and
        θ_old the parameters the train episodes were sampled with. ε: ``ppo-clip``, η: ``ppo-kl-penalty``.
        """
        learner, train, valid = self.learner, self.train, self.valid
        policy, cfg = learner.policy, learner.config
        if self._pre_update is None:  # the policies that sampled the train and the valid episodes
            with torch.no_grad():
                self._pre_update = policy.sequence_of(train, policy.task_params(train.num_tasks))
                self.old = policy.sequence_of(valid, {k: v.detach() for k, v in self.adaptation.params.items()})
        leaf = {k: v.detach().requires_grad_() for k, v in unflatten(theta, policy.meta_params()).items()}
        params = policy.task_params(train.num_tasks, leaf)
        adapted = adapt(
            policy,
            params,
            train,
            cfg.fast_lr,
            cfg.num_steps,
            cfg.first_order,
            learner.adapted_names,
            REUSE_INNER_LOSS_FUNCTIONS[cfg.inner_loss],
        ).params
        mean, log_std = policy.sequence_of(valid, adapted)
        ratio = torch.exp(gaussian_log_prob(valid.actions, mean, log_std) - valid.log_probs)
        clipped = torch.minimum(
            ratio * valid.advantages, ratio.clamp(1 - cfg.ppo_clip, 1 + cfg.ppo_clip) * valid.advantages
        )
        loss = -masked_mean(clipped, valid.mask)
        if cfg.ppo_kl_penalty:
            pre_mean, pre_log_std = policy.sequence_of(train, params)
            kl = masked_mean(gaussian_kl(*self._pre_update, pre_mean, pre_log_std), train.mask)
            loss = loss + cfg.ppo_kl_penalty * kl
        total = loss.sum() / self.total_tasks
        return total.item(), flatten(torch.autograd.grad(total, list(leaf.values())))

    def _jtfj_product(self) -> Callable[[Tensor], Tensor]:
        """v ↦ Σ_i J_iᵀ F_i J_i v / total_tasks over these tasks (no damping): the Fisher-vector product of the
        meta-batch's mean KL.

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
        policy, adaptation, valid = self.learner.policy, self.adaptation, self.valid
        fast_lr, subsample = self.learner.config.fast_lr, self.learner.config.fisher_subsample
        old_mean, old_log_std = self.old
        if subsample < 1:  # the KL of the first episodes of each task only (opt-in: not the exact product)
            count = max(1, math.ceil(subsample * valid.num_episodes))
            valid = valid.first_episodes(count)
            old_mean, old_log_std = old_mean[:, :, :count], old_log_std[:, :, :count]
        num_tasks = valid.num_tasks
        second_order = any(g.requires_grad for grads in adaptation.grads for g in grads.values())
        leaf = {k: v.detach().requires_grad_() for k, v in adaptation.params.items()}
        outputs = policy.sequence_of(valid, leaf)
        at_outputs = [y.detach().requires_grad_() for y in outputs]
        kl = masked_mean(gaussian_kl(old_mean, old_log_std, *at_outputs), valid.mask).sum() / self.total_tasks
        grad_kl_y = torch.autograd.grad(kl, at_outputs, create_graph=True)
        probes = [torch.zeros_like(y, requires_grad=True) for y in outputs]
        jt_probes = torch.autograd.grad(outputs, list(leaf.values()), probes, create_graph=True)  # u ↦ J_yᵀ u
        like = policy.meta_params()

        adapted = set(self.learner.adapted_names)
        everything = adapted >= set(like)

        def through_inner_steps(x: Params, steps: range, transposed: bool) -> Params:
            # Each inner step's Jacobian is I − α P H_j, with P the projection onto the adapted parameters
            # (P = I when all adapt) and H_j v one backward through the (full) inner gradient's graph.
            for j in steps:
                point, grads = adaptation.points[j], adaptation.grads[j]
                if everything:  # I − α H_j is symmetric
                    hx = torch.autograd.grad(
                        list(grads.values()), list(point.values()), list(x.values()), retain_graph=True
                    )
                    x = {k: x[k] - fast_lr * h for k, h in zip(x, hx)}
                elif not transposed:  # (I − α P H_j) x
                    hx = torch.autograd.grad(
                        list(grads.values()),
                        list(point.values()),
                        [x[k] for k in grads],
                        retain_graph=True,
                        materialize_grads=True,
                    )
                    x = {k: x[k] - fast_lr * h if k in adapted else x[k] for k, h in zip(point, hx)}
                else:  # (I − α H_j P) x
                    rows = [k for k in grads if k in adapted]
                    hx = torch.autograd.grad(
                        [grads[k] for k in rows],
                        list(point.values()),
                        [x[k] for k in rows],
                        retain_graph=True,
                        materialize_grads=True,
                    )
                    x = {k: x[k] - fast_lr * h for k, h in zip(point, hx)}
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
