"""The tensor operations of plastic synapses, written so that their graphs keep few trace-sized tensors.

A plastic layer's Hebbian trace has H × H entries per episode and time step, so in a meta-batch it is the
largest thing the learner holds: every trace-sized intermediate that autograd saves for the backward pass
(and, in TRPO's Fisher-vector products, for the backward of the backward) multiplies the meta-batch's memory.
Written with plain tensor operations, one plastic step saves four trace-sized tensors (α ⊙ Hebb, the
coactivity h_t h_{t−1}ᵀ, the unclipped trace, the trace) and their backward graphs as many again.

Two closed families of operations keep this down to what the derivatives need:

* the trilinear form Φ(α, K, u, v) = Σ α_ij K_ij u_i v_j (per task, summed over its episodes), with α the
  per-synapse coefficients ``(tasks, H, H)``, K a trace ``(tasks, n, H, H)`` and u, v per-episode vectors
  ``(tasks, n, H)`` on the post- and pre-synaptic side. The plastic drive (α ⊙ Hebb) h is ∂Φ/∂u, and because
  Φ is linear in each argument, the gradient of any partial derivative of Φ is another partial derivative of Φ
  (with the incoming gradient in the place of the argument it was taken by). :func:`trilinear_partial`
  computes them, saving only its three inputs, to any order of differentiation;
* the clip of the neuromodulated trace to [−1, 1], whose backward (and its backward) masks by the clipped
  trace itself, which the next step keeps anyway, rather than by a saved tensor of its own.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.graph import get_gradient_edge

ARGUMENTS = ("alpha", "trace", "post", "pre")
"""Φ's arguments in order: α ``(tasks, H, H)``, K ``(tasks, n, H, H)``, u ``(tasks, n, H)``, v ``(tasks, n, H)``."""


def _partial_value(wrt: str, alpha: Tensor, trace: Tensor, post: Tensor, pre: Tensor) -> Tensor:
    """∂Φ/∂``wrt`` at the given arguments (the one named ``wrt`` is ignored)."""
    if wrt == "alpha":  # Σ_n K ⊙ u vᵀ
        return (trace * post.unsqueeze(-1) * pre.unsqueeze(-2)).sum(1)
    if wrt == "trace":  # α ⊙ u vᵀ, per episode
        return alpha.unsqueeze(1) * (post.unsqueeze(-1) * pre.unsqueeze(-2))
    weighted = alpha.unsqueeze(1) * trace
    if wrt == "post":  # (α ⊙ K) v
        return (weighted @ pre.unsqueeze(-1)).squeeze(-1)
    return (post.unsqueeze(-2) @ weighted).squeeze(-2)  # (α ⊙ K)ᵀ u


class _TrilinearPartial(torch.autograd.Function):
    """One partial derivative of Φ as an autograd node that saves only its three (non-``wrt``) inputs."""

    @staticmethod
    def forward(ctx, wrt: str, first: Tensor, second: Tensor, third: Tensor) -> Tensor:
        ctx.wrt = wrt
        ctx.save_for_backward(first, second, third)
        # where each input's gradient goes: a backward pass computes only those its graph task will use (in a
        # Fisher-vector product's backward of a backward, one of the three; the engine prunes its own nodes so)
        ctx.nodes = [_gradient_node(x) for x in (first, second, third)]
        return _partial_value(wrt, **_arguments(wrt, first, second, third, None))

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        others = [name for name in ARGUMENTS if name != ctx.wrt]
        values = dict(zip(others, ctx.saved_tensors))
        values[ctx.wrt] = grad  # ⟨grad, ∂Φ/∂wrt⟩ is Φ with grad in wrt's place
        grads: list[Tensor | None] = [None]
        for name, node in zip(others, ctx.nodes):
            grads.append(trilinear_partial(name, **values) if _will_run(node) else None)
        return tuple(grads)


def _gradient_node(x: Tensor) -> torch.autograd.graph.Node | bool:
    """The node a gradient of ``x`` goes to; ``False`` where none is needed, ``True`` for a leaf (whose use the
    engine cannot be asked about inside ``torch.autograd.grad``)."""
    if not x.requires_grad:
        return False
    return True if x.grad_fn is None else get_gradient_edge(x).node


def _will_run(node: torch.autograd.graph.Node | bool) -> bool:
    """Whether the running backward pass executes ``node`` (PyTorch's own multi-gradient hooks ask the same)."""
    return node if isinstance(node, bool) else torch._C._will_engine_execute_node(node)


def _arguments(wrt: str, first: Tensor, second: Tensor, third: Tensor, value: Tensor | None) -> dict[str, Tensor]:
    others = [name for name in ARGUMENTS if name != wrt]
    return {wrt: value, **dict(zip(others, (first, second, third)))}


def trilinear_partial(wrt: str, **arguments: Tensor) -> Tensor:
    """∂Φ/∂``wrt`` for Φ(α, K, u, v) = Σ α_ij K_ij u_i v_j, given the other three arguments by name (see
    :data:`ARGUMENTS`); differentiable to any order, saving only those three tensors."""
    if wrt not in ARGUMENTS:
        raise ValueError(f"unknown argument {wrt!r} of the trilinear form; choose one of {', '.join(ARGUMENTS)}")
    first, second, third = (arguments[name] for name in ARGUMENTS if name != wrt)
    return _TrilinearPartial.apply(wrt, first, second, third)


def plastic_drive(alpha: Tensor, trace: Tensor, pre: Tensor) -> Tensor:
    """(α ⊙ Hebb) h: the plastic synapses' input to each post-synaptic unit, ``(tasks, n, H)``."""
    return trilinear_partial("post", alpha=alpha, trace=trace, pre=pre)


class _PassInside(torch.autograd.Function):
    """``grad`` where the clipped trace ``clipped`` is strictly inside (−bound, bound), zero elsewhere; its
    backward is itself, so to any order. It keeps a reference to the clipped trace (which the next step's
    operations keep anyway) instead of a mask of its own."""

    @staticmethod
    def forward(ctx, grad: Tensor, clipped: Tensor, bound: float) -> Tensor:
        ctx.save_for_backward(clipped)
        ctx.bound = bound
        return grad * (clipped.abs() < bound)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        (clipped,) = ctx.saved_tensors
        return _PassInside.apply(grad, clipped, ctx.bound), None, None


class _Clip(torch.autograd.Function):
    """``value.clamp(−bound, bound)``, whose gradient passes where the clipped value lies strictly inside the
    bounds: torch's clamp passes it also where the value is exactly ±bound, a set of measure zero for a trace
    that sums products of hidden states."""

    @staticmethod
    def forward(ctx, value: Tensor, bound: float) -> Tensor:
        clipped = value.clamp(-bound, bound)
        ctx.save_for_backward(clipped)
        ctx.bound = bound
        return clipped

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        (clipped,) = ctx.saved_tensors
        return _PassInside.apply(grad, clipped, ctx.bound), None


def clip(value: Tensor, bound: float = 1.0) -> Tensor:
    """``value`` clipped to [−bound, bound]; its graph keeps only the clipped tensor itself."""
    return _Clip.apply(value, bound)


def add_outer(trace: Tensor, post: Tensor, pre: Tensor) -> Tensor:
    """K + u vᵀ per episode, in one pass over the trace (autograd saves only u and v)."""
    return torch.addcmul(trace, post.unsqueeze(-1), pre.unsqueeze(-2))
